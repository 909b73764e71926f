#!/usr/bin/env python3
"""How cost grows with work (issue #15 item 4): reads several run-producer.sh or
run-consumer.sh results files (each one record size and one partition count, e.g. from
run-scale.sh) and prints, per codec and client, the medians of records/s, MB/s, CPU-s per
million records and CPU-s per GB of payload against the record size and the partition count,
with kafkit/rdkafka ratios of the medians; with --svg, draws the curves.

Usage: scale_summary.py RESULTS.json [RESULTS.json ...] [--svg PICTURE.svg]"""
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svgplot import Panel, split_svg_arg, write_svg  # noqa: E402


def load(paths):
    """{(kind, codec, client): {(size, partitions): [run, ...]}} and the files' notes."""
    table, notes = {}, set()
    for path in paths:
        data = json.load(open(path))
        meta = data.get("meta", {})
        kind = "consumer" if os.path.basename(path).startswith("consumer") else "producer"
        parts = meta.get("partitions")
        for r in data["runs"]:
            if "cpu_s_per_million" not in r or r.get("failed"):
                continue
            size = r.get("size", meta.get("size"))
            key = (kind, r.get("compression", "none"), r["client"])
            table.setdefault(key, {}).setdefault((size, r.get("partitions", parts)), []).append(r)
        if meta.get("note"):
            notes.add(meta["note"])
        notes.add("pinned" if meta.get("pinned") else "not pinned")
        notes.add(f"{meta.get('brokers', 1)} broker(s)")
        notes.add(f"keys {meta['keys']}" if meta.get("keys") else "keyless")
    return table, notes


def cells(runs):
    med = statistics.median
    cpu_m = med(r["cpu_s_per_million"] for r in runs)
    size = runs[0]["size"]
    return {
        "records_per_s": med(r["records_per_s"] for r in runs),
        "mb_per_s": med(r["mb_per_s"] for r in runs),
        "cpu_s_per_million": cpu_m,
        "cpu_s_per_gb": cpu_m / size * 1000 if size else None,
    }


def main(paths, svg=None):
    table, notes = load(paths)
    if not table:
        print("scale: no runs in the given files")
        return 1
    print("scale: medians per (record size, partitions); CPU-s per million records and per GB")
    print("kind     codec client       size  parts  records/s     MB/s  CPU-s/M  CPU-s/GB  runs")
    summary = {}
    for key in sorted(table):
        kind, codec, client = key
        for (size, parts) in sorted(table[key], key=lambda k: (k[0] or 0, k[1] or 0)):
            runs = table[key][(size, parts)]
            c = cells(runs)
            summary[(kind, codec, client, size, parts)] = c
            print(f"{kind:8s} {codec:5s} {client:8s} {size:8d} {parts or 0:6d} "
                  f"{c['records_per_s']:10.0f} {c['mb_per_s']:8.1f} {c['cpu_s_per_million']:8.2f} "
                  f"{c['cpu_s_per_gb']:9.2f} {len(runs):5d}")
    print("kafkit/rdkafka, ratio of the medians (CPU below 1: kafkit cheaper; rate above 1: "
          "kafkit faster)")
    for (kind, codec, client, size, parts), c in sorted(summary.items(),
                                                        key=lambda kv: str(kv[0])):
        if client != "kafkit":
            continue
        peer = summary.get((kind, codec, "rdkafka", size, parts))
        if not peer:
            continue
        print(f"{kind:8s} {codec:5s} size {size:7d} parts {parts or 0:5d}  "
              f"records/s {c['records_per_s'] / peer['records_per_s']:.2f}  "
              f"CPU/record {c['cpu_s_per_million'] / peer['cpu_s_per_million']:.2f}")
    if svg:
        draw(svg, summary, notes)
    return 0


def draw(path, summary, notes):
    """Per kind (producer, consumer) and axis (size, partitions): CPU per record, CPU per byte
    (size axis only) and MB/s, one line per client (and codec, when several)."""
    panels = []
    sizes = sorted({k[3] for k in summary})
    parts = sorted({k[4] or 0 for k in summary})
    codecs = sorted({k[1] for k in summary})
    axes = []
    if len(sizes) > 1:
        axes.append(("record size (bytes)", 3, 4))
    if len(parts) > 1:
        axes.append(("partitions", 4, 3))
    for kind in sorted({k[0] for k in summary}):
        for label, idx, other in axes:
            fixed = sorted({k[other] or 0 for k in summary if k[0] == kind})
            for field, title, unit in (("cpu_s_per_million", "CPU per record", "CPU-s per million"),
                                       ("cpu_s_per_gb", "CPU per byte", "CPU-s per GB"),
                                       ("mb_per_s", "throughput", "MB/s")):
                if idx == 4 and field == "cpu_s_per_gb":
                    continue
                p = Panel(f"{kind}: {title} against {label}", label, unit, log_x=True,
                          log_y=True)
                for client in sorted({k[2] for k in summary if k[0] == kind}):
                    for codec in codecs:
                        for dashed, f in enumerate(fixed):
                            pts = sorted((k[idx], v[field]) for k, v in summary.items()
                                         if k[:3] == (kind, codec, client)
                                         and (k[other] or 0) == f)
                            if len(pts) < 2:
                                continue
                            name = client + (f" {codec}" if len(codecs) > 1 else "")
                            if len(fixed) > 1:
                                name += f" @{f}" + (" B" if other == 3 else " parts")
                            p.series(name, pts, dashed=dashed)
                panels.append(p)
    if not panels:
        print("scale: one size and one partition count only: no curve to draw")
        return
    write_svg(path, "How the cost grows: kafkit vs rdkafka", panels, "; ".join(sorted(notes)))
    print(f"picture: {path}")


if __name__ == "__main__":
    args, svg_out = split_svg_arg(sys.argv[1:])
    if not args or "--svg" in args:
        sys.exit(__doc__)
    sys.exit(main(args, svg_out))
