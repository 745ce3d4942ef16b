"""The health checks, each declared ONCE: its name, its column in the summary table, which hosts it applies to
(and the skip reason where it does not), its subjects, and how it is answered.

Everything that checks health reads this registry: the health suite's parametrization (suites/health), the
summary table (plugins/health/table.py), the deploy's health stage and the rollback's wait
(plugins/health/waiting.py). Adding a check is one entry here and one test function in suites/health marked
`@pytest.mark.check("<name>")`. The entries are in the table's column order, the order each host's tests run in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from plugins.health import connection, probes
from plugins.health.functional.runner import wait_for_probe
from plugins.health.web import wait_for_service

if TYPE_CHECKING:
    from plugins.health.probes import Probe
    from plugins.health.results import CheckResult
    from plugins.health.web import HttpResult
    from plugins.inventory import Host
    from plugins.ssh.pool import SshPool


@dataclass(frozen=True)
class ProbeContext:
    """What a probe may need besides its subject: the deploy user, the runner's public key, its check's subjects."""

    user: str
    public_key_file: str | Path
    subjects: tuple = ()  # every subject of the same check wanted on the host (the packages share one dpkg-query)


@dataclass(frozen=True)
class Check:
    """One health check. Exactly one of `answer`, `probe`, `wait` says how it is answered."""

    name: str
    column: str  # its column in the host × check summary table
    argument: str  # the test argument its parameters arrive in: the host, or (host, subject)
    subjects: Callable[[Host], Sequence] | None = None  # None: one check per host; else its subjects on a host
    applies: Callable[[Host], str | None] = lambda host: None  # why it does not apply to a host (a visible skip)
    self_check: bool = False  # an SSH check: not done on the runner or this machine (incident #13)
    answer: Callable[[Host, SshPool], CheckResult] | None = None  # answered by the host's SSH master itself
    probe: Callable[[ProbeContext, Any], Probe] | None = None  # a part of the host's one remote command
    wait: Callable[[Any], HttpResult] | None = None  # a service of the host, waited for on its own (HTTP)
    refused_key_fails: bool = False  # sshd refusing the runner's key is this check's answer: it fails

    def __post_init__(self) -> None:
        """Refuse an entry that is answered in none or several ways."""
        ways = [way for way in (self.answer, self.probe, self.wait) if way is not None]
        if len(ways) != 1:
            raise ValueError(f"health check {self.name}: give exactly one of answer, probe, wait")

    def subjects_of(self, host: Host) -> list:
        """The check's subjects on a host: [None] for a check of the host itself."""
        return [None] if self.subjects is None else list(self.subjects(host))

    def parameters(self, hosts: Sequence[Host]) -> tuple[list, list[str]]:
        """The values and ids its test is parametrized with: hosts (`app-demo`) or (host, subject) (`app-demo/web`)."""
        if self.subjects is None:
            return list(hosts), [h.hostname for h in hosts]
        pairs = [(h, subject) for h in hosts for subject in self.subjects(h)]
        return pairs, [f"{h.hostname}/{label(subject)}" for h, subject in pairs]

    def need(self, value: Any) -> tuple[Host, str, Any]:
        """(host, check name, subject) from one of its test's parameter values."""
        host, subject = (value, None) if self.subjects is None else value
        return host, self.name, subject


def label(subject: Any) -> str:
    """A subject as its tests' ids and the messages name it: a container or package name, a service's name."""
    return str(getattr(subject, "name", subject))


def _needs_docker(host: Host) -> str | None:
    if host.containers:
        return None
    return f"no containers expected on {host.hostname} (inventory: containers): docker not required there"


CHECKS: tuple[Check, ...] = (
    Check("ssh_reachable", "ssh", "health_host", self_check=True, answer=connection.ssh_reachable),
    Check("sshd_refuses_passwords", "passwords", "health_host", self_check=True,
          answer=connection.sshd_refuses_passwords),
    Check("runner_key_authorized", "keys", "health_host", self_check=True, refused_key_fails=True,
          probe=lambda context, _: probes.runner_key_probe(context.user, context.public_key_file)),
    Check("rsync_installed", "rsync", "health_host", probe=lambda context, _: probes.rsync_probe()),
    Check("docker_running", "docker", "health_host", applies=_needs_docker,
          probe=lambda context, _: probes.docker_probe()),
    Check("container_running", "containers", "health_container", subjects=lambda host: host.containers,
          probe=lambda context, name: probes.container_probe(name)),
    Check("package_installed", "packages", "health_package", subjects=lambda host: host.packages,
          probe=lambda context, name: probes.package_probe(name, context.subjects)),
    Check("http", "http", "health_service", subjects=lambda host: host.endpoints, wait=wait_for_service),
    Check("functional", "functional", "health_probe", subjects=lambda host: host.probes, wait=wait_for_probe),
)
REGISTRY: dict[str, Check] = {check.name: check for check in CHECKS}
COLUMNS: tuple[str, ...] = tuple(check.column for check in CHECKS)


def check_named(name: str) -> Check:
    """The registry's entry of that name; a usage error naming the known ones otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise pytest.UsageError(f"no health check '{name}' in plugins/health/registry.py; checks: "
                                f"{', '.join(REGISTRY)}") from None


def host_wanted(host: Host) -> list[tuple[str, Any]]:
    """Every (check, subject) a host owes over SSH, in registry order: the checks that apply to it."""
    return [(check.name, subject) for check in CHECKS if check.wait is None and check.applies(host) is None
            for subject in check.subjects_of(host)]


def services_of(hosts: Sequence[Host]) -> list[tuple[Host, Any]]:
    """Every (host, service) the hosts owe an HTTP answer for."""
    return [(host, service) for host in hosts for service in REGISTRY["http"].subjects_of(host)]


def service_containers(host: Host) -> dict[str, str]:
    """{HTTP check name: the container that answers it} of a host (direct and through the proxy)."""
    found = {}
    for decl in host.declarations:
        for name in (*(decl.check_name(acceptance) for acceptance in decl.http), f"{decl.name}-via-traefik"):
            found[name] = decl.container
    return found
