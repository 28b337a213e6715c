#!/usr/bin/python3
"""FAISS peer for the AssocDB kernel bench: exact inner-product search (IndexFlatIP) on the same
data, driven over stdin/stdout by the bench, so that its searches alternate with the bench's own
and a slow phase of a shared machine slows both alike.

Run with Debian's python (python3-faiss, libopenblas0-pthread):
/usr/bin/python3 faiss_peer.py --data W --queries Q --dim D [--k K] [--threads T]
Data are raw little-endian float32 files, row-major. Once loaded it prints one JSON line (version,
threads, rows), then answers one line per command:
  single J   times a search of query J alone; prints milliseconds
  singles N  times N such searches back to back (queries 0..N-1); prints the median milliseconds
  batch      times a search of every query at once; prints milliseconds
  ids        prints the last batch's top-k ids as JSON
It exits at the end of its input."""
import argparse
import json
import sys
import time

import faiss
import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--queries", required=True)
    parser.add_argument("--dim", type=int, required=True)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="0: all cores")
    args = parser.parse_args()

    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    data = np.fromfile(args.data, dtype=np.float32).reshape(-1, args.dim)
    queries = np.fromfile(args.queries, dtype=np.float32).reshape(-1, args.dim)
    index = faiss.IndexFlatIP(args.dim)
    index.add(data)
    index.search(queries[:1], args.k)  # warm up

    print(json.dumps({"faiss_version": faiss.__version__, "threads": faiss.omp_get_max_threads(), "rows": int(data.shape[0])}), flush=True)
    ids = np.empty((0, args.k), dtype=np.int64)
    for line in sys.stdin:
        command = line.split()
        if command[0] == "single":
            j = int(command[1]) % len(queries)
            start = time.perf_counter()
            index.search(queries[j:j + 1], args.k)
            print(1000 * (time.perf_counter() - start), flush=True)
        elif command[0] == "singles":
            times = []
            for j in range(int(command[1])):
                start = time.perf_counter()
                index.search(queries[j % len(queries):j % len(queries) + 1], args.k)
                times.append(time.perf_counter() - start)
            print(1000 * float(np.median(times)), flush=True)
        elif command[0] == "batch":
            start = time.perf_counter()
            _, ids = index.search(queries, args.k)
            print(1000 * (time.perf_counter() - start), flush=True)
        elif command[0] == "ids":
            print(json.dumps(ids.tolist()), flush=True)
        else:
            raise ValueError(f"unknown command {line!r}")


if __name__ == "__main__":
    main()
