#!/usr/bin/python3
"""Plots the kernel bench's JSON (benchmarks/results/kernels.json) as a PNG next to it.
Run with Debian's python (python3-matplotlib): /usr/bin/python3 plot_kernels.py kernels.json"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)


def main() -> None:
    path = sys.argv[1]
    with open(path, encoding="utf-8") as source:
        r = json.load(source)
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.5))
    fig.suptitle(f"AssocDB vector kernels, n={r['rows']:,} d={r['dim']} k={r['k']} ({r['cores']} cores)")

    one = {"read W once": r["read_w_ms"], "AssocDB scan": r["scan_one_ms"], "torch mv+topk": r["torch_one_ms"]}
    if r.get("faiss"):
        one["FAISS FlatIP"] = r["faiss"]["single_ms"]
    left.bar(list(one), list(one.values()), color=["grey", "tab:blue", "tab:orange", "tab:red"][: len(one)])
    left.set_ylabel("ms")
    left.set_title("one query (each side back to back)")

    batch = {"AssocDB GEMM": r["batch_ms"], "torch f32 mm+topk": r["torch_batch_ms"]}
    if r.get("faiss"):
        batch["FAISS FlatIP"] = r["faiss"]["batch_ms"]
    middle.bar(list(batch), list(batch.values()), color=["tab:blue", "tab:orange", "tab:red"][: len(batch)])
    middle.set_ylabel("ms")
    middle.set_title(f"batch of {r['batch']}")

    rates = {"peak f32 GEMM": r["peak_f32_gflops"], "peak bf16 GEMM": r["peak_bf16_gflops"],
             "peak f16 GEMM": r["peak_f16_gflops"]}
    # The int8 ceiling (the int8 pass's multiply-adds on registers), when the CPU has it.
    if r.get("peak_int8_gops") is not None:
        rates["peak int8"] = r["peak_int8_gops"]
    rates["AssocDB batch"] = r["batch_gflops"]
    right.bar(list(rates), list(rates.values()), color=["grey"] * (len(rates) - 1) + ["tab:blue"])
    right.set_ylabel("GFLOP/s (int8: GOP/s)")
    right.set_title("throughput")
    for axis in (left, middle, right):
        axis.tick_params(axis="x", labelrotation=15)
    fig.tight_layout()
    out = path.rsplit(".", 1)[0] + ".png"
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main()
