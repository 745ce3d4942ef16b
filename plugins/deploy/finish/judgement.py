"""Which checks judge a host a rollback restored: those of the release its snapshot holds, never the failed one's.

The release's checks come from its record, which the snapshot contains (plugins/deploy/release.py). Without
one (a snapshot taken before deploys recorded their checks, or a record that cannot be read) the host is
judged by the checks both releases share: the host's own (SSH, passwords, the runner's key, rsync, Docker) and
the containers it had at the snapshot that this release declares too; every other check of this release
(an HTTP answer, a package) may be one the restored release never had: it is named as not judged, never
waited for, and never makes the rollback INCOMPLETE.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from plugins.health.registry import REGISTRY, host_wanted, label
from plugins.inventory.model import Service

if TYPE_CHECKING:
    from plugins.inventory import Host

# The registry's checks every release of a host owes alike: they do not depend on what a release declares.
SHARED_CHECKS = frozenset({"ssh_reachable", "sshd_refuses_passwords", "runner_key_authorized", "rsync_installed",
                           "docker_running"})


@dataclass
class Judgement:
    """The checks one restored host is judged by, and whose they are."""

    hostname: str
    release: str | None  # the run id of the release whose recorded checks judge it; None: no record
    commit: str | None = None
    wanted: list[tuple[str, Any]] = field(default_factory=list)  # (check, subject) answered over SSH
    services: list[Service] = field(default_factory=list)  # HTTP checks, with their deadlines
    containers: dict[str, str] = field(default_factory=dict)  # HTTP check name -> the container answering it
    not_judged: list[str] = field(default_factory=list)  # checks it could not judge, named
    no_record: str = ""  # why there is no record to judge by ('' when there is one)

    @property
    def by(self) -> str:
        """Whose checks judge the host, for a person: `release <run> (commit abc1234)` or the fallback."""
        if self.release is not None:
            commit = f", commit {self.commit[:12]}" if self.commit else ""
            return f"the checks of release {self.release}{commit}, recorded in its snapshot"
        return f"the checks both releases share ({self.no_record})"


def _named(check: str, subject: Any) -> str:
    return check if subject is None else f"{check} {label(subject)}"


def judge_by_record(host: Host, record: dict[str, Any], before: list[str] | None) -> Judgement:
    """A host judged by the checks recorded for its snapshot's release; `before`: its containers at the snapshot
    (None: not listed). A recorded check this suite no longer knows, or a container absent at the snapshot,
    is named as not judged."""
    entry = record["host"]
    judgement = Judgement(host.hostname, str(record.get("release")), record.get("commit"))
    for check, subject in entry.get("checks", []):
        if check not in REGISTRY or REGISTRY[check].wait is not None:
            judgement.not_judged.append(f"{_named(check, subject)} (unknown to this suite)")
        elif check == "container_running" and before is not None and subject not in before:
            judgement.not_judged.append(f"{_named(check, subject)} (not on the host at the snapshot)")
        else:
            judgement.wanted.append((check, subject))
    for data in entry.get("services", []):
        container = data.get("container")
        fields = {k: v for k, v in data.items() if k != "container"}
        try:
            service = Service.model_validate(fields)
        except ValidationError as exc:
            judgement.not_judged.append(f"http {data.get('name', '?')} (unreadable: {exc.error_count()} error(s))")
            continue
        if before is not None and container and container not in before:
            judgement.not_judged.append(f"http {service.name} (its container was not on the host at the snapshot)")
        else:
            judgement.services.append(service)
            if container:
                judgement.containers[service.name] = container
    return judgement


def judge_without_record(host: Host, before: list[str] | None, why: str) -> Judgement:
    """A host judged by the checks both releases share (no record of the restored one's); the rest named."""
    judgement = Judgement(host.hostname, None, no_record=why)
    for check, subject in host_wanted(host):
        shared = check in SHARED_CHECKS or (check == "container_running" and before is not None and subject in before)
        (judgement.wanted if shared else judgement.not_judged).append(
            (check, subject) if shared else _named(check, subject))
    judgement.not_judged += [f"http {service.name}" for service in host.endpoints]
    return judgement


def judge(host: Host, record: dict[str, Any] | None | str, before: list[str] | None) -> Judgement:
    """The judgement of a restored host from what reading its record gave: a record, None (none), or an error."""
    if isinstance(record, dict):
        return judge_by_record(host, record, before)
    why = "no release record in the snapshot: it was taken before deploys recorded their checks" if record is None \
        else f"its release record could not be read: {record}"
    return judge_without_record(host, before, why)


def judged_by(judgements: dict[str, Judgement]) -> dict[str, dict[str, Any]]:
    """{hostname: release, commit, by, not_judged}: what the result says about each host's judge."""
    return {name: {"release": j.release, "commit": j.commit, "by": j.by, "not_judged": j.not_judged}
            for name, j in judgements.items()}


def judge_lines(judged: dict[str, dict[str, Any]]) -> list[str]:
    """Lines for the closing section: which release's checks judged which hosts, and what was not judged."""
    groups: dict[str, list[str]] = {}
    for hostname, entry in judged.items():
        groups.setdefault(entry["by"], []).append(hostname)
    lines = [f"judged by {by}: {', '.join(hosts)}" for by, hosts in groups.items()]
    lines += [f"not judged on {hostname}: {', '.join(entry['not_judged'])}"
              for hostname, entry in judged.items() if entry["not_judged"]]
    return lines
