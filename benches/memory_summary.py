"""Memory columns shared by producer_summary.py and consumer_summary.py: medians of the
resident-memory fields that kafkit's and rdkafka's bench binaries print (`rss_base_mb`: the
process before its client existed, payloads loaded; `rss_peak_mb`: the run's peak;
`rss_growth_mb`: peak minus base, what the client took at its most) and kafkit/rdkafka ratios
of the growth, paired per round. Java's runs carry no such fields and are left out."""
import statistics

KEYS = ["rss_base_mb", "rss_peak_mb", "rss_growth_mb"]


def summarize(runs):
    """{codec: {"medians": {client: {key: median}}, "growth_ratio": r, "paired_growth_ratio": p}}"""
    out = {}
    for codec in sorted({r["compression"] for r in runs}):
        rows = [r for r in runs if r["compression"] == codec and "rss_growth_mb" in r]
        medians = {}
        for client in sorted({r["client"] for r in rows}):
            rs = [r for r in rows if r["client"] == client]
            medians[client] = {k: statistics.median(r[k] for r in rs) for k in KEYS}
        entry = {"medians": medians}
        if "kafkit" in medians and "rdkafka" in medians and medians["rdkafka"]["rss_growth_mb"] > 0:
            entry["growth_ratio"] = (medians["kafkit"]["rss_growth_mb"]
                                     / medians["rdkafka"]["rss_growth_mb"])
            by_round = {}
            for r in rows:
                by_round.setdefault(r.get("round"), {})[r["client"]] = r
            pairs = [x["kafkit"]["rss_growth_mb"] / x["rdkafka"]["rss_growth_mb"]
                     for x in by_round.values()
                     if "kafkit" in x and "rdkafka" in x and x["rdkafka"]["rss_growth_mb"] > 0]
            if pairs:
                entry["paired_growth_ratio"] = statistics.median(pairs)
        out[codec] = entry
    return out


def print_table(summary):
    if not any(e["medians"] for e in summary.values()):
        return
    print("memory (resident, MiB; growth = peak - before the client existed; below 1 = kafkit "
          "takes less)")
    print("%-6s %-8s %10s %10s %10s" % ("codec", "client", "base", "peak", "growth"))
    for codec, e in summary.items():
        for client, m in e["medians"].items():
            print("%-6s %-8s %10.1f %10.1f %10.1f" % (
                codec, client, m["rss_base_mb"], m["rss_peak_mb"], m["rss_growth_mb"]))
        if "growth_ratio" in e:
            print("%-6s kafkit/rdkafka growth %.3f (paired %.3f)" % (
                codec, e["growth_ratio"], e.get("paired_growth_ratio", float("nan"))))
