#!/usr/bin/env python3
"""Generate crates/wire/src/guard/schemas.rs from Apache Kafka's message definitions.

The definitions (common/message/*.json) ship inside the kafka-clients sources jar on Maven
Central. kafka-protocol 0.18.0 is generated from Kafka 4.1.0, so that is the version we read:

    mvn -B -q dependency:get \
        -Dartifact=org.apache.kafka:kafka-clients:4.1.0:jar:sources -Dtransitive=false
    python3 scripts/gen-guard-schemas.py [path/to/kafka-clients-4.1.0-sources.jar]

Python 3 standard library only. The output is committed; CI does not run this script.
"""

import json
import os
import re
import sys
import zipfile

KAFKA_VERSION = "4.1.0"
DEFAULT_JAR = os.path.expanduser(
    f"~/.m2/repository/org/apache/kafka/kafka-clients/{KAFKA_VERSION}/"
    f"kafka-clients-{KAFKA_VERSION}-sources.jar"
)
OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "crates", "wire", "src", "guard", "schemas.rs"
)

# The APIs kafkit speaks: keep in step with `api::SUPPORTED` in crates/wire/src/api/table.rs.
API_KEYS = [
    0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
    29, 30, 31, 32, 33, 35, 36, 37, 42, 43, 44, 47, 60, 61, 65, 66, 68, 69, 75,
]

MAX = 32767
PRIMITIVES = {
    "bool": "BOOL",
    "int8": "I8",
    "int16": "I16",
    "uint16": "U16",
    "int32": "I32",
    "uint32": "U32",
    "int64": "I64",
    "float64": "F64",
    "uuid": "UUID",
    "string": "STR",
    "bytes": "BYTES",
    "records": "RECORDS",
}


def strip_comments(text):
    """Drop `//` comments outside of JSON strings."""
    out = []
    in_str = False
    i = 0
    while i < len(text):
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif text.startswith("//", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def parse_versions(spec):
    """'0+' / '1-3' / '4' / 'none' -> (min, max); empty range is (1, 0)."""
    if spec is None or spec == "none":
        return (1, 0)
    spec = spec.strip()
    if spec.endswith("+"):
        return (int(spec[:-1]), MAX)
    if "-" in spec:
        lo, hi = spec.split("-")
        return (int(lo), int(hi))
    return (int(spec), int(spec))


def const_name(*parts):
    name = "_".join(parts)
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


class Gen:
    def __init__(self):
        self.consts = []  # (name, body) in emission order
        self.emitted = {}

    def struct_const(self, owner, struct_name, fields, common):
        name = const_name(owner, struct_name)
        body = ",\n".join("    " + self.field(owner, f, common) for f in fields)
        if name in self.emitted:
            if self.emitted[name] != body:
                raise SystemExit(f"{owner}: two different structs named {struct_name}")
            return name
        self.emitted[name] = body
        self.consts.append((name, body))
        return name

    def type_expr(self, owner, field, common):
        ty = field["type"]
        array = ty.startswith("[]")
        elem = ty[2:] if array else ty
        if elem in PRIMITIVES:
            inner = PRIMITIVES[elem]
        else:
            if "fields" in field:
                sname = self.struct_const(owner, elem, field["fields"], common)
            elif elem in common:
                sname = self.struct_const(owner, elem, common[elem], common)
            else:
                raise SystemExit(f"{owner}: unknown type {ty}")
            inner = f"Type::Struct({sname})"
        if array:
            return f"Type::Array(&{inner})"
        return inner

    def field(self, owner, f, common):
        if "flexibleVersions" in f:
            # Only RequestHeader.ClientId does this; the walk has no notion of it.
            raise SystemExit(f"{owner}.{f['name']}: field-level flexibleVersions unsupported")
        ty = self.type_expr(owner, f, common)
        lo, hi = parse_versions(f.get("versions"))
        expr = f'f("{f["name"]}", {ty}, {lo}, {hi})'
        nlo, nhi = parse_versions(f.get("nullableVersions"))
        if nlo <= nhi:
            expr += f".null({nlo}, {nhi})"
        if "taggedVersions" in f:
            tlo, thi = parse_versions(f["taggedVersions"])
            expr += f'.tag({int(f["tag"])}, {tlo}, {thi})'
        return expr


def load(jar):
    defs = {}
    with zipfile.ZipFile(jar) as z:
        for name in z.namelist():
            if name.startswith("common/message/") and name.endswith(".json"):
                spec = json.loads(strip_comments(z.read(name).decode("utf-8")))
                if spec.get("type") in ("request", "response"):
                    defs[(spec["apiKey"], spec["type"])] = spec
    return defs


def main():
    jar = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_JAR
    defs = load(jar)
    gen = Gen()
    messages = {"request": [], "response": []}
    for kind in ("response", "request"):
        for key in API_KEYS:
            spec = defs[(key, kind)]
            common = {s["name"]: s["fields"] for s in spec.get("commonStructs", [])}
            owner = spec["name"]
            top = gen.struct_const(owner, "Fields", spec["fields"], common)
            vlo, vhi = parse_versions(spec["validVersions"])
            flo, fhi = parse_versions(spec.get("flexibleVersions"))
            messages[kind].append(
                f'    Message {{ name: "{owner}", api_key: {key}, valid: v({vlo}, {vhi}), '
                f"flexible: v({flo}, {fhi}), fields: {top} }}"
            )

    lines = [
        f"// @generated by scripts/gen-guard-schemas.py from Apache Kafka {KAFKA_VERSION}'s",
        "// message definitions (clients/src/main/resources/common/message/*.json, read from the",
        f"// org.apache.kafka:kafka-clients:{KAFKA_VERSION} sources jar). Do not edit.",
        "//",
        "// The source definitions are Copyright The Apache Software Foundation and licensed under",
        "// the Apache License, Version 2.0 (https://www.apache.org/licenses/LICENSE-2.0).",
        "",
        "//! Kafka's message schemas, as tables for the guard walk.",
        "",
        "use super::schema::*;",
        "",
        "/// The response schemas of every API kafkit speaks, in API key order.",
        "pub(crate) static RESPONSES: &[Message] = &[",
        ",\n".join(messages["response"]) + ",",
        "];",
        "",
        "/// The request schemas of every API kafkit speaks, in API key order.",
        "pub(crate) static REQUESTS: &[Message] = &[",
        ",\n".join(messages["request"]) + ",",
        "];",
        "",
    ]
    for name, body in gen.consts:
        lines.append(f"const {name}: &[Field] = &[\n{body},\n];" if body else f"const {name}: &[Field] = &[];")
        lines.append("")
    text = "\n".join(lines)
    with open(OUT, "w", encoding="utf-8") as out:
        out.write(text)
    print(f"wrote {os.path.normpath(OUT)}: {len(gen.consts)} structs, "
          f"{len(messages['response'])} responses, {len(messages['request'])} requests")


if __name__ == "__main__":
    main()
