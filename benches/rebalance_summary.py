#!/usr/bin/env python3
"""Summary of a benches/run-rebalance.sh results file (a meta line, then one JSON line per
run): per (protocol, members, partitions) and client, the medians over rounds of the join,
scale-up and scale-down times (ms) and CPU, then kafkit/rdkafka ratios of the medians (below
1: kafkit faster); with --svg, the times against the member count (at the first partition
count) and against the partition count (at the partition points' member count), one line per
client x protocol, one panel per phase and axis.
Usage: rebalance_summary.py RESULTS.jsonl [--svg PICTURE.svg]"""
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svgplot import Panel, split_svg_arg, write_svg  # noqa: E402

PHASES = [("join_ms", "join"), ("scale_up_ms", "scale-up"), ("scale_down_ms", "scale-down")]


def load(path):
    """(meta, [run, ...]) of a results file."""
    meta, runs = {}, []
    for line in open(path):
        if not line.strip():
            continue
        row = json.loads(line)
        if "meta" in row:
            meta = row["meta"]
        else:
            runs.append(row)
    return meta, runs


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, width=9, digits=1):
    return f"{v:{width}.{digits}f}" if v is not None else " " * (width - 1) + "-"


def axes(groups):
    """The member-count axis (its partition count) and the partition-count axis (its member
    count), as run-rebalance.sh lays the points out: the partition count most points share,
    and the member count most points share among the others."""
    points = {(m, p) for (_, m, p) in groups}
    parts = [p for (_, p) in points]
    base_p = max(set(parts), key=lambda p: (parts.count(p), -p))
    members = [m for (m, p) in points if p != base_p]
    base_m = max(set(members), key=members.count) if members else None
    return base_p, base_m


def draw(path, groups, meta):
    base_p, base_m = axes(groups)
    series = sorted({(c, proto) for (proto, _, _), g in groups.items() for c in g})
    panels = []
    for col, phase in PHASES:
        for axis in ("members", "partitions"):
            if axis == "members":
                p = Panel(f"{phase}, {base_p} partitions", "members", "ms", y_from_zero=True)
            else:
                if base_m is None:
                    continue
                p = Panel(f"{phase}, {base_m} members", "partitions", "ms", y_from_zero=True)
            for dashed, (client, proto) in enumerate(series):
                pts = []
                for (pr, m, parts), g in sorted(groups.items()):
                    if pr != proto or client not in g:
                        continue
                    if axis == "members" and parts == base_p:
                        pts.append((m, median(r[col] for r in g[client])))
                    elif axis == "partitions" and m == base_m:
                        pts.append((parts, median(r[col] for r in g[client])))
                p.series(f"{client} {proto}", pts, dashed=1 if proto == "consumer" else 0)
            panels.append(p)
    note = f"medians over rounds; {meta.get('cpus', '?')} CPUs, load {meta.get('loadavg_at_end', '?')}"
    if meta.get("note"):
        note += f"; {meta['note']}"
    write_svg(path, "Consumer-group rebalance time (dashed: KIP-848)", panels, note)
    print(f"picture: {path}")


def main(path, svg=None):
    meta, runs = load(path)
    if not runs:
        print("rebalance: no runs in the file")
        return 1
    groups = {}
    for r in runs:
        key = (r["protocol"], r["members"], r["partitions"])
        groups.setdefault(key, {}).setdefault(r["client"], []).append(r)
    print("rebalance time: medians over rounds (ms); assignor range (classic) or the broker's "
          "uniform (consumer)")
    print("protocol members parts client   runs      join  scale-up scale-down  CPU-s/run")
    for key in sorted(groups):
        proto, m, parts = key
        for client, rs in sorted(groups[key].items()):
            cells = [median(r[c] for r in rs) for c, _ in PHASES]
            print(f"{proto:8s} {m:7d} {parts:5d} {client:8s} {len(rs):4d} "
                  + " ".join(fmt(v) for v in cells)
                  + f"  {fmt(median(r['cpu_s'] for r in rs), 9, 3)}")
    print("kafkit/rdkafka, ratio of the medians (below 1: kafkit faster)")
    for key in sorted(groups):
        g = groups[key]
        if "kafkit" not in g or "rdkafka" not in g:
            continue
        parts = []
        for c, name in PHASES + [("cpu_s", "cpu")]:
            k = median(x[c] for x in g["kafkit"])
            r = median(x[c] for x in g["rdkafka"])
            parts.append(f"{name} {k / r:.2f}" if k is not None and r else f"{name} -")
        print(f"{key[0]:8s} {key[1]:7d} {key[2]:5d}  " + "  ".join(parts))
    if meta.get("note"):
        print(f"note: {meta['note']}")
    if svg:
        draw(svg, groups, meta)
    return 0


if __name__ == "__main__":
    args, svg_out = split_svg_arg(sys.argv[1:])
    if len(args) != 1:
        sys.exit(__doc__)
    sys.exit(main(args[0], svg_out))
