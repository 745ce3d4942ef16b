"""What each host owes, from the services it runs: its declarations, its HTTP checks and functional probes.

A host names the services it runs (hosts[].services); the catalog declares them; stack gives the environment's
values. From the three: each declaration's acceptances, checked directly at the host's address and published port,
and through Traefik for a routed one; each probe likewise. Nothing is written twice: a port lives in its
declaration alone. What the hosts run from the same data (containers, files, routes) is plugins/stack's.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field

from plugins.inventory.catalog import Catalog, dependency_order
from plugins.inventory.declaration import MAX_DEADLINE
from plugins.inventory.fields import AbsolutePath, Flag, HttpUrl, IPv4, Label, StatusCode, TlsOn
from plugins.inventory.section import Strict


class Service(Strict):
    """One HTTP endpoint and the status codes that mean it is healthy (incident #12)."""

    name: Label
    url: HttpUrl
    accepted: Annotated[list[StatusCode], Field(min_length=1)] = Field(description="healthy codes")
    warmup: list[StatusCode] = Field([], description="codes accepted only while the service warms up")
    deadline: Annotated[float, Field(strict=True, gt=0, le=MAX_DEADLINE, allow_inf_nan=False)] = Field(
        60, description="seconds to wait for a healthy code"
    )
    rollback_deadline: Annotated[float, Field(strict=True, gt=0, le=MAX_DEADLINE, allow_inf_nan=False)] | None = Field(
        None, description="seconds the rollback waits for it (unset: deadline): the declared deadline, which "
        "deploy.max_health_wait does not cap")
    verify_tls: TlsOn = True
    ca_file: AbsolutePath | None = None
    follow_redirects: Flag = Field(False, description="false: a redirect is the answer checked")
    connect_to: IPv4 | None = Field(None, description="address to connect to instead of the url's host "
                                    "(SNI and Host header stay the url's): a route checked through the proxy")

    @property
    def url_host(self) -> str:
        """Host part of the url (an inventory host's ip or hostname)."""
        return urlsplit(self.url).hostname or ""

    @property
    def tls_verify(self) -> str | bool:
        """Value for requests' `verify`: the CA file, or True for the system CAs."""
        return self.ca_file or True


class FunctionalCheck(Strict):
    """A functional probe of one service at one URL (directly, or through the proxy), from its declaration."""

    name: Label
    kind: Annotated[str, Field(strict=True, pattern=r"^[a-z][a-z0-9_]*$", description="plugins/health/functional's kind")]
    url: HttpUrl = Field(description="the probe's URL: the service's address and published port, and its path")
    secrets: dict[str, str] = Field({}, description="secret name -> the env var holding it ('' for a vault var)")
    deadline: Annotated[float, Field(strict=True, gt=0, le=MAX_DEADLINE, allow_inf_nan=False)] = 60
    ca_file: AbsolutePath | None = None
    connect_to: IPv4 | None = None

    @property
    def tls_verify(self) -> str | bool:
        """Value for requests' `verify`: the CA file, or True for the system CAs."""
        return self.ca_file or True


def derive_checks(inv: Any, catalog: Catalog) -> None:
    """Give every host its declarations (dependencies first), its HTTP checks and its functional probes.

    inv is the Inventory being validated (typed Any: the model imports this module).
    """
    proxy = inv.proxy_host
    cap = inv.deploy.max_health_wait or float("inf")
    for host in inv.hosts:
        host._declarations = [catalog[name] for name in dependency_order(list(host.services), catalog)]
        endpoints = []
        for decl in host._declarations:
            for acceptance in decl.http:
                endpoints.append(Service(
                    name=decl.check_name(acceptance),
                    url=_http_url(host.ip, decl.published(acceptance.port), acceptance.path),
                    accepted=list(acceptance.accepted), warmup=list(acceptance.warmup),
                    deadline=min(acceptance.deadline, cap), rollback_deadline=acceptance.deadline,
                    follow_redirects=acceptance.follow_redirects))
            if decl.route and decl.http and proxy and inv.stack:
                first = decl.http[0]
                endpoints.append(Service(
                    name=f"{decl.name}-via-traefik",
                    url=f"https://{decl.route.host}.{inv.stack.domain}{first.path}",
                    accepted=list(first.accepted), warmup=sorted({*first.warmup, 502, 503, 504} - set(first.accepted)),
                    deadline=min(first.deadline, cap), rollback_deadline=first.deadline,
                    follow_redirects=first.follow_redirects,
                    ca_file=inv.stack.tls.ca_file, connect_to=proxy.ip))
        host._endpoints = endpoints
        host._probes = []
        for decl in host._declarations:
            for probe in decl.probes:
                sources = inv.stack.secrets if inv.stack else {}
                secrets = {probe.secret: sources[probe.secret].env or ""} if probe.secret in sources else {}
                direct = _http_url(host.ip, decl.published(probe.port), probe.path)
                common = {"kind": probe.kind, "secrets": secrets, "deadline": min(probe.deadline, cap)}
                name = f"{decl.name}-{probe.kind.replace('_', '-')}"
                host._probes.append(FunctionalCheck(name=name, url=direct, **common))
                if decl.route and proxy and inv.stack and decl.route.port == probe.port:
                    host._probes.append(FunctionalCheck(
                        name=f"{name}-via-traefik",
                        url=f"https://{decl.route.host}.{inv.stack.domain}{probe.path}",
                        ca_file=inv.stack.tls.ca_file, connect_to=proxy.ip, **common))


def _http_url(address: str, port: int | None, path: str) -> str:
    return f"http://{address}{'' if port == 80 else f':{port}'}{path}"
