#!/usr/bin/env python3
"""Semver gate (issue #16): fails on a public-API break that was not announced.

The public API of each library crate is listed in api/<package>.txt (scripts/public-api.sh
keeps the listing equal to the code). This compares the listings with those of the last
release — the newest git tag `vX.Y.Z` — and calls every line the release had and the tree does
not (an item removed, or its signature changed) a break. A break passes only when it is
announced:
  - the workspace version (Cargo.toml, [workspace.package]) is a semver-major step past the
    tag's (for 0.x: the minor number; for 0.0.x: the patch), and
  - every broken line is quoted in api/BREAKING.md (a list of what the next release breaks,
    emptied after each release).
Added lines are not breaks. With no release tag there is nothing to compare: it says so and
passes (the listing check still guards every change).

    python3 scripts/semver_gate.py                 # against the newest vX.Y.Z tag
    python3 scripts/semver_gate.py --baseline REF  # against any git ref
    python3 scripts/semver_gate.py --self-test     # shows the gate catches a break (CI runs it)
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ["kafkit-wire", "kafkit", "kafkit-events"]


def git(*args):
    return subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True)


def version_of(cargo_toml_text):
    m = re.search(r'\[workspace\.package\][^\[]*?\nversion\s*=\s*"([^"]+)"', cargo_toml_text)
    if not m:
        raise SystemExit("semver gate: no [workspace.package] version in Cargo.toml")
    return m.group(1)


def parse(v):
    core = v.split("-")[0].split("+")[0]
    parts = [int(x) for x in core.split(".")]
    return (parts + [0, 0, 0])[:3]


def is_major_step(old, new):
    """Whether `new` may break what `old` promised, by Cargo's semver rules."""
    o, n = parse(old), parse(new)
    if o[0] > 0:
        return n[0] > o[0]
    if o[1] > 0:
        return n[0] > 0 or n[1] > o[1]
    return n[0] > 0 or n[1] > 0 or n[2] > o[2]


def judge(baseline, current, old_version, new_version, announced):
    """baseline/current: {package: set(lines)}. Returns the list of unannounced problems."""
    problems = []
    for pkg in PACKAGES:
        gone = sorted(baseline.get(pkg, set()) - current.get(pkg, set()))
        if not gone:
            continue
        major = is_major_step(old_version, new_version)
        for line in gone:
            if not major:
                problems.append(f"{pkg}: `{line}` is gone but the version {old_version} -> "
                                f"{new_version} is not a major step")
            elif line not in announced:
                problems.append(f"{pkg}: `{line}` is gone and not quoted in api/BREAKING.md")
    return problems


def read_lines(text):
    return {l for l in text.splitlines() if l.strip()}


def current_listings():
    out = {}
    for pkg in PACKAGES:
        with open(os.path.join(ROOT, "api", f"{pkg}.txt")) as f:
            out[pkg] = read_lines(f.read())
    return out


def announced_lines():
    path = os.path.join(ROOT, "api", "BREAKING.md")
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        return f.read()


def baseline_listings(ref):
    out = {}
    for pkg in PACKAGES:
        shown = git("show", f"{ref}:api/{pkg}.txt")
        # A crate without a listing at the release promised nothing through it.
        out[pkg] = read_lines(shown.stdout) if shown.returncode == 0 else set()
    cargo = git("show", f"{ref}:Cargo.toml")
    if cargo.returncode != 0:
        raise SystemExit(f"semver gate: no Cargo.toml at {ref}")
    return out, version_of(cargo.stdout)


def newest_release_tag():
    tags = git("tag", "--list", "v[0-9]*").stdout.split()
    tags = [t for t in tags if re.fullmatch(r"v\d+\.\d+\.\d+", t)]
    return max(tags, key=lambda t: parse(t[1:])) if tags else None


def self_test():
    """The gate must fail a removed line under a non-major bump or without an announcement,
    and pass it with both; an added line is never a break."""
    cur = current_listings()
    pkg = "kafkit"
    probe = "pub fn kafkit::semver_gate_probe_removed_item()"
    base = {p: set(lines) for p, lines in cur.items()}
    base[pkg].add(probe)
    failures = []
    if not judge(base, cur, "0.1.0", "0.1.1", probe):
        failures.append("a removed line under a patch bump passed")
    if not judge(base, cur, "0.1.0", "0.2.0", ""):
        failures.append("an unannounced removed line passed")
    if judge(base, cur, "0.1.0", "0.2.0", f"- `{probe}`"):
        failures.append("an announced removal under a major step failed")
    if judge(cur, base, "0.1.0", "0.1.1", ""):
        failures.append("an added line was called a break")
    if not (is_major_step("1.2.3", "2.0.0") and not is_major_step("1.2.3", "1.3.0")
            and is_major_step("0.0.3", "0.0.4") and not is_major_step("0.3.1", "0.3.2")):
        failures.append("semver steps misjudged")
    if failures:
        print("semver gate self-test FAILED: " + "; ".join(failures))
        return 1
    print("semver gate self-test: a removed item is caught unless announced with a major step")
    return 0


def main(argv):
    if argv[:1] == ["--self-test"]:
        return self_test()
    ref = None
    if argv[:1] == ["--baseline"] and len(argv) == 2:
        ref = argv[1]
    elif argv:
        print(__doc__)
        return 2
    ref = ref or newest_release_tag()
    if ref is None:
        print("semver gate: no release tag (vX.Y.Z) yet: nothing to compare against "
              "(api/*.txt still pins every change)")
        return 0
    base, old_version = baseline_listings(ref)
    with open(os.path.join(ROOT, "Cargo.toml")) as f:
        new_version = version_of(f.read())
    problems = judge(base, current_listings(), old_version, new_version, announced_lines())
    if problems:
        print(f"semver gate: {len(problems)} unannounced break(s) against {ref} "
              f"({old_version} -> {new_version}):")
        for p in problems:
            print("  " + p)
        return 1
    print(f"semver gate: no unannounced break against {ref} ({old_version} -> {new_version})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
