#!/usr/bin/python3
"""FAISS peer for the AssocDB kernel bench: exact inner-product search (IndexFlatIP) on the same
data, timed the same way (one query: median of single searches; batch: best of three).

Run with Debian's python (python3-faiss, libopenblas0-pthread): /usr/bin/python3 faiss_peer.py ...
Data are raw little-endian float32 files, row-major."""
import argparse
import json
import time

import faiss
import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--queries", required=True)
    parser.add_argument("--dim", type=int, required=True)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--single", type=int, default=21, help="single-query searches to take the median of")
    parser.add_argument("--threads", type=int, default=0, help="0: all cores")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    data = np.fromfile(args.data, dtype=np.float32).reshape(-1, args.dim)
    queries = np.fromfile(args.queries, dtype=np.float32).reshape(-1, args.dim)
    index = faiss.IndexFlatIP(args.dim)
    index.add(data)

    index.search(queries[:1], args.k)  # warm up
    singles = []
    for j in range(args.single):
        start = time.perf_counter()
        index.search(queries[j % len(queries): j % len(queries) + 1], args.k)
        singles.append(time.perf_counter() - start)

    batches = []
    ids = None
    for _ in range(3):
        start = time.perf_counter()
        _, ids = index.search(queries, args.k)
        batches.append(time.perf_counter() - start)

    with open(args.out, "w", encoding="utf-8") as out:
        json.dump({
            "faiss_version": faiss.__version__,
            "threads": faiss.omp_get_max_threads(),
            "rows": int(data.shape[0]),
            "single_ms": 1000 * float(np.median(singles)),
            "batch_ms": 1000 * min(batches),
            "batch_ids": ids.tolist(),
        }, out)


if __name__ == "__main__":
    main()
