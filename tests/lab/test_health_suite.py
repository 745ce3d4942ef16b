"""`pytest suites/health` on real lab hosts: passes on good hosts, each fault fails exactly its test, read-only."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET  # nosec B405 # parses only the junit file the test's own pytest wrote
from pathlib import Path

import pytest

from bench.health_scale import HealthFleet
from plugins.health.dockerd import DOCKER_API_MARK, docker_containers, docker_ps_command
from plugins.health.remote import as_script
from plugins.ssh.pool import SshPool, SshTarget

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
FIRST_VMID, FIRST_OCTET, COUNT = 880, 180, 5  # 198.18.0.180-184 (the bench uses .130-.179 when it runs alone)
# Files that legitimately change when someone logs in (wtmp, lastlog, journal, sessions): not the suite's doing.
CHANGE_SCAN = ("find / -xdev -newer /run/hc-mark ! -type d ! -path '/proc/*' ! -path '/sys/*' ! -path '/run/*' "
               "! -path '/tmp/*' ! -path '/var/tmp/*' ! -path '/var/log/*' ! -path '/var/lib/systemd/*' "
               "! -path '/dev/*' 2>/dev/null | sort")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Five prepared lab hosts hc880-hc884 (deploy user, runner key, container `web`, HTTP on :8080)."""
    from tests.lab.conftest import lab_skip_reason

    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)
    from lab import net
    from lab.hosts import LabHosts

    net.bridge_up()
    lab = LabHosts()
    lab.ensure_base()
    hosts = HealthFleet(lab, COUNT, tmp_path_factory.mktemp("fleet"), FIRST_VMID, FIRST_OCTET)
    try:
        hosts.create()
        yield hosts
    finally:
        hosts.destroy()


def run_health(fleet: HealthFleet, tmp: Path, *extra: str, runner_host: str | None = None) -> dict[str, tuple]:
    """Run `pytest suites/health` on the fleet; give {test id: (outcome, message)} from its JUnit XML."""
    inventory = fleet.inventory(tmp / "inventory.yml", runner_host=runner_host)
    junit = tmp / "junit.xml"
    done = subprocess.run([sys.executable, "-m", "pytest", "suites/health", f"--inventory={inventory}",
                           f"--known-hosts={tmp / 'known_hosts'}", f"--junitxml={junit}", "-q",
                           "-p", "no:cacheprovider", *extra], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert junit.exists(), f"pytest suites/health wrote no report: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    outcomes = {}
    for case in ET.parse(junit).getroot().iter("testcase"):  # nosec B314 # our own pytest's junit file
        name = case.get("name")
        for tag, outcome in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            node = case.find(tag)
            if node is not None:
                outcomes[name] = (outcome, node.get("message") or "")
                break
        else:
            outcomes[name] = ("passed", "")
    outcomes["__output__"] = ("", done.stdout)
    return outcomes


def failures(outcomes: dict) -> dict[str, str]:
    """The failed (or errored) tests and their messages."""
    return {name: message for name, (outcome, message) in outcomes.items() if outcome in ("failed", "error")}


def test_suite_passes_on_good_hosts_changes_nothing_and_skips_runner_self_checks(fleet, tmp_path):
    """Healthy hosts pass (serial and -n 2 alike); the runner's SSH self-checks are skipped visibly; no file changes."""
    for _, _, ip in fleet.hosts:
        fleet.root(ip, "touch /run/hc-mark && sleep 1")
    runner = fleet.hosts[-1][1]
    serial = run_health(fleet, tmp_path, runner_host=runner)
    assert not failures(serial), f"{failures(serial)}\n{serial['__output__'][1][-3000:]}"
    skipped = {name: message for name, (outcome, message) in serial.items() if outcome == "skipped"}
    assert set(skipped) == {f"test_ssh[{runner}]", f"test_sshd_refuses_passwords[{runner}]", f"test_keys[{runner}]"}
    assert all("incident #13" in message for message in skipped.values()), skipped
    assert "health summary (host × check)" in serial["__output__"][1]

    parallel = run_health(fleet, tmp_path, "-n", "2", runner_host=runner)
    assert {k: v[0] for k, v in parallel.items() if k != "__output__"} == \
           {k: v[0] for k, v in serial.items() if k != "__output__"}

    for _, hostname, ip in fleet.hosts:
        changed = fleet.root(ip, CHANGE_SCAN).split()
        assert not changed, f"the health suite changed files on {hostname}: {changed}"


def master_pid(pool: SshPool, name: str) -> int | None:
    """The pid `ssh -O check` reports for a host's master, or None when no master answers."""
    done = subprocess.run(pool.ssh_args(name, "-O", "check"), capture_output=True, text=True, check=False)
    found = re.search(r"pid=(\d+)", done.stderr)
    return int(found.group(1)) if done.returncode == 0 and found else None


def exited(pid: int) -> bool:
    """True when the process is gone or a zombie (its parent, init here, has not reaped it yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_pool_masters_run_the_first_command_and_exit_when_closed(fleet, tmp_path):
    """The master's first session runs the command; close() stops the master over its control socket."""
    _, name, ip = fleet.hosts[-1]
    pool = SshPool([SshTarget(name, ip, "deploy", str(fleet.deploy_key))], known_hosts=tmp_path / "known_hosts")
    try:
        state = pool.open(name, command="echo first-session")
        assert state.is_open and state.first_output == "first-session\n", state
        pid = master_pid(pool, name)
        assert pid is not None and not exited(pid), "the master outlives its first session (ControlPersist)"
        assert pool.run(name, "echo reused").stdout == "reused\n"
        assert master_pid(pool, name) == pid, "the second command went over the same master"
        pool.close(name)
        deadline = time.monotonic() + 5
        while not exited(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert exited(pid), f"master {pid} still running after close()"
        assert not pool.control_path(name).exists()
    finally:
        pool.close_all()


def test_the_docker_probe_asks_the_real_dockerd_through_perl(fleet, tmp_path):
    """The container list comes from dockerd's socket through Perl's built-ins: curl and the CLI, shadowed by shell
    functions that fail, never run (a failed request would fall back to them and hide it)."""
    _, name, ip = fleet.hosts[0]
    shadow = "curl() { echo curl ran; return 99; }; docker() { echo docker ran; return 99; }; "
    with SshPool([SshTarget(name, ip, "deploy", str(fleet.deploy_key))], known_hosts=tmp_path / "known_hosts") as pool:
        state = pool.open(name, command=shadow + as_script(docker_ps_command()))
    assert state.is_open and state.first_output is not None, state
    assert state.first_output.startswith(DOCKER_API_MARK + "\n"), state.first_output[-500:]
    assert docker_containers(state.first_output)["web"][0] == "running"


def test_each_fault_fails_exactly_its_tests_naming_host_and_check(fleet, tmp_path):
    """rsync removed, docker stopped, a container stopped, the runner key removed: only the matching tests fail."""
    (_, rsync_host, rsync_ip), (_, docker_host, docker_ip), (_, web_host, web_ip), (_, key_host, key_ip), _ = \
        fleet.hosts
    fleet.root(rsync_ip, "dpkg -r rsync >/dev/null 2>&1")
    fleet.root(docker_ip, "systemctl stop docker.socket docker.service")
    fleet.root(web_ip, "docker stop -t 1 web >/dev/null")
    fleet.root(key_ip, "ssh-keygen -q -t ed25519 -N '' -f /root/other && cp /root/other.pub "
                       "/home/deploy/.ssh/authorized_keys")
    outcomes = run_health(fleet, tmp_path)
    failed = failures(outcomes)
    assert set(failed) == {
        f"test_rsync[{rsync_host}]", f"test_package[{rsync_host}/rsync]",  # the inventory lists rsync as a package
        f"test_docker[{docker_host}]",
        f"test_container[{web_host}/web]",
        f"test_keys[{key_host}]", f"test_ssh[{key_host}]",  # the runner key IS the credential: ssh fails with it
    }, f"{failed}\n{outcomes['__output__'][1][-3000:]}"
    assert f"{rsync_host} (198.18.0." in failed[f"test_rsync[{rsync_host}]"]
    assert "rsync is not installed" in failed[f"test_rsync[{rsync_host}]"]
    assert "docker is not running" in failed[f"test_docker[{docker_host}]"]
    assert f"{web_host} (198.18.0." in failed[f"test_container[{web_host}/web]"]
    assert "container web is exited" in failed[f"test_container[{web_host}/web]"]
    assert "Permission denied" in failed[f"test_keys[{key_host}]"] and "incident #9" in failed[f"test_keys[{key_host}]"]
    # what depends on a broken prerequisite is skipped with the reason, not failed twice
    assert outcomes[f"test_container[{docker_host}/web]"][0] == "skipped"
    assert outcomes[f"test_rsync[{key_host}]"][0] == "skipped"
