#!/usr/bin/env python3
"""Produce interop vectors: record batches written by real clients, captured from the broker's log.

Run through scripts/make-vectors.sh (which starts a broker and passes its details):
    make_vectors.py --kafka-sh scripts/kafka.sh --bootstrap 127.0.0.1:P --log-dir DIR --out tests/vectors

For each peer (java = kafka-clients through scripts/vectors/Vectors.java, kcat = librdkafka) and
each codec (none, gzip, snappy, lz4, zstd) it produces RECORDS (below) to its own single-partition
topic, reads them back with the Java consumer, copies the partition's first segment file
(<log.dirs>/<topic>-0/00000000000000000000.log: the record batches as the client sent them,
offsets assigned by the broker) to OUT/<peer>-<codec>.bin, checks it with DumpLogSegments and with
our own batch-header parser, and writes OUT/manifest.json. See tests/vectors/README.md.
"""
import argparse
import base64
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
PEERS = ["java", "kcat"]
# Java records get explicit CreateTime timestamps: BASE_TS + i * 1000 (2026-01-01T00:00:00Z + i s).
BASE_TS = 1767225600000

WORDS = (
    "the a of and to in is that for it as was with be by on not he this are or his from at which "
    "but have an they you were her she there been one all we their has would when if so no what "
    "broker partition offset leader replica consumer producer record batch segment index log topic "
    "commit fetch request response timeout retry epoch sequence idempotent transaction marker "
    "compression snappy gzip zstd lz4 header key value timestamp cluster controller quorum voter "
    "metadata rebalance member group assignment heartbeat session network socket buffer latency "
    "throughput memory allocation checksum crc varint length attribute delta magic version "
    "river mountain window garden winter summer morning evening library kitchen letter journey "
    "quickly slowly carefully quietly suddenly always never often rarely perhaps however therefore "
    "remember consider describe explain discover imagine measure observe prepare recognise "
    "ancient bright careful distant eager gentle hollow narrow patient rapid silent steady "
    "mathematics engine analytical difference calculation table machine punched card operation"
).split()


def prose(seed, size):
    """Deterministic, realistic-looking, non-repetitive English-like text of exactly `size` bytes."""
    rng = random.Random(seed)
    out, line = [], ""
    while sum(len(x) + 1 for x in out) + len(line) < size + 80:
        n = rng.randint(6, 18)
        words = [rng.choice(WORDS) for _ in range(n)]
        if rng.random() < 0.3:
            words.insert(rng.randint(1, n - 1), str(rng.randint(0, 99999)))
        sentence = " ".join(words)
        sentence = sentence[0].upper() + sentence[1:] + rng.choice([".", ".", ".", "?", "!", ";"])
        for w in sentence.split(" "):
            if len(line) + len(w) + 1 > 72:
                out.append(line)
                line = w
            else:
                line = (line + " " + w) if line else w
    text = "\n".join(out + [line])
    return text.encode("ascii")[:size]


HDRS = [("trace-id", b"4bf92f3577b34da6a3ce929d0e0e4736"), ("h", b"1"), ("h", b"2"),
        ("x-empty", b""), ("x-null", None)]


def records():
    """The logical record set: list of dicts with key/value bytes-or-None and headers."""
    u = lambda s: s.encode("utf-8")  # noqa: E731
    binary = bytes(b for b in range(256) if b not in (0x1E, 0x1F))  # 0x1e/0x1f: kcat delimiters
    recs = [
        dict(key=u("key-0"), value=u("hello, kafkit"), headers=[]),
        dict(key=None, value=u("a record with a null key. ") + prose(11, 400), headers=[]),
        dict(key=u("key-2"), value=None, headers=[]),  # tombstone
        # Records 3-5 share one header set (kcat's -H applies to a whole run, and each run is a
        # batch: librdkafka sends a batch uncompressed when compressing does not shrink it, so
        # every kcat run must be big/compressible enough to really carry the codec).
        dict(key=u("user-42"),
             value=u('{"id":42,"name":"Ada Lovelace","tags":["math","engines"],"active":true}'),
             headers=HDRS),
        dict(key=u("big"), value=prose(20261123, 4096), headers=HDRS),
        dict(key=u("multi"), value=u("several headers, one name twice, an empty and a null value"),
             headers=HDRS),
        dict(key=u("utf8-ключ"), value=u("unicode: Grüße, 日本語, emoji 🚀"), headers=[]),
        dict(key=bytes([0x00, 0x01, 0x80, 0xFE, 0xFF]), value=binary, headers=[]),
        dict(key=u("medium"), value=prose(7, 600), headers=[]),
        dict(key=u("empty-value"), value=b"", headers=[]),
    ]
    for i in range(10, 16):
        recs.append(dict(key=u(f"key-{i}"), value=u(f"value {i}: " + "x" * i), headers=[]))
    return recs


# Java batches: flush after this record index (so a Java vector holds two batches: 0..5, 6..15).
JAVA_FLUSH_AFTER = 5


def kcat_groups(recs):
    """kcat's -H headers apply to a whole run, and -Z (empty -> NULL) too: split the records into
    runs of consecutive records with the same headers and null-needs. Each run is one kcat call
    (and so at least one batch)."""
    groups = []
    for i, r in enumerate(recs):
        if r["key"] == b"":
            raise ValueError("kcat cannot send an empty non-null key next to null ones")
        hdrs = tuple(r["headers"])
        # -Z needed for a null value; a null key is sent by leaving out the key delimiter.
        needs_z = r["value"] is None
        has_empty = r["value"] == b""
        if groups and groups[-1]["headers"] == hdrs and not (
            (needs_z and groups[-1]["has_empty"]) or (has_empty and groups[-1]["z"])
        ):
            g = groups[-1]
        else:
            g = dict(headers=hdrs, z=False, has_empty=False, idx=[])
            groups.append(g)
        g["idx"].append(i)
        g["z"] |= needs_z
        g["has_empty"] |= has_empty
    return groups


KCAT_KEY_DELIM = b"\x1f"
KCAT_MSG_DELIM = b"\x1e"


def b64(b):
    return None if b is None else base64.b64encode(b).decode("ascii")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def java(args, kafka_sh, vectors_java):
    return run([kafka_sh, "java", vectors_java] + args, stdout=subprocess.PIPE).stdout.decode()


def produce_java(a, topic, codec, recs, tmp):
    path = os.path.join(tmp, f"{topic}.tsv")
    with open(path, "w") as f:
        for i, r in enumerate(recs):
            hs = ",".join(
                f"{b64(n.encode())}:{'-' if v is None else b64(v)}" for n, v in r["headers"]
            )
            f.write("\t".join([
                str(BASE_TS + i * 1000),
                "-" if r["key"] is None else b64(r["key"]),
                "-" if r["value"] is None else b64(r["value"]),
                hs,
                "1" if i == JAVA_FLUSH_AFTER else "0",
            ]) + "\n")
    java(["produce", a.bootstrap, topic, codec, path], a.kafka_sh, a.vectors_java)


def produce_kcat(a, topic, codec, recs):
    for g in kcat_groups(recs):
        data = b""
        for i in g["idx"]:
            r = recs[i]
            assert KCAT_MSG_DELIM not in (r["value"] or b"") and KCAT_KEY_DELIM not in (r["value"] or b"")
            if r["key"] is not None:
                data += r["key"] + KCAT_KEY_DELIM
            data += (r["value"] or b"") + KCAT_MSG_DELIM
        cmd = ["kcat", "-b", a.bootstrap, "-P", "-t", topic, "-p", "0", "-z", codec,
               "-K", KCAT_KEY_DELIM.decode(), "-D", KCAT_MSG_DELIM.decode(),
               "-X", "linger.ms=1000"]
        if g["z"]:
            cmd.append("-Z")
        for n, v in g["headers"]:
            if v is None:
                cmd += ["-H", n]  # kcat: a header without '=' has a null value
            else:
                cmd += ["-H", n + "=" + v.decode("utf-8")]
        run(cmd, input=data)


# ------------------------------------------------------------------------------------------------
# Our own look at the stored bytes: v2 batch headers (uncompressed), plus the compression framing.

def parse_batches(data):
    out, pos = [], 0
    while pos < len(data):
        base_offset, length = struct.unpack_from(">qi", data, pos)
        end = pos + 12 + length
        if end > len(data):
            raise ValueError(f"truncated batch at {pos}")
        (leader_epoch, magic, crc, attrs, last_delta, first_ts, max_ts, pid, pepoch, bseq,
         count) = struct.unpack_from(">ibIhiqqqhii", data, pos + 12)
        assert magic == 2, magic
        payload = data[pos + 61:end]
        b = dict(
            file_position=pos, size=12 + length, base_offset=base_offset,
            last_offset=base_offset + last_delta, record_count=count, magic=magic,
            crc=crc, attributes=attrs, codec_id=attrs & 7,
            timestamp_type="LogAppendTime" if attrs & 8 else "CreateTime",
            transactional=bool(attrs & 16), control=bool(attrs & 32),
            first_timestamp=first_ts, max_timestamp=max_ts, producer_id=pid,
            producer_epoch=pepoch, base_sequence=bseq, partition_leader_epoch=leader_epoch,
        )
        codec = attrs & 7
        if codec == 2:
            b["snappy_framing"] = "xerial" if payload[:8] == b"\x82SNAPPY\x00" else "raw"
        elif codec == 3:
            assert payload[:4] == b"\x04\x22\x4d\x18", "lz4 frame magic"
            flg = payload[4]
            b["lz4_frame"] = dict(block_independence=bool(flg & 0x20),
                                  block_checksum=bool(flg & 0x10),
                                  content_size=bool(flg & 0x08),
                                  content_checksum=bool(flg & 0x04))
        elif codec == 4:
            assert payload[:4] == b"\x28\xb5\x2f\xfd", "zstd frame magic"
            fhd = payload[4]
            b["zstd_frame"] = dict(content_size_present=bool((fhd >> 6) or (fhd & 0x20)),
                                   single_segment=bool(fhd & 0x20), checksum=bool(fhd & 0x04))
        elif codec == 1:
            assert payload[:2] == b"\x1f\x8b", "gzip magic"
            zlib.decompress(payload, 31)  # sanity: a valid gzip stream
        out.append(b)
        pos = end
    return out


DLS_RE = re.compile(r"baseOffset: (\d+) lastOffset: (\d+) count: (\d+).*?compresscodec: (\w+).*?"
                    r"crc: (\d+) isvalid: (\w+)")


def dump_log_segments(a, path, tmp):
    # DumpLogSegments only takes files named like segments (*.log): dump a copy of the vector
    # under that name (so it is the vector's bytes that are checked).
    d = tempfile.mkdtemp(dir=tmp)
    seg = os.path.join(d, "00000000000000000000.log")
    shutil.copyfile(path, seg)
    txt = run([a.kafka_sh, "java", "kafka.tools.DumpLogSegments", "--files", seg,
               "--print-data-log"], stdout=subprocess.PIPE).stdout.decode()
    batches = []
    for line in txt.splitlines():
        m = DLS_RE.search(line)
        if m:
            batches.append(dict(base_offset=int(m[1]), last_offset=int(m[2]), count=int(m[3]),
                                codec=m[4].lower(), crc=int(m[5]), crc_valid=m[6] == "true"))
    return batches, txt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kafka-sh", required=True)
    ap.add_argument("--vectors-java", required=True)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--log-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--kafka-version", required=True)
    a = ap.parse_args()

    recs = records()
    kcat_version = subprocess.run(["kcat", "-V"], stdout=subprocess.PIPE).stdout.decode()
    m = re.search(r"Version (\S+) .*librdkafka (\S+)", kcat_version)
    peer_versions = {"java": f"kafka-clients {a.kafka_version}",
                     "kcat": f"kcat {m[1]} (librdkafka {m[2]})" if m else "kcat ?"}

    jobs = [(p, c) for p in PEERS for c in CODECS]
    topics = {j: f"vec-{j[0]}-{j[1]}" for j in jobs}
    java(["create", a.bootstrap] + list(topics.values()), a.kafka_sh, a.vectors_java)
    tmp = tempfile.mkdtemp(prefix="kafkit-vectors.")
    os.makedirs(a.out, exist_ok=True)
    files = []
    for peer, codec in jobs:
        topic = topics[(peer, codec)]
        t0 = time.time()
        if peer == "java":
            produce_java(a, topic, codec, recs, tmp)
        else:
            produce_kcat(a, topic, codec, recs)
        got = [json.loads(line) for line in
               java(["dump", a.bootstrap, topic, str(len(recs))], a.kafka_sh,
                    a.vectors_java).splitlines()
               if line.strip()]
        # The read-back must be exactly the intended records, in order.
        for i, (r, g) in enumerate(zip(recs, got)):
            want = dict(offset=i, key=b64(r["key"]), value=b64(r["value"]),
                        headers=[[n, b64(v)] for n, v in r["headers"]])
            have = {k: g[k] for k in ("offset", "key", "value", "headers")}
            if want != have:
                sys.exit(f"{peer}-{codec}: record {i} differs:\n want {want}\n have {have}")
            if peer == "java" and g["timestamp"] != BASE_TS + i * 1000:
                sys.exit(f"{peer}-{codec}: record {i} timestamp {g['timestamp']}")
        assert len(got) == len(recs)
        seg = os.path.join(a.log_dir, f"{topic}-0", "00000000000000000000.log")
        name = f"{peer}-{codec}.bin"
        dst = os.path.join(a.out, name)
        shutil.copyfile(seg, dst)
        data = open(dst, "rb").read()
        batches = parse_batches(data)
        if sum(b["record_count"] for b in batches) != len(recs):
            sys.exit(f"{name}: {sum(b['record_count'] for b in batches)} records in batches")
        if any(b["codec_id"] != CODECS[codec] for b in batches):
            sys.exit(f"{name}: codec ids {[b['codec_id'] for b in batches]}")
        dls, txt = dump_log_segments(a, dst, tmp)
        if len(dls) != len(batches) or not all(d["crc_valid"] for d in dls) \
                or any(d["codec"] != codec for d in dls):
            sys.exit(f"{name}: DumpLogSegments disagrees:\n{txt}")
        with open(os.path.join(tmp, name + ".dump.txt"), "w") as f:
            f.write(txt)
        files.append(dict(
            file=name, peer=peer, peer_version=peer_versions[peer], codec=codec,
            codec_id=CODECS[codec], topic=topic, size=len(data),
            timestamp_type="CreateTime",
            timestamp_rule=("exact: producer-set timestamps" if peer == "java" else
                            "exact as stored: CreateTime set by librdkafka at produce time"),
            dump_log_segments=dict(batches=len(dls), codecs=sorted({d["codec"] for d in dls}),
                                   all_crc_valid=all(d["crc_valid"] for d in dls)),
            batches=batches,
            records=[dict(offset=g["offset"], timestamp=g["timestamp"], key=g["key"],
                          value=g["value"], headers=g["headers"]) for g in got],
        ))
        print(f"{name}: {len(data)} bytes, {len(batches)} batches, "
              f"{', '.join(sorted({d['codec'] for d in dls}))}, {time.time() - t0:.1f}s",
              file=sys.stderr)

    manifest = dict(
        schema_version=1,
        description="Record batches written by real Kafka clients, captured from the broker's "
                    "log segment files. See README.md.",
        broker=f"Apache Kafka {a.kafka_version} (KRaft, scripts/kafka.sh)",
        encoding=dict(
            key="base64 of the key bytes (RFC 4648, with padding), or null for a null key",
            value="base64 of the value bytes, or null for a null value (tombstone)",
            headers="list of [name, value]: name a UTF-8 string, value base64 or null; in "
                    "record order, duplicates kept",
            timestamp="milliseconds since the epoch, as stored in the record (CreateTime)",
            codec_id="the low 3 bits of the batch attributes: 0 none, 1 gzip, 2 snappy, "
                     "3 lz4, 4 zstd",
            batches="parsed from each batch header in the file (uncompressed fields); "
                    "crc is the stored CRC-32C as an unsigned integer",
        ),
        files=files,
    )
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
