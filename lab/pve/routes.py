"""The route table: method + path pattern -> handler, permission and parameter schema."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .auth import Principal
from .schema import NODE_P, VMID, P

# A permission is (path template, privileges, any_of) or a callable computing it from the params.
Perm = tuple[str, list[str], bool] | Callable[[dict], tuple[str, list[str], bool]] | None


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
    """One endpoint."""

    method: str
    pattern: str
    handler: Callable[[Call], Any]
    schema: dict[str, P]
    perm: Perm
    extra: bool = False
    regex: re.Pattern = field(init=False)

    def __post_init__(self):
        rx = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.pattern))
        self.regex = re.compile(f"^{rx}/?$")

    def permission(self, params: dict) -> tuple[str, list[str], bool] | None:
        """Return (path, privileges, any_of) for these params, None when any user may call."""
        if self.perm is None:
            return None
        if callable(self.perm):
            return self.perm(params)
        path, privs, any_of = self.perm
        return path.format_map({k: params.get(k, "") for k in ("vmid", "node")}), privs, any_of


ROUTES: list[Route] = []
URI_PARAMS = {"node": NODE_P, "vmid": VMID}


def route(method: str, pattern: str, schema: dict[str, P] | None = None, perm: Perm = None,
          extra: bool = False):
    """Register a handler for an endpoint (URI parameters join its schema by themselves)."""

    def deco(fn):
        full = dict(schema or {})
        for name in re.findall(r"\{(\w+)\}", pattern):
            full.setdefault(name, URI_PARAMS.get(name, P(optional=False)))
        ROUTES.append(Route(method, pattern, fn, full, perm, extra))
        return fn

    return deco


def find(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """Return the route serving a method and path, with the path's parameters."""
    for r in ROUTES:
        if r.method != method:
            continue
        m = r.regex.match(path)
        if m:
            return r, m.groupdict()
    return None
