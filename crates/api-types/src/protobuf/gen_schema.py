#!/usr/bin/env python3
"""Regenerates `schema.txt`, the field table `protobuf.rs` decodes Kubernetes protobuf with.

The table is derived from two crates already in the dependency tree, so it matches the
types the rest of the project uses:
  * k8s-pb (prost-generated from upstream `generated.proto`): messages, field numbers,
    wire types, message references, list-wrapper markers, (apiVersion, kind) of resources;
  * k8s-openapi (the JSON form): the exact JSON field names (prost's snake_case loses
    acronyms: `hostIPC` -> `host_ipc`) and which fields are required.

Usage: python3 gen_schema.py [CARGO_REGISTRY_SRC_DIR] > schema.txt

Output lines (space separated):
  K <apiVersion> <kind> <message>            a resource kind served by the message
  M <message> [L]                            a message; L = list wrapper (JSON is its `items` array)
  F <tag> <jsonName> <o|r|m> <type> [!]      a field: optional, repeated or map; `!` = required in JSON
     <type> is a scalar (string bytes bool int32 int64 double) or `m:<message>`; for maps
     it is the value type (keys are always strings).
"""
import glob
import os
import re
import sys

REGISTRY = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cargo/registry/src/*")
PB_ROOT = glob.glob(os.path.join(REGISTRY, "k8s-pb-0.9.*/src"))[0]
# Every Kubernetes version k8s-openapi carries, oldest first, so newer field lists win and
# fields k8s-pb has from a newer release than our feature flag are still named right.
OA_ROOTS = sorted(glob.glob(os.path.join(REGISTRY, "k8s-openapi-0.29.*/src/v1_*")),
                  key=lambda p: int(p.rsplit("_", 1)[1]))
SKIP = ("metrics", "apimachinery/pkg/apis/testapigroup")


def norm(name):
    return re.sub(r"[_\-$]", "", name).lower()


# --- k8s-openapi: json field names and required lists, per module and struct ------------
oa_structs = {}  # (module, normalized struct name) -> (json names, required)
oa_global = {}  # normalized field name -> set of json names
for oa_root, path in ((r, p) for r in OA_ROOTS for p in glob.glob(os.path.join(r, "**/*.rs"), recursive=True)):
    text = open(path).read()
    module = os.path.relpath(os.path.dirname(path), oa_root).replace(os.sep, ".")
    struct = re.search(r"^pub struct (\w+)", text, re.M)
    if struct is None:
        continue
    for m in re.finditer(r'deserialize_struct\(\s*[^,]+,\s*&\[(.*?)\]', text, re.S):
        names = re.findall(r'"([^"]+)"', m.group(1))
        req = re.search(r'"required":\s*\[(.*?)\]', text, re.S)
        required = set(re.findall(r'"([^"]+)"', req.group(1))) if req else set()
        oa_structs[(module, norm(struct.group(1)))] = (names, required)
        for n in names:
            oa_global.setdefault(norm(n), set()).add(n)


def lower_camel(snake):
    parts = snake.split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


# --- k8s-pb: messages and fields --------------------------------------------------------
FIELD = re.compile(
    r'#\[prost\((?P<attr>[^\]]*)\)\]\s*pub (?P<name>(?:r#)?[a-z0-9_]+):\s*(?P<ty>.*?),\n(?=\s*(?:///|#\[|\Z))', re.S)
STRUCT = re.compile(r'((?:^///[^\n]*\n)*)#\[derive\([^\n]*\)\]\npub struct (\w+) \{(?:\}|\n(.*?)^\})', re.S | re.M)


def resolve(module, ty):
    """Resolves a Rust type path of a message field to `module.Message`."""
    ty = re.sub(r"::core::option::Option<|::prost::alloc::vec::Vec<|::prost::alloc::boxed::Box<", "", ty)
    ty = re.sub(r"\s+", "", ty).rstrip(">,")
    if "BTreeMap<" in ty:
        ty = ty.split(",")[-1]
    parts = ty.split("::")
    mod = module.split(".")
    while parts and parts[0] == "super":
        mod = mod[:-1]
        parts = parts[1:]
    if parts and parts[0] == "crate":
        mod, parts = [], parts[1:]
    return ".".join(mod + parts)


messages = {}  # full name -> (doc, [(attr, name, ty)], openapi names or None, required)
kinds = []
for path in sorted(glob.glob(os.path.join(PB_ROOT, "**/mod.rs"), recursive=True)):
    rel = os.path.relpath(os.path.dirname(path), PB_ROOT)
    if rel.startswith(SKIP) or rel == ".":
        continue
    module = rel.replace(os.sep, ".")
    text = open(path).read()
    for kind in re.finditer(r'impl crate::Resource for (\w+) \{\s*const API_VERSION: &\'static str = "([^"]+)";'
                            r'.*?const KIND: &\'static str = "([^"]+)";', text, re.S):
        kinds.append(f"K {kind.group(2)} {kind.group(3)} {module}.{kind.group(1)}")
    for s in STRUCT.finditer(text):
        doc, sname, body = s.group(1), s.group(2), s.group(3) or ""
        fields = []
        for f in FIELD.finditer(body):
            attr, name, ty = f.group("attr"), f.group("name").removeprefix("r#"), f.group("ty")
            target = resolve(module, ty) if "message" in attr else None
            fields.append((attr, name, target))
        names, required = oa_structs.get((module, norm(sname)), (None, set()))
        messages[f"{module}.{sname}"] = (doc, fields, names, required)


def inlined(target, parent_names):
    """A Go embedded struct (`json:",inline"`) has no JSON name of its own; its fields (at
    least half of them: it may embed further structs) appear among the parent's."""
    if target not in messages:
        return False
    child = [norm(name) for _, name, _ in messages[target][1]]
    parent = {norm(n) for n in parent_names}
    return bool(child) and 2 * sum(c in parent for c in child) >= len(child)


# Messages that only exist inlined (VolumeSource, ProbeHandler) take the JSON names of the
# struct that embeds them; repeat for embeds of embeds.
for _ in range(3):
    for full, (doc, fields, names, required) in list(messages.items()):
        for _, name, target in fields:
            if names is not None and norm(name) not in {norm(n) for n in names} and inlined(target, names):
                if messages[target][2] is None:
                    messages[target] = messages[target][:2] + (names, messages[target][3])

out = list(kinds)
for full, (doc, fields, names, required) in messages.items():
    wrapper = "+protobuf.nullable=true" in doc and len(fields) == 1 and fields[0][1] == "items"
    out.append(f"M {full}" + (" L" if wrapper else ""))
    by_norm = {norm(n): n for n in names or []}
    for attr, name, target in fields:
        tag = re.search(r'tag = "(\d+)"', attr).group(1)
        flags = ""
        if norm(name) in by_norm:
            json = by_norm[norm(name)]
        elif names is not None and inlined(target, names):
            json, flags = lower_camel(name), " I"
        elif len(oa_global.get(norm(name), ())) == 1:
            json = next(iter(oa_global[norm(name)]))
        else:
            json = lower_camel(name)
        if attr.startswith("btree_map"):
            value = re.search(r'btree_map = "string, (\w+)"', attr).group(1)
            label, vtype = "m", ("m:" + target if value == "message" else value)
        else:
            kind_ = attr.split(",")[0].strip()
            if kind_.startswith("bytes"):
                kind_ = "bytes"
            label = "r" if "repeated" in attr else "o"
            vtype = "m:" + target if kind_ == "message" else kind_
        if json in required:
            flags += " !"
        out.append(f"F {tag} {json} {label} {vtype}{flags}")
print("\n".join(out))
