"""Build lab/pve/pve-api-schema.json from PVE's api-viewer schema (apidoc.js or its apiSchema as JSON).

    python -m lab.pve.schema_build APIDOC [--pve-version 9.1] [--source TEXT] [--out PATH]

Keeps, for every path and method, what validation needs (parameters, returns, permissions, proxyto,
allowtoken, protected) and drops the prose (descriptions, type texts). The areas the lab never
emulates (QEMU, Ceph, SDN) keep their methods' names only, so that a route declared on them is still
known to be PVE's. The api-viewer folds indexed keys (net0..net31) into `net[n]` and loses the count:
INDEX_COUNTS restores it from PVE's sources.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

DEFAULT_OUT = Path(__file__).with_name("pve-api-schema.json")
PROSE = {"description", "verbose_description", "typetext", "format_description", "title", "name", "method"}
KEPT = ("parameters", "returns", "permissions", "proxyto", "allowtoken", "protected")
NAMES_ONLY = re.compile(r"^/nodes/\{node\}/(qemu|ceph|sdn)(/|$)|^/cluster/(ceph|sdn)(/|$)")
# How many of each indexed key PVE defines (the api-viewer shows only `key[n]`).
INDEX_COUNTS = {
    "net": 32,       # pve-container src/PVE/LXC/Config.pm: $MAX_LXC_NETWORKS
    "mp": 256,       # pve-container src/PVE/LXC/Config.pm: $MAX_MOUNT_POINTS
    "unused": 256,   # pve-container src/PVE/LXC/Config.pm: $MAX_UNUSED_DISKS
    "dev": 256,      # pve-container src/PVE/LXC/Config.pm: $MAX_DEVICES
    "link": 8,       # pve-cluster src/PVE/Corosync.pm: MAX_LINK_INDEX = 7
    "acmedomain": 5,  # pve-manager PVE/NodeConfig.pm: $MAXDOMAINS
}
NOTICE = ("Derived from Proxmox VE's API schema (the api-viewer's apidoc.js), itself generated from "
          "Proxmox VE's AGPL-3.0 sources (Proxmox Server Solutions GmbH); distributed under "
          "AGPL-3.0-or-later. Descriptions removed; built by lab/pve/schema_build.py.")


class BuildError(Exception):
    """The input is not an api-viewer schema, or holds an indexed key without a known count."""


def read_api_schema(path: Path) -> list:
    """Return the apiSchema array from apidoc.js (`const apiSchema = [...];`) or a JSON file of it."""
    text = path.read_text()
    if not text.lstrip().startswith("["):
        match = re.search(r"apiSchema\s*=\s*(\[.*\])\s*;?\s*(?:\n|$)", text, re.DOTALL)
        if not match:
            raise BuildError(f"{path}: no `apiSchema = [...]` found; expected the api-viewer's apidoc.js or its JSON")
        text = match.group(1)
    try:
        tree = json.loads(text)
    except ValueError as exc:
        raise BuildError(f"{path}: apiSchema is not JSON ({exc})") from None
    if not isinstance(tree, list) or not all(isinstance(n, dict) and "path" in n for n in tree):
        raise BuildError(f"{path}: apiSchema is not a list of {{path, info, children}} nodes")
    return tree


def _strip(value, where: str):
    """A schema without its prose; the names inside `properties` and property-string formats stay."""
    if isinstance(value, list):
        return [_strip(item, where) for item in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key in PROSE and not isinstance(item, (dict, list)):
            continue  # prose; a parameter called `description` lives inside `properties`, kept by _named
        if key == "properties" or (key == "format" and isinstance(item, dict)):
            out[key] = _named(item, where)
        else:
            out[key] = _strip(item, where)
    return out


def _named(props: dict, where: str) -> dict:
    out = {}
    for name, schema in props.items():
        if name.endswith("[n]"):
            base = name[:-3]
            if base not in INDEX_COUNTS:
                raise BuildError(f"{where}: indexed key {name} has no count in INDEX_COUNTS (read it from "
                                 "the PVE source that defines it)")
            schema = {**schema, "x-count": INDEX_COUNTS[base]}
        out[name] = _strip(schema, where)
    return out


def compact(tree: list) -> dict[str, dict]:
    """Return {"METHOD /path": method schema}, sorted; methods of the names-only areas map to {}."""
    methods: dict[str, dict] = {}

    def walk(node: dict) -> None:
        for method, info in sorted((node.get("info") or {}).items()):
            key = f"{method} {node['path']}"
            if NAMES_ONLY.search(node["path"]):
                methods[key] = {}
            else:
                methods[key] = {k: _strip(info[k], key) for k in KEPT if k in info}
        for child in node.get("children") or []:
            walk(child)

    for top in tree:
        walk(top)
    return dict(sorted(methods.items(), key=lambda kv: (kv[0].split(" ", 1)[1], kv[0])))


def render(methods: dict[str, dict], pve_version: str, source: str) -> str:
    """Return the schema file's text: a header, then one method per line (diffs stay readable)."""
    header = {"notice": NOTICE, "pve_version": pve_version, "source": source,
              "detail_omitted": NAMES_ONLY.pattern}
    lines = [f" {json.dumps(k)}: {json.dumps(v, separators=(',', ':'), sort_keys=True)}"
             for k, v in methods.items()]
    head = ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in header.items())
    return "{\n" + head + ',\n "methods": {\n' + ",\n".join(lines) + "\n }\n}\n"


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, build the schema file, print one line of what was written."""
    ap = argparse.ArgumentParser(prog="python -m lab.pve.schema_build", description=__doc__.splitlines()[0])
    ap.add_argument("apidoc", type=Path, help="apidoc.js from /pve-docs/api-viewer/, or its apiSchema as JSON")
    ap.add_argument("--pve-version", default="9.1", help="the PVE release the apidoc was taken from")
    ap.add_argument("--source", default="", help="where the apidoc came from (recorded in the file)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    try:
        methods = compact(read_api_schema(args.apidoc))
    except (OSError, BuildError) as exc:
        print(f"schema_build: {exc}", file=sys.stderr)
        return 1
    text = render(methods, args.pve_version, args.source or str(args.apidoc))
    args.out.write_text(text)
    detailed = sum(1 for v in methods.values() if v)
    print(f"schema_build: {args.out}: {len(methods)} methods ({detailed} with parameters), {len(text)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
