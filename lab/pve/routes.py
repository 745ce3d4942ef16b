"""The route table: a PVE method declared by name ("POST /nodes/{node}/lxc") + its handler.

Parameters, permissions (the schema's `check`), proxying and returns all come from PVE's schema
(lab/pve/apischema.py); a route whose method PVE does not have, or whose schema uses a format
lab/pve/formats.py lacks, is refused at declaration. Adding an endpoint = `@route("METHOD /path")` + handler.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import apischema, formats
from .auth import Principal

# Path parameters that may hold a slash: an IP set entry's network with its prefix (…/ipset/lan/198.18.0.0/15, as
# pvesh and the web UI send it), and a volume id
# (Storage/Content.pm is mounted with fragmentDelimiter '': `backup:backup/vzdump-…` keeps its slash).
_SEGMENT = {"cidr": r"[^/]+(?:/[0-9]{1,3})?", "volume": r".+"}

# A handler's own permission check, run after validation (PVE's `user: all` methods check in the handler).
Perm = tuple[str, list[str], bool] | Callable[[dict], tuple[str, list[str], bool]] | None


class RouteError(Exception):
    """A route that is not PVE's, or that this emulator cannot validate."""


@dataclass
class Call:
    """One API call as a handler sees it."""

    app: Any
    principal: Principal
    params: dict[str, Any]

    @property
    def vmid(self) -> int:
        """Return the call's vmid parameter."""
        return int(self.params["vmid"])


@dataclass
class WithTotal:
    """A result carrying PVE's top-level `total` next to `data` (task logs)."""

    data: Any
    total: int


@dataclass
class Route:
    """One served PVE method."""

    method: str
    pattern: str
    handler: Callable[[Call], Any]
    schema: dict
    perm: Perm = None
    regex: re.Pattern = field(init=False)

    def __post_init__(self):
        def group(m: re.Match) -> str:
            return f"(?P<{m.group(1).replace('-', '_')}>{_SEGMENT.get(m.group(1), '[^/]+')})"

        rx = re.sub(r"\\\{([\w-]+)\\\}", group, re.escape(self.pattern))
        self.regex = re.compile(f"^{rx}/?$")

    @property
    def name(self) -> str:
        """The method's key in PVE's schema: "METHOD /path"."""
        return f"{self.method} {self.pattern}"

    @property
    def parameters(self) -> dict:
        """The schema of the method's parameters."""
        return self.schema.get("parameters") or {"additionalProperties": 0}

    def schema_check(self, params: dict) -> tuple[str, list[str], bool] | None:
        """The schema's `check: [perm, path, privs, any, 1]` for these params (None: `user: all`)."""
        check = (self.schema.get("permissions") or {}).get("check")
        if not check:
            return None
        if check[0] != "perm":
            raise RouteError(f"{self.name}: permission test {check[0]!r} is not emulated")
        _, path, privs, *options = check
        opts = dict(zip(options[::2], options[1::2], strict=False))
        path = re.sub(r"\{([\w-]+)\}", lambda m: str(params.get(m.group(1), "")), path)
        return path, list(privs), bool(opts.get("any"))

    def handler_check(self, params: dict) -> tuple[str, list[str], bool] | None:
        """The handler's own permission check for these typed params (None when it has none)."""
        if self.perm is None:
            return None
        if callable(self.perm):
            return self.perm(params)
        path, privs, any_of = self.perm
        return path.format_map({k: params.get(k, "") for k in ("vmid", "node")}), privs, any_of


ROUTES: list[Route] = []


def route(name: str, perm: Perm = None):
    """Serve PVE's method `name` ("METHOD /path") with the decorated handler; perm: the handler's own check."""
    method, _, pattern = name.partition(" ")
    schema = apischema.methods().get(name)
    if schema is None:
        raise RouteError(f"{name}: PVE {apischema.pve_release()} has no such method (lab/pve/pve-api-schema.json)")
    if not schema:
        raise RouteError(f"{name}: the schema file keeps this area's names only; rebuild it with its detail "
                         "(lab/pve/schema_build.py NAMES_ONLY)")
    missing = sorted(f for f in apischema.named_formats(schema.get("parameters")) if not formats.known(f))
    if missing:
        raise RouteError(f"{name}: formats {', '.join(missing)} are not in lab/pve/formats.py; add them from PVE's source")

    def deco(fn):
        ROUTES.append(Route(method, pattern, fn, schema, perm))
        return fn

    return deco


def find(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """Return the route serving a method and path, with the path's parameters."""
    for r in ROUTES:
        if r.method != method:
            continue
        m = r.regex.match(path)
        if m:
            names = re.findall(r"\{([\w-]+)\}", r.pattern)
            return r, {n: m.group(n.replace("-", "_")) for n in names}
    return None
