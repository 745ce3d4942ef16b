"""The functional probes of a host's services (services/<name>.yml `probes:`), as the health suite runs them:
each directly, and through Traefik where the service's route goes to the probe's port.

Secrets reach a probe by the NAME of their environment variable (stack.secrets `{env: VAR}`; a vault secret
by the variable named after it in upper case, which the CI exports): the value is read when the probe runs
(plugins/health/functional/checks.py) and never appears in a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plugins.inventory.catalog import Probe
    from plugins.inventory.model import Host, Inventory


@dataclass(frozen=True)
class FunctionalProbe:
    """One probe of one service (`name` is its test id's subject: <service>-<kind's object>[-via-traefik])."""

    name: str
    kind: str
    base_url: str
    deadline: float
    secret_env: tuple[tuple[str, str], ...] = ()  # (role, environment variable NAME)
    connect_to: str | None = None  # through Traefik: the proxy's address (SNI and Host stay the url's)
    ca_file: str | None = None


def _secret_env(inventory: Inventory, probe: Probe) -> tuple[tuple[str, str], ...]:
    found = []
    for role, ref in probe.secrets.items():
        source = inventory.stack.secrets[ref.secret]
        found.append((role, source.env or ref.secret.upper()))
    return tuple(found)


def host_probes(inventory: Inventory, host: Host) -> list[FunctionalProbe]:
    """Every probe of the host's services: directly, and through Traefik for a routed service."""
    found = []
    proxy, stack = inventory.proxy_host, inventory.stack
    cap = inventory.deploy.max_health_wait or float("inf")
    for decl in host.declarations:
        for probe in decl.probes:
            name = f"{decl.name}-{probe.kind.split('_', 1)[-1]}"
            path = probe.path.rstrip("/")
            secrets = _secret_env(inventory, probe)
            deadline = min(probe.deadline, cap)
            port = decl.published(probe.port)
            found.append(FunctionalProbe(name, probe.kind, f"http://{host.ip}{'' if port == 80 else f':{port}'}{path}",
                                         deadline, secrets))
            if decl.route is not None and decl.route.port == probe.port and proxy and stack:
                found.append(FunctionalProbe(f"{name}-via-traefik", probe.kind,
                                             f"https://{decl.route.host}.{stack.domain}{path}", deadline, secrets,
                                             connect_to=proxy.ip, ca_file=stack.tls.ca_file))
    return found
