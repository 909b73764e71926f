#!/usr/bin/env python3
"""Summary of a benches/run-latency.sh results file: per rate and linger.ms, the medians over
rounds of each client's latency percentiles (ms) and CPU, then kafkit/rdkafka ratios of the
medians (below 1: kafkit lower); with --svg, the percentiles against the rate as a picture.
Usage: latency_summary.py RESULTS.json [--svg PICTURE.svg]"""
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svgplot import Panel, split_svg_arg, write_svg  # noqa: E402

COLUMNS = ["ack_p50_ms", "ack_p99_ms", "ack_p999_ms", "e2e_p50_ms", "e2e_p99_ms", "e2e_p999_ms"]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, width=8, digits=2):
    return f"{v:{width}.{digits}f}" if v is not None else " " * (width - 1) + "-"


def draw(path, groups, meta):
    """Per linger.ms: send -> ack and produce -> consume percentiles against the rate, one
    line per client and percentile (log-log)."""
    panels = []
    for linger in sorted({l for (_, l) in groups}):
        for kind, title in (("ack", "send -> ack"), ("e2e", "produce -> consume")):
            p = Panel(f"{title}, linger.ms={linger}", "records/s", "ms", log_x=True, log_y=True)
            clients = sorted({c for (r, l), g in groups.items() if l == linger for c in g})
            for client in clients:
                for dashed, (col, name) in enumerate(((f"{kind}_p50_ms", "p50"),
                                                      (f"{kind}_p99_ms", "p99"),
                                                      (f"{kind}_p999_ms", "p99.9"))):
                    pts = [(rate, median([x[col] for x in g[client]]))
                           for (rate, l), g in sorted(groups.items())
                           if l == linger and client in g]
                    p.series(f"{client} {name}", pts, dashed=dashed)
            panels.append(p)
    note = "medians over rounds; " + ("pinned" if meta.get("pinned") else "not pinned")
    if meta.get("note"):
        note += f"; {meta['note']}"
    write_svg(path, "Latency at fixed rates (acks=all)", panels, note)
    print(f"picture: {path}")


def main(path, svg=None):
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
    if svg:
        draw(svg, groups, meta)


if __name__ == "__main__":
    args, svg_out = split_svg_arg(sys.argv[1:])
    if len(args) != 1:
        sys.exit(__doc__)
    main(args[0], svg_out)
