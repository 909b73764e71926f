#!/usr/bin/env python3
"""Summary of a run-commit.sh results file: per mode, protocol and client the medians over
rounds of commit p50/p99/mean (ms) and records/s; ratios of the medians and paired ratios (per
round: median of kafkit_r / peer_r). Latency is compared with Java, throughput with rdkafka.
Reads FILE ({"meta":..., "runs":[...]}), writes the summary back into it and prints the tables.
Usage: commit_summary.py FILE"""
import json
import statistics
import sys

path = sys.argv[1]
doc = json.load(open(path))
meta, runs = doc["meta"], doc["runs"]
keys = ["commit_p50_ms", "commit_p99_ms", "commit_mean_ms", "commit_max_ms", "records_per_s",
        "commits_per_s", "cpu_s"]

groups = {}
for r in runs:
    groups.setdefault((r["mode"], r["protocol"]), {}).setdefault(r["client"], []).append(r)
summary, ratios, paired = {}, {}, {}
for (mode, protocol), by_client in sorted(groups.items()):
    name = mode + "/" + protocol
    summary[name] = {}
    for client, rs in by_client.items():
        m = {k: statistics.median(r[k] for r in rs) for k in keys}
        m["runs"] = len(rs)
        m["all_read"] = all(r["records"] >= meta["records"] for r in rs) \
            if mode == "throughput" else True
        summary[name][client] = m
    ratio_keys = (["commit_p50_ms", "commit_p99_ms", "commit_mean_ms"] if mode == "latency"
                  else ["records_per_s", "commit_p50_ms", "commit_p99_ms"])
    for a, b in [("kafkit", "java"), ("kafkit", "rdkafka")]:
        s = summary[name]
        if a not in s or b not in s:
            continue
        pair = a + "/" + b
        ratios.setdefault(name, {})[pair] = {k: s[a][k] / s[b][k] for k in ratio_keys}
        by_round = {}
        for r in by_client[a] + by_client[b]:
            by_round.setdefault(r["round"], {})[r["client"]] = r
        per_round = [(x[a], x[b]) for x in by_round.values() if a in x and b in x]
        if per_round:
            paired.setdefault(name, {})[pair] = {
                k: statistics.median(ra[k] / rb[k] for ra, rb in per_round) for k in ratio_keys}
doc.update({"medians": summary, "ratios": ratios, "paired_ratios": paired})
json.dump(doc, open(path, "w"), indent=2)

print()
print("commit benchmark: latency %d commits/run (caught-up consumer, commitSync after each "
      "poll); throughput %d records x %d B, %d partitions; %d rounds; fetch.max.wait.ms=500"
      % (meta["commits"], meta["records"], meta["size"], meta["partitions"], meta["rounds"]))
print("medians over rounds")
print("%-22s %-8s %4s %9s %9s %9s %9s %11s %9s" % (
    "mode/protocol", "client", "runs", "p50 ms", "p99 ms", "mean ms", "max ms", "records/s",
    "all read"))
for name, s in summary.items():
    for client, m in s.items():
        print("%-22s %-8s %4d %9.2f %9.2f %9.2f %9.2f %11.0f %9s" % (
            name, client, m["runs"], m["commit_p50_ms"], m["commit_p99_ms"],
            m["commit_mean_ms"], m["commit_max_ms"], m["records_per_s"],
            "yes" if m["all_read"] else "NO"))
if ratios:
    print("ratios: of the medians | paired (median of per-round ratios); latency below 1 = "
          "kafkit commits faster; records/s above 1 = kafkit faster")
    for name, rs in ratios.items():
        for pair, r in rs.items():
            p = paired.get(name, {}).get(pair, {})
            print("%-22s %-15s %s" % (name, pair, "  ".join(
                "%s %.3f | %.3f" % (k, v, p.get(k, float("nan"))) for k, v in r.items())))
for note in (meta.get("kafkit_note"), meta.get("note")):
    if note:
        print("note:", note)
print("results:", path)
