"""Plots latency against achieved throughput from freshet-bench nexmark's latency.csv.

Usage: plot_latency.py latency.csv latency.png
"""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    series = defaultdict(list)
    with open(src) as f:
        for r in csv.DictReader(f):
            key = f"{r['query']}, {r['workers']} worker{'s' if r['workers'] != '1' else ''}"
            series[key].append((float(r["achieved"]), float(r["p50_ms"]), float(r["p99_ms"])))
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for i, (key, pts) in enumerate(sorted(series.items())):
        pts.sort()
        color = f"C{i}"
        xs = [p[0] for p in pts]
        ax.plot(xs, [p[1] for p in pts], "o-", color=color, label=f"{key}: p50")
        ax.plot(xs, [p[2] for p in pts], "x--", color=color, label=f"{key}: p99")
    ax.set_xlabel("rows/s taken in by the query's sources (bids: 92 % of events)")
    ax.set_ylabel("ingestion → SSE subscriber latency (ms)")
    ax.set_yscale("log")
    ax.set_title("freshet, Nexmark views: latency against throughput")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
