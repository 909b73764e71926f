#!/usr/bin/env python3
"""Summary of a run-transactions.sh results file: per transaction size and client the medians
over rounds of records/s, CPU-seconds per million records and the per-transaction latency
p50/p99 (ms); ratios of the medians and paired ratios (per round: median of kafkit_r / peer_r)
against rdkafka and Java. Checks that every run committed all its transactions and that the
broker holds at least the records committed (log end offsets also count one marker per
partition per transaction). Reads FILE ({"meta":..., "runs":[...]}), writes the summary back
into it and prints the tables.
Usage: transactions_summary.py FILE"""
import json
import statistics
import sys

path = sys.argv[1]
doc = json.load(open(path))
meta, runs = doc["meta"], doc["runs"]
keys = ["records_per_s", "cpu_s_per_million", "txn_p50_ms", "txn_p99_ms", "txn_mean_ms",
        "txn_per_s", "transactions"]
ratio_keys = ["records_per_s", "cpu_s_per_million", "txn_p50_ms", "txn_p99_ms"]

groups = {}
for r in runs:
    groups.setdefault(r["txn_size"], {}).setdefault(r["client"], []).append(r)
summary, ratios, paired = {}, {}, {}
for size, by_client in sorted(groups.items()):
    name = str(size)
    summary[name] = {}
    for client, rs in by_client.items():
        m = {k: statistics.median(r[k] for r in rs) for k in keys}
        m["runs"] = len(rs)
        m["complete"] = all(r["failed"] == 0 and r["broker_offsets"] >= r["records"] for r in rs)
        summary[name][client] = m
    for a, b in [("kafkit", "rdkafka"), ("kafkit", "java")]:
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
print("transactional producer: %d-B records, %d records per run (at least %d transactions), "
      "%d partitions, %d rounds" % (meta["size"], meta["records"], meta["min_txns"],
                                    meta["partitions"], meta["rounds"]))
print("medians over rounds")
print("%8s %-8s %4s %11s %9s %10s %10s %8s %9s" % (
    "txn size", "client", "runs", "records/s", "CPU-s/M", "txn p50 ms", "txn p99 ms", "txns",
    "complete"))
for name, s in summary.items():
    for client, m in s.items():
        print("%8s %-8s %4d %11.0f %9.3f %10.2f %10.2f %8.0f %9s" % (
            name, client, m["runs"], m["records_per_s"], m["cpu_s_per_million"],
            m["txn_p50_ms"], m["txn_p99_ms"], m["transactions"],
            "yes" if m["complete"] else "NO"))
if ratios:
    print("ratios: of the medians | paired (median of per-round ratios); records/s above 1 = "
          "kafkit faster; CPU and latency below 1 = kafkit cheaper/faster")
    for name, rs in ratios.items():
        for pair, r in rs.items():
            p = paired.get(name, {}).get(pair, {})
            print("%8s %-15s %s" % (name, pair, "  ".join(
                "%s %.3f | %.3f" % (k, v, p.get(k, float("nan"))) for k, v in r.items())))
for note in (meta.get("kafkit_note"), meta.get("note")):
    if note:
        print("note:", note)
print("results:", path)
