#!/usr/bin/env python3
"""Summary of a run-consumer.sh results file: medians per codec and client, ratios of the
medians, and paired ratios (per round, same codec: median of kafkit_r / peer_r — robust to
drift across rounds). Reads FILE ({"meta":..., "runs":[...]}), writes the summary back into it
and prints the tables. Usage: consumer_summary.py FILE"""
import json
import statistics
import sys

import memory_summary

path = sys.argv[1]
doc = json.load(open(path))
meta, runs = doc["meta"], doc["runs"]
keys = ["records_per_s", "mb_per_s", "cpu_s_per_million", "wall_s"]
ratio_keys = ["records_per_s", "mb_per_s", "cpu_s_per_million"]

groups = {}
for r in runs:
    groups.setdefault(r["compression"], {}).setdefault(r["client"], []).append(r)
summary = {}
for codec, by_client in groups.items():
    summary[codec] = {}
    for client, rs in by_client.items():
        m = {k: statistics.median(r[k] for r in rs if k in r) for k in keys}
        m["runs"] = len(rs)
        # Every record read once, in order (Java's tool reports only a count).
        m["all_read"] = all(
            r["consumed"] >= r["records"] and r["out_of_order"] == 0
            and r["offsets_covered"] in (-1, r["records"]) for r in rs)
        summary[codec][client] = m

pairs = [("kafkit", "rdkafka"), ("kafkit", "java"), ("rdkafka", "java")]
ratios, paired = {}, {}
for codec, s in summary.items():
    for a, b in pairs:
        if a in s and b in s:
            name = a + "/" + b
            ratios.setdefault(codec, {})[name] = {k: s[a][k] / s[b][k] for k in ratio_keys}
            by_round = {}
            for r in runs:
                if r["compression"] == codec and r["client"] in (a, b):
                    by_round.setdefault(r["round"], {})[r["client"]] = r
            per_round = [(x[a], x[b]) for x in by_round.values() if a in x and b in x]
            if per_round:
                paired.setdefault(codec, {})[name] = {
                    k: statistics.median(ra[k] / rb[k] for ra, rb in per_round)
                    for k in ratio_keys}
memory = memory_summary.summarize(runs)
doc.update({"medians": summary, "ratios": ratios, "paired_ratios": paired, "memory": memory})
json.dump(doc, open(path, "w"), indent=2)

print()
print("consumer throughput: %d records x %d B, %d rounds, %d partitions, pinned=%s, "
      "lz4 ratio of payload %.2f" % (meta["records"], meta["size"], meta["rounds"],
                                     meta["partitions"], meta["pinned"],
                                     meta["payload"]["lz4_ratio"]))
print("medians (java: fetch phase of ConsumerPerformance; CPU: whole JVM minus a start-up "
      "baseline run)")
print("%-6s %-8s %5s %12s %9s %12s %8s" % (
    "codec", "client", "runs", "records/s", "MB/s", "CPU-s/M rec", "all read"))
for codec, s in summary.items():
    for client, m in s.items():
        print("%-6s %-8s %5d %12.0f %9.2f %12.3f %8s" % (
            codec, client, m["runs"], m["records_per_s"], m["mb_per_s"],
            m["cpu_s_per_million"], "yes" if m["all_read"] else "NO"))
if ratios:
    print("ratios: of the medians | paired (median of per-round ratios)")
    print("  records/s, MB/s: above 1 = the first is faster; CPU-s/M: below 1 = the first "
          "uses less CPU per record")
    print("%-6s %-16s %10s %8s %10s | %10s %8s %10s" % (
        "codec", "pair", "records/s", "MB/s", "CPU-s/M", "records/s", "MB/s", "CPU-s/M"))
    for codec, rs in ratios.items():
        for pair, r in rs.items():
            p = paired.get(codec, {}).get(pair, {k: float("nan") for k in ratio_keys})
            print("%-6s %-16s %10.3f %8.3f %10.3f | %10.3f %8.3f %10.3f" % (
                codec, pair, r["records_per_s"], r["mb_per_s"], r["cpu_s_per_million"],
                p["records_per_s"], p["mb_per_s"], p["cpu_s_per_million"]))
memory_summary.print_table(memory)
for note in (meta.get("kafkit_note"), meta.get("note")):
    if note:
        print("note:", note)
print("results:", path)
