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
import statistics
import sys


def main(path):
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
    if len(sys.argv) != 2:
        print("usage: soak_summary.py SAMPLES.jsonl")
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
