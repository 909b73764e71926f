#!/usr/bin/env python3
"""Prints a crate's public API, one item per line, from rustdoc's JSON output.

Usage: public-api.py CRATE.json [DEPENDENCY.json ...] > api/CRATE.txt

A dependency's JSON (another kafkit crate) lets types of that crate show under their public
path (`kafkit::TopicPartition`) rather than where they are defined.

The listing walks from the crate root the way a user can: public modules, re-exports (under
the name they are re-exported as), and what each public item exposes: struct fields, enum
variants, inherent methods, trait impls written in the source (derives included; auto traits
and blanket impls left out), trait items, constants and type aliases. Items hidden with
`#[doc(hidden)]` are not in rustdoc's output and so not listed. Lines are sorted, so a diff
shows what was added or removed, not where.
"""

import json
import sys

SUPPORTED_FORMATS = range(45, 80)


class Api:
    def __init__(self, doc, extern=None):
        self.extern = extern or {}
        self.index = doc["index"]
        self.paths = doc["paths"]
        self.lines = set()
        self.seen = set()
        # The shortest public path of each local item (filled by a first walk), so that a
        # type moving between private modules does not change the listing.
        self.public = {}
        self.naming = True

    def item(self, id_):
        return self.index.get(str(id_))

    # --- types -----------------------------------------------------------------------------

    def path_name(self, p):
        """A path (`resolved_path` or a trait) as its full name when rustdoc knows it."""
        id_ = p.get("id")
        known = self.paths.get(str(id_))
        if id_ in self.public:
            name = self.public[id_]
        elif known:
            name = "::".join(known["path"])
            name = self.extern.get(name, name)
        else:
            name = p.get("path", "?")
        return name + self.args(p.get("args"))

    def args(self, a):
        if not a:
            return ""
        if "angle_bracketed" in a:
            ab = a["angle_bracketed"]
            parts = [self.generic_arg(x) for x in ab.get("args", [])]
            for c in ab.get("constraints", []):
                binding = c.get("binding", {})
                name = c["name"] + self.args(c.get("args"))
                if "equality" in binding:
                    eq = binding["equality"]
                    parts.append(f"{name} = {self.term(eq)}")
                elif "constraint" in binding:
                    parts.append(f"{name}: {self.bounds(binding['constraint'])}")
            return "<" + ", ".join(parts) + ">" if parts else ""
        if "parenthesized" in a:
            p = a["parenthesized"]
            out = "(" + ", ".join(self.ty(t) for t in p.get("inputs", [])) + ")"
            if p.get("output"):
                out += " -> " + self.ty(p["output"])
            return out
        return ""

    def term(self, t):
        if "type" in t:
            return self.ty(t["type"])
        if "constant" in t:
            return t["constant"].get("expr", "?")
        return "?"

    def generic_arg(self, x):
        if "lifetime" in x:
            return x["lifetime"]
        if "type" in x:
            return self.ty(x["type"])
        if "const" in x:
            return x["const"].get("expr", "?")
        return "_"

    def bounds(self, bs):
        out = []
        for b in bs:
            if "trait_bound" in b:
                tb = b["trait_bound"]
                mod = "?" if tb.get("modifier") == "maybe" else ""
                out.append(mod + self.hrtb(tb.get("generic_params")) + self.path_name(tb["trait"]))
            elif "outlives" in b:
                out.append(b["outlives"])
            elif "use" in b:
                out.append("use<...>")
        return " + ".join(out)

    def hrtb(self, params):
        if not params:
            return ""
        return "for<" + ", ".join(p["name"] for p in params) + "> "

    def ty(self, t):
        if t is None:
            return "()"
        if "resolved_path" in t:
            return self.path_name(t["resolved_path"])
        if "generic" in t:
            return t["generic"]
        if "primitive" in t:
            return t["primitive"]
        if "borrowed_ref" in t:
            r = t["borrowed_ref"]
            lt = (r["lifetime"] + " ") if r.get("lifetime") else ""
            return "&" + lt + ("mut " if r.get("is_mutable") else "") + self.ty(r["type"])
        if "raw_pointer" in t:
            r = t["raw_pointer"]
            return ("*mut " if r.get("is_mutable") else "*const ") + self.ty(r["type"])
        if "slice" in t:
            return "[" + self.ty(t["slice"]) + "]"
        if "array" in t:
            return "[" + self.ty(t["array"]["type"]) + "; " + t["array"]["len"] + "]"
        if "tuple" in t:
            inner = [self.ty(x) for x in t["tuple"]]
            return "(" + ", ".join(inner) + ("," if len(inner) == 1 else "") + ")"
        if "impl_trait" in t:
            return "impl " + self.bounds(t["impl_trait"])
        if "dyn_trait" in t:
            d = t["dyn_trait"]
            parts = [self.hrtb(x.get("generic_params")) + self.path_name(x["trait"]) for x in d["traits"]]
            if d.get("lifetime"):
                parts.append(d["lifetime"])
            return "dyn " + " + ".join(parts)
        if "qualified_path" in t:
            q = t["qualified_path"]
            self_ty = self.ty(q["self_type"])
            if q.get("trait"):
                return f"<{self_ty} as {self.path_name(q['trait'])}>::{q['name']}" + self.args(q.get("args"))
            return f"{self_ty}::{q['name']}" + self.args(q.get("args"))
        if "function_pointer" in t:
            f = t["function_pointer"]
            return "fn" + self.sig(f["sig"])
        if "infer" in t:
            return "_"
        return "?"

    def generics(self, g):
        params = []
        for p in g.get("params", []):
            kind = p["kind"]
            if "lifetime" in kind:
                outlives = kind["lifetime"].get("outlives") or []
                params.append(p["name"] + (": " + " + ".join(outlives) if outlives else ""))
            elif "type" in kind:
                if kind["type"].get("is_synthetic"):
                    continue
                b = self.bounds(kind["type"].get("bounds", []))
                d = kind["type"].get("default")
                params.append(p["name"] + (": " + b if b else "") + (" = " + self.ty(d) if d else ""))
            elif "const" in kind:
                params.append("const " + p["name"] + ": " + self.ty(kind["const"]["type"]))
        return "<" + ", ".join(params) + ">" if params else ""

    def where(self, g):
        preds = []
        for w in g.get("where_predicates", []):
            if "bound_predicate" in w:
                bp = w["bound_predicate"]
                preds.append(self.hrtb(bp.get("generic_params")) + self.ty(bp["type"]) + ": " + self.bounds(bp["bounds"]))
            elif "lifetime_predicate" in w:
                lp = w["lifetime_predicate"]
                preds.append(lp["lifetime"] + ": " + " + ".join(lp["outlives"]))
            elif "eq_predicate" in w:
                ep = w["eq_predicate"]
                preds.append(self.ty(ep["lhs"]) + " == " + self.term(ep["rhs"]))
        return " where " + ", ".join(preds) if preds else ""

    def sig(self, s):
        inputs = ", ".join(self.param(name, t) for name, t in s["inputs"])
        out = f"({inputs})"
        if s.get("output") is not None:
            out += " -> " + self.ty(s["output"])
        return out

    def param(self, name, t):
        rendered = self.ty(t)
        if name == "self" and rendered in ("Self", "&Self", "&mut Self"):
            return rendered.replace("Self", "self")
        return f"{name}: {rendered}"

    def function(self, name, f):
        h = f.get("header", {})
        quals = "".join(
            q for q, on in (("const ", h.get("is_const")), ("async ", h.get("is_async")), ("unsafe ", h.get("is_unsafe"))) if on
        )
        g = f.get("generics", {})
        return f"{quals}fn {name}{self.generics(g)}{self.sig(f['sig'])}{self.where(g)}"

    # --- items -----------------------------------------------------------------------------

    def emit(self, line):
        if not self.naming:
            self.lines.add(line)

    @staticmethod
    def attrs(item):
        marks = []
        for a in item.get("attrs", []):
            text = a if isinstance(a, str) else json.dumps(a)
            if "non_exhaustive" in text:
                marks.append("#[non_exhaustive] ")
        return "".join(marks)

    def walk_module(self, path, module):
        for child in module["items"]:
            self.walk(path, child)

    def walk(self, parent, id_, name=None):
        item = self.item(id_)
        if item is None:
            return
        inner_kind, inner = next(iter(item["inner"].items()))
        if inner_kind == "use":
            if inner.get("is_glob"):
                self.emit(f"pub use {parent}::{inner['source']}::*")
                target = self.item(inner["id"]) if inner.get("id") is not None else None
                if target and "module" in target["inner"]:
                    self.walk_module(parent, target["inner"]["module"])
                return
            target_id = inner.get("id")
            if target_id is None or self.item(target_id) is None:
                known = self.paths.get(str(target_id)) if target_id is not None else None
                source = "::".join(known["path"]) if known else inner["source"]
                self.emit(f"pub use {parent}::{inner['name']} = {source}")
                return
            self.walk(parent, target_id, inner["name"])
            return
        name = name or item.get("name")
        path = f"{parent}::{name}" if parent else name
        if self.naming:
            best = self.public.get(id_)
            if best is None or (path.count("::"), path) < (best.count("::"), best):
                self.public[id_] = path
        key = (path, id_)
        if key in self.seen:
            return
        self.seen.add(key)
        mark = self.attrs(item)
        if inner_kind == "module":
            if parent:
                self.emit(f"pub mod {path}")
            self.walk_module(path, inner)
        elif inner_kind == "struct":
            g = inner["generics"]
            kind = inner["kind"]
            head = f"{mark}pub struct {path}{self.generics(g)}"
            if "tuple" in kind:
                fields = ", ".join(
                    "_" if f is None else "pub " + self.ty(self.item(f)["inner"]["struct_field"]) for f in kind["tuple"]
                )
                self.emit(f"{head}({fields}){self.where(g)}")
            elif "plain" in kind:
                self.emit(head + self.where(g))
                for f in kind["plain"]["fields"]:
                    field = self.item(f)
                    if field:
                        self.emit(f"pub {path}::{field['name']}: {self.ty(field['inner']['struct_field'])}")
            else:
                self.emit(head + self.where(g))
            self.impls(path, inner.get("impls", []))
        elif inner_kind == "enum":
            g = inner["generics"]
            self.emit(f"{mark}pub enum {path}{self.generics(g)}{self.where(g)}")
            for v in inner["variants"]:
                self.variant(path, self.item(v))
            self.impls(path, inner.get("impls", []))
        elif inner_kind == "union":
            self.emit(f"pub union {path}")
            self.impls(path, inner.get("impls", []))
        elif inner_kind == "function":
            self.emit(f"pub {self.function(path, inner)}")
        elif inner_kind == "trait":
            g = inner["generics"]
            b = self.bounds(inner.get("bounds", []))
            unsafe = "unsafe " if inner.get("is_unsafe") else ""
            self.emit(f"pub {unsafe}trait {path}{self.generics(g)}{': ' + b if b else ''}{self.where(g)}")
            for t in inner["items"]:
                self.assoc(path, self.item(t), "")
        elif inner_kind == "type_alias":
            g = inner["generics"]
            self.emit(f"pub type {path}{self.generics(g)} = {self.ty(inner['type'])}")
        elif inner_kind == "constant":
            self.emit(f"pub const {path}: {self.ty(inner['type'])}")
        elif inner_kind == "static":
            self.emit(f"pub static {path}: {self.ty(inner['type'])}")
        elif inner_kind in ("macro", "proc_macro"):
            self.emit(f"macro {path}!")
        else:
            self.emit(f"pub {inner_kind} {path}")

    def variant(self, enum_path, v):
        if v is None:
            return
        path = f"{enum_path}::{v['name']}"
        kind = v["inner"]["variant"]["kind"]
        if kind == "plain" or "plain" in (kind if isinstance(kind, dict) else {}):
            self.emit(f"{self.attrs(v)}{path}")
        elif "tuple" in kind:
            fields = ", ".join(
                "_" if f is None else self.ty(self.item(f)["inner"]["struct_field"]) for f in kind["tuple"]
            )
            self.emit(f"{self.attrs(v)}{path}({fields})")
        elif "struct" in kind:
            self.emit(f"{self.attrs(v)}{path} {{ .. }}")
            for f in kind["struct"]["fields"]:
                field = self.item(f)
                if field:
                    self.emit(f"{path}::{field['name']}: {self.ty(field['inner']['struct_field'])}")

    def impls(self, path, impl_ids):
        for i in impl_ids:
            imp = self.item(i)
            if imp is None:
                continue
            inner = imp["inner"]["impl"]
            if inner.get("is_synthetic") or inner.get("blanket_impl"):
                continue
            g = inner["generics"]
            if inner.get("trait") is None:
                for m in inner["items"]:
                    member = self.item(m)
                    if member and member.get("visibility") == "public":
                        self.assoc(path, member, "pub ")
            else:
                neg = "!" if inner.get("is_negative") else ""
                self.emit(
                    f"impl{self.generics(g)} {neg}{self.path_name(inner['trait'])} for {self.ty(inner['for'])}{self.where(g)}"
                )

    def assoc(self, path, member, vis):
        if member is None:
            return
        kind, inner = next(iter(member["inner"].items()))
        name = f"{path}::{member['name']}"
        if kind == "function":
            self.emit(f"{vis}{self.function(name, inner)}")
        elif kind == "assoc_const":
            self.emit(f"{vis}const {name}: {self.ty(inner['type'])}")
        elif kind == "assoc_type":
            b = self.bounds(inner.get("bounds", []))
            self.emit(f"{vis}type {name}{': ' + b if b else ''}")
        elif kind == "constant":
            self.emit(f"{vis}const {name}: {self.ty(inner['type'])}")


def load(path):
    with open(path) as f:
        doc = json.load(f)
    version = doc.get("format_version")
    if version not in SUPPORTED_FORMATS:
        sys.exit(f"{path}: rustdoc JSON format {version} is not one scripts/public-api.py knows")
    return doc


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: public-api.py CRATE.json [DEPENDENCY.json ...]")
    extern = {}
    for dep in sys.argv[2:]:
        dep_doc = load(dep)
        dep_api = Api(dep_doc)
        dep_api.walk("", dep_doc["root"])
        for id_, public in dep_api.public.items():
            known = dep_doc["paths"].get(str(id_))
            if known:
                extern["::".join(known["path"])] = public
    doc = load(sys.argv[1])
    api = Api(doc, extern)
    api.walk("", doc["root"])
    api.naming = False
    api.seen.clear()
    api.walk("", doc["root"])
    for line in sorted(api.lines):
        print(line)


if __name__ == "__main__":
    main()
