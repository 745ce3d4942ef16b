"""The health suite's checks: started once for every collected test; each test waits only for its own host.

suites/health parametrizes its tests from the check registry; each collected test needs one
(host, check, subject). The run submits every host's checks (one task per host: one SSH master and one
remote command) and every HTTP wait (a thread each) as soon as the tests are known, and a test takes its
result when it is there: a host's tests report as soon as its one remote command is back. A run of the whole
suite knows its checks before pytest has collected them (every check of every selected host): it starts them at
the session's start, and collection overlaps the first SSH handshakes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from plugins.health.hosts import HOST_WORKERS, check_host
from plugins.health.power import down_host_results, failed_http, http_blocked_by
from plugins.health.registry import CHECKS, REGISTRY, check_named
from plugins.health.results import FAIL, result, where
from plugins.shared.this_machine import self_reason
from plugins.ssh.pool import SshPool, SshTarget

if TYPE_CHECKING:
    from plugins.inventory import Host, Inventory
    from plugins.proxmox.power import HostState

Need = tuple["Host", str, Any]  # (host, check name, subject): what one health test asserts


_NEED = pytest.StashKey["Need | None"]()


def need_of(item: pytest.Item) -> Need | None:
    """What a collected health test asks for, from its `check` marker and its parameter; None if not one (worked
    out once per test: the suite's hooks and fixtures ask it several times)."""
    if _NEED not in item.stash:
        item.stash[_NEED] = _need(item)
    return item.stash[_NEED]


def _need(item: pytest.Item) -> Need | None:
    marker = item.get_closest_marker("check")
    callspec = getattr(item, "callspec", None)
    if marker is None or callspec is None:
        return None
    check = check_named(marker.args[0])
    if check.argument not in callspec.params:
        return None
    value = callspec.params[check.argument]
    if check.subjects is not None and not isinstance(value, tuple):
        return None  # pytest's placeholder of an empty parameter set (no host selected has such a subject)
    return check.need(value)


def every_need(hosts: Iterable[Host]) -> list[Need]:
    """Every (host, check, subject) the suite's tests ask of these hosts: what a run of the whole suite needs."""
    return [(host, check.name, subject) for host in hosts for check in CHECKS for subject in check.subjects_of(host)]


class HealthRun:
    """The session's checks, submitted once; `result` waits for one of them."""

    def __init__(self, inventory: Inventory, hosts: Sequence[Host], known_hosts: str | Path,
                 states: dict[str, HostState] | None = None):
        """Prepare an SSH pool for these hosts as the deploy user (nothing is opened yet); `states`: what PVE says
        of each host (plugins/health/power.py), a down host's checks are answered from it at once."""
        self.inventory = inventory
        self.states = states or {}
        runner = inventory.runner
        self.user, self.public_key = runner.deploy_user, runner.deploy_key + ".pub"
        # persist=None: each host's one remote command is its master's first session, and nothing follows it; a master
        # kept open would cost a fork, a multiplexed session and a close per host for nothing
        self.pool = SshPool([SshTarget(h.hostname, h.ip, runner.deploy_user, runner.deploy_key) for h in hosts],
                            known_hosts=known_hosts, persist=None)
        # per host, each task submitted for it: the (check, subject) pairs it answers, and its future
        self.hosts: dict[str, list[tuple[frozenset, Future]]] = {}
        self.http: dict[tuple[str, str], Future] = {}
        self.why_not = ""  # why the hosts' states could not be read, when the run read them itself
        self._executor: ThreadPoolExecutor | None = None
        self._http_executors: list[ThreadPoolExecutor] = []
        self._lock = threading.Lock()

    def start(self, needs: Iterable[Need]) -> None:
        """Submit every host's checks (one task per host) and every HTTP wait of these needs not submitted yet."""
        with self._lock:
            plan: dict[str, tuple] = {}
            services = []
            for host, name, subject in needs:
                check = REGISTRY[name]
                if check.applies(host):
                    continue
                if check.wait is not None:
                    if (host.hostname, subject.name) not in self.http:
                        services.append((host, subject, check.wait))
                elif not any((name, subject) in wanted for wanted, _ in self.hosts.get(host.hostname, ())):
                    plan.setdefault(host.hostname, (host, []))[1].append((name, subject))
            # Two pools: HTTP waits mostly sleep (a thread each, started first while starting one is cheap);
            # host checks are CPU work on both ends (SSH handshakes), HOST_WORKERS at a time.
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=HOST_WORKERS, thread_name_prefix="health-host")
            if services:  # a pool per call, as large as its waits: none of them queues behind another
                self._http_executors.append(ThreadPoolExecutor(max_workers=len(services),
                                                               thread_name_prefix="health-http"))
            hosts = {h.hostname: h for h in self.inventory.hosts}
            for host, service, wait in services:
                blocked = http_blocked_by(host, service, self.states, hosts)
                self.http[(host.hostname, service.name)] = (
                    _done(failed_http(service, blocked)) if blocked else self._http_executors[-1].submit(wait, service))
            for hostname, (host, wanted) in plan.items():
                state = self.states.get(hostname)
                if state is not None and state.down:
                    future = _done(down_host_results(host, wanted, state))
                else:
                    future = self._executor.submit(
                        check_host, host, self.pool, wanted, user=self.user, public_key_file=self.public_key,
                        self_reason=self_reason(self.inventory, host))
                self.hosts.setdefault(hostname, []).append((frozenset(wanted), future))

    def result(self, host: Host, name: str, subject: Any):
        """Wait for and give one check's result (HttpResult for a service, else CheckResult)."""
        if REGISTRY[name].wait is not None:
            return self.http[(host.hostname, subject.name)].result()
        future = next(future for wanted, future in self.hosts[host.hostname] if (name, subject) in wanted)
        try:
            found = future.result()
        except Exception as exc:  # noqa: BLE001 - one host's surprise fails its tests, not the session
            return result(host, name, FAIL, f"{where(host)}: check crashed: {type(exc).__name__}: {exc}", subject)
        return next(r for r in found if (r.check, r.subject) == (name, subject))

    def state_word(self, host: Host) -> str | None:
        """The host's state as PVE gave it (running, stopped, missing, locked), None when not read."""
        state = self.states.get(host.hostname)
        return None if state is None else state.word

    def node_word(self, host: Host) -> str | None:
        """The node the host runs on now, as PVE lists it (`homelab-2 DOWN` when that node is offline,
        `homelab-3 (inventory: homelab-2)` when HA or a migration moved it off its inventory node), None when not
        read."""
        state = self.states.get(host.hostname)
        if state is None:
            return None
        word = state.node + (" DOWN" if state.node_down else "")
        return word if state.node == host.node else f"{word} (inventory: {host.node})"

    def close(self) -> None:
        """Stop the workers, then close every SSH master opened for the session."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        for executor in self._http_executors:
            executor.shutdown(wait=True, cancel_futures=True)
        self.pool.close_all()


def _done(value: Any) -> Future:
    """A future already holding its result: an answer known without waiting."""
    future: Future = Future()
    future.set_result(value)
    return future
