"""Running the registry's checks on hosts: one host as ONE remote command over its SSH master, every host
concurrently from threads (one process, one session per host: handshakes cost CPU on both ends).

A check on one host gives a CheckResult; a host that cannot be reached fails its SSH check and skips what
depended on it, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import testinfra

from plugins.health.probes import Probe
from plugins.health.registry import REGISTRY, ProbeContext
from plugins.health.remote import run_probes
from plugins.health.results import FAIL, SKIP, CheckResult, result, where
from plugins.shared.fanout import fan_out
from plugins.shared.this_machine import is_this_machine, this_machine_reason

if TYPE_CHECKING:
    from plugins.inventory import Host
    from plugins.ssh.pool import SshPool

HOST_WORKERS = 16  # hosts checked at once: each check is an SSH handshake, CPU on both ends
NO_SELF_CHECK = "no SSH check of itself (incident #13)"


def host_probes(wanted: Iterable[tuple[str, Any]], user: str, public_key_file: str | Path) -> list[Probe]:
    """The probes for the wanted (check, subject) pairs of a host that a remote command answers."""
    wanted = list(wanted)
    subjects = {name: tuple(s for c, s in wanted if c == name) for name, _ in wanted}
    return [REGISTRY[c].probe(ProbeContext(user, public_key_file, subjects[c]), s)
            for c, s in wanted if REGISTRY[c].probe is not None]


def check_host(host: Host, pool: SshPool, wanted: Iterable[tuple[str, Any]], *, user: str,
               public_key_file: str | Path, self_reason: str | None = None) -> list[CheckResult]:
    """Run the wanted (check, subject) pairs on one host: its master's first session runs every remote probe.

    self_reason (plugins/shared/this_machine.py) says the host is the one the suite runs on: its SSH checks
    are skipped with that reason, and when it is this machine the other checks run locally.
    """
    wanted = list(dict.fromkeys(wanted))
    name, local = host.hostname, is_this_machine(host)
    results: list[CheckResult] = []
    if self_reason or local:
        reason = f"{self_reason or this_machine_reason(host)}: {NO_SELF_CHECK}"
        results = [result(host, c, SKIP, reason, s) for c, s in wanted if REGISTRY[c].self_check]
        wanted = [(c, s) for c, s in wanted if not REGISTRY[c].self_check]
    connection = [c for c, _ in wanted if REGISTRY[c].answer is not None]
    probes = host_probes(wanted, user, public_key_file)
    if local:
        return results + run_probes(host, testinfra.get_host("local://"), probes)

    def first_run(script: str) -> str | None:
        state = pool.open(name, command=script)
        if not state.is_open:
            raise RuntimeError(state.error)
        return state.first_output  # None when the master was already open: conn runs the script

    # A master whose every session fails (no frame of the script came back) lost its connection under it (seen
    # after a deploy's Ansible run on the host): reset, a new master answers.
    remote = run_probes(host, lambda: pool.host(name), probes, first_run,
                        on_no_output=lambda: pool.reset(name)) if probes else []
    results += [REGISTRY[c].answer(host, pool) for c in connection]
    state = pool.open(name)
    if state.is_open:
        return results + remote
    for probe in probes:
        if REGISTRY[probe.check].refused_key_fails and state.auth_refused:
            # sshd refusing the runner's key IS the answer: the key is not authorized for the deploy user
            results.append(result(host, probe.check, FAIL,
                                  f"{where(host)}: sshd refused the runner key {public_key_file} for {user} "
                                  f"({state.error}); it is not in ~{user}/.ssh/authorized_keys (incident #9)"))
        else:
            results.append(result(host, probe.check, SKIP, f"not checked: ssh to {where(host)} failed ({state.error})",
                                  probe.subject))
    return results


def check_hosts(plan: Iterable[tuple[Host, list]], pool: SshPool, *, user: str, public_key_file: str | Path,
                self_reasons: dict[str, str | None] | None = None,
                workers: int = HOST_WORKERS) -> dict[tuple[str, str, Any], CheckResult]:
    """Check every (host, [(check, subject)]) of the plan concurrently; give {(hostname, check, subject): result}."""
    plan = list(plan)
    self_reasons = self_reasons or {}

    def one(entry: tuple[Host, list]) -> list[CheckResult]:
        host, wanted = entry
        return check_host(host, pool, wanted, user=user, public_key_file=public_key_file,
                          self_reason=self_reasons.get(host.hostname))

    results: dict[tuple[str, str, Any], CheckResult] = {}
    for (host, wanted), outcome in zip(plan, fan_out(one, plan, workers=workers, name="check", keep_errors=True),
                                       strict=True):
        if isinstance(outcome, Exception):  # one host's surprise must not hide the others' results
            outcome = [result(host, c, FAIL, f"{where(host)}: check crashed: {type(outcome).__name__}: {outcome}", s)
                       for c, s in wanted]
        for item in outcome:
            results[(item.host, item.check, item.subject)] = item
    return results
