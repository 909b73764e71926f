#!/usr/bin/env python3
"""Summary of a benches/run-latency.sh results file: per rate and linger.ms, the medians over
rounds of each client's latency percentiles (ms) and CPU, then kafkit/rdkafka ratios of the
medians (below 1: kafkit lower). Usage: latency_summary.py RESULTS.json"""
import json
import statistics
import sys

COLUMNS = ["ack_p50_ms", "ack_p99_ms", "ack_p999_ms", "e2e_p50_ms", "e2e_p99_ms", "e2e_p999_ms"]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, width=8, digits=2):
    return f"{v:{width}.{digits}f}" if v is not None else " " * (width - 1) + "-"


def main(path):
    data = json.load(open(path))
    runs = data["runs"]
    meta = data.get("meta", {})
    groups = {}
    for r in runs:
        groups.setdefault((r["rate"], r["linger_ms"]), {}).setdefault(r["client"], []).append(r)
    print(f"latency at fixed rates: {runs[0]['size'] if runs else '?'}-B records, "
          f"{runs[0]['seconds'] if runs else '?'} s recorded per run; medians over rounds (ms)")
    print("    rate linger client   runs  ack p50  ack p99 ack p99.9  e2e p50  e2e p99 e2e p99.9"
          "  CPU-s/run  complete")
    for (rate, linger) in sorted(groups):
        for client, rs in sorted(groups[(rate, linger)].items()):
            complete = all(r["acked"] == r["sent"] and r["consumed"] >= r["sent"] and
                           r["failed"] == 0 for r in rs)
            cells = [median([r[c] for r in rs]) for c in COLUMNS]
            print(f"{rate:8d} {linger:6d} {client:8s} {len(rs):4d} "
                  + " ".join(fmt(v, 8 if i % 3 != 2 else 9) for i, v in enumerate(cells))
                  + f" {fmt(median([r['cpu_s'] for r in rs]), 10, 3)}  {'yes' if complete else 'NO'}")
    print("kafkit/rdkafka, ratio of the medians (below 1: kafkit lower)")
    for (rate, linger) in sorted(groups):
        g = groups[(rate, linger)]
        if "kafkit" not in g or "rdkafka" not in g:
            continue
        parts = []
        for c in COLUMNS + ["cpu_s"]:
            k, r = median([x[c] for x in g["kafkit"]]), median([x[c] for x in g["rdkafka"]])
            parts.append(f"{c.replace('_ms', '')} {k / r:.2f}" if k is not None and r else f"{c} -")
        print(f"{rate:8d} {linger:6d}  " + "  ".join(parts))
    if meta.get("note"):
        print(f"note: {meta['note']}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
