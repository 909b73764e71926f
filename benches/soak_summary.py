#!/usr/bin/env python3
"""Summary of a `benches/run-soak.sh` samples file (JSON lines from kafkit-soak).

Memory: the resident set after the first fifth of the run (warm-up: connections, buffers and
the allocator's arenas settle) against the last fifth (medians of each), the peak, and the
least-squares slope over everything after the warm-up, in MiB per hour. Sockets, descriptors
and threads: their range after the warm-up, and what is still open once every client closed
(a leak if more than at the start). Records: sent, acknowledged, consumed, duplicates
(re-reads after rebalances, expected with at-least-once commits) and missing (acknowledged,
never consumed: must be 0). Exits 1 when the file has no end line or a record is missing.
"""
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svgplot import Panel, split_svg_arg, write_svg  # noqa: E402


def draw(path, samples, closed, note):
    """Resident memory, then sockets and descriptors, over the run (minutes)."""
    t = [s["t_s"] / 60 for s in samples]
    rss = Panel("resident memory", "minutes", "MiB", y_from_zero=True)
    rss.series("kafkit RSS", list(zip(t, [s["rss_mb"] for s in samples])))
    if closed is not None:
        rss.series("after close", [(t[-1], closed["rss_mb"])], dashed=1)
    io = Panel("sockets and descriptors", "minutes", "count", y_from_zero=True)
    io.series("sockets", list(zip(t, [s["sockets"] for s in samples])))
    io.series("fds", list(zip(t, [s["fds"] for s in samples])))
    io.series("threads", list(zip(t, [s["threads"] for s in samples])))
    write_svg(path, "kafkit soak: steady produce + group consume, members in and out",
              [rss, io], note)
    print(f"  picture: {path}")


def main(path, svg=None):
    samples, closed, end = [], None, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            obj = json.loads(line)
            if obj.get("kind") == "sample":
                samples.append(obj)
            elif obj.get("kind") == "closed":
                closed = obj
            elif obj.get("kind") == "end":
                end = obj
    if len(samples) < 5:
        print(f"soak: only {len(samples)} samples in {path}")
        return 1
    n = len(samples)
    warm = samples[n // 5:]
    first = [s["rss_mb"] for s in samples[n // 5: 2 * n // 5] or samples[n // 5:]]
    last = [s["rss_mb"] for s in samples[-max(1, n // 5):]]
    ts = [s["t_s"] for s in warm]
    rs = [s["rss_mb"] for s in warm]
    mean_t, mean_r = statistics.fmean(ts), statistics.fmean(rs)
    var = sum((t - mean_t) ** 2 for t in ts)
    slope = (sum((t - mean_t) * (r - mean_r) for t, r in zip(ts, rs)) / var * 3600) if var else 0.0
    span = samples[-1]["t_s"] - samples[0]["t_s"]
    print(f"soak: {n} samples over {span / 60:.1f} min")
    print(
        f"  rss_mb: after warm-up {statistics.median(first):.1f}, at the end "
        f"{statistics.median(last):.1f}, peak {max(s['rss_mb'] for s in samples):.1f}, "
        f"slope after warm-up {slope:+.2f} MiB/h"
    )
    for key in ("sockets", "fds", "threads"):
        vals = [s[key] for s in warm]
        print(f"  {key}: {min(vals)}..{max(vals)} after warm-up (end {samples[-1][key]})")
    if closed is not None:
        print(
            f"  after every client closed: sockets {closed['sockets']}, fds {closed['fds']}, "
            f"threads {closed['threads']}, rss_mb {closed['rss_mb']:.1f}"
        )
    if svg:
        draw(svg, samples, closed, f"{os.path.basename(path)}; {n} samples over "
             f"{span / 60:.1f} min")
    cpu = samples[-1]["cpu_s"] - samples[0]["cpu_s"]
    print(f"  cpu: {cpu:.1f} s over the run ({100 * cpu / span:.1f} % of one core)" if span else "")
    if end is None:
        print("soak: no end line (the process did not finish)")
        return 1
    print(
        f"  records: sent {end['sent']}, acked {end['acked']}, failed {end['failed']}, "
        f"consumed {end['consumed']}, duplicates {end['duplicates']}, missing {end['missing']}; "
        f"member joins {end['joins']}, leaves {end['leaves']}"
    )
    return 1 if end["missing"] or end["failed"] else 0


if __name__ == "__main__":
    args, svg_out = split_svg_arg(sys.argv[1:])
    if len(args) != 1:
        print("usage: soak_summary.py SAMPLES.jsonl [--svg PICTURE.svg]")
        sys.exit(2)
    sys.exit(main(args[0], svg_out))
