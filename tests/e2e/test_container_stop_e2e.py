"""Every service of the deployed lab stops promptly on SIGTERM (issue 25): `docker stop` of each container ends
well inside Docker's 10 s stop timeout, so a host stopped or restarted outside a rollback does not wait it out
for a PID 1 that ignores SIGTERM (a server without a handler needs `init: true` in its declaration).

Each host's containers are stopped at once (one `docker stop` each, timed on the host), started again, and the
lab is waited back to healthy, with the deploy's own waits, before the module ends.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from lab import scenarios
from plugins.health.results import FAIL
from plugins.health.waiting import wait_hosts_and_services
from plugins.inventory import load_inventory
from plugins.shared.fanout import fan_out

INVENTORY = load_inventory(scenarios.LAB_INVENTORY)
PROMPT = 2.0  # seconds: a stop that answers SIGTERM; Docker's timeout before SIGKILL is 10 s
STOP_TIMEOUT = 10  # Docker's default, said explicitly: the test measures against it


def stop_each(host) -> dict[str, float | str]:
    """Stop every container of a host at once; {container: seconds its `docker stop` took, or the error}."""
    script = " ".join(
        f"( s=$(date +%s%N); docker stop -t {STOP_TIMEOUT} {shlex.quote(name)} >/dev/null 2>&1;"
        f" echo {shlex.quote(name)} $? $(( ($(date +%s%N) - s) / 1000000 )) ) &" for name in host.containers)
    done = scenarios.ssh_root(host.ip, f"{script} wait", timeout=STOP_TIMEOUT * 3 + 30)
    found: dict[str, float | str] = {name: f"no answer ({done.stderr.strip()[:120]})" for name in host.containers}
    for line in done.stdout.splitlines():
        name, rc, millis = line.split()
        found[name] = int(millis) / 1000 if rc == "0" else f"docker stop exited {rc}"
    return found


def start_all(host) -> str:
    """Start the host's containers again; '' or what went wrong."""
    names = " ".join(shlex.quote(name) for name in host.containers)
    done = scenarios.ssh_root(host.ip, f"docker start {names} >/dev/null", timeout=120)
    return "" if done.returncode == 0 else f"{host.hostname}: docker start failed: {done.stderr.strip()[:200]}"


def forget_old_host_keys(hosts) -> None:
    """Drop the hosts' keys from the e2e known_hosts: a lab made since the last e2e run gave them new ones, and
    ssh_root accepts only new hosts, never changed keys (the deploy itself uses the suite's known_hosts)."""
    known = Path(scenarios.orchestrate.status()["deploy_key"]).parent / scenarios.E2E_KNOWN_HOSTS
    for host in hosts:
        subprocess.run(["ssh-keygen", "-R", host.ip, "-f", str(known)], capture_output=True, check=False)


def test_every_service_stops_well_inside_dockers_timeout(deployed):
    hosts = [h for h in INVENTORY.hosts if h.containers]
    forget_old_host_keys(hosts)
    try:
        stops = dict(zip((h.hostname for h in hosts), fan_out(stop_each, hosts, workers=len(hosts), name="stop"),
                         strict=True))
    finally:
        restarted = [problem for problem in fan_out(start_all, hosts, workers=len(hosts), name="start") if problem]
        results, web = wait_hosts_and_services(INVENTORY, hosts, [(h, s) for h, s in INVENTORY.endpoints
                                                                  if h in hosts])
    slow = [f"{host}/{name}: {taken if isinstance(taken, str) else f'{taken:.1f} s'}"
            for host, found in stops.items() for name, taken in found.items()
            if isinstance(taken, str) or taken >= PROMPT]
    assert not slow, (f"`docker stop` took {PROMPT:g} s or more (Docker kills at {STOP_TIMEOUT} s: the container's "
                      f"PID 1 ignores SIGTERM; `init: true` in its services/*.yml): {'; '.join(slow)}")
    assert not restarted, "; ".join(restarted)
    unhealthy = [r.message for r in results.values() if r.outcome == FAIL] + [a.message for a in web.values() if not a.ok]
    assert not unhealthy, "the lab did not come back healthy after the stops: " + "; ".join(unhealthy)
