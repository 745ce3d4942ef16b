"""The Ansible roles on two real LXC hosts: every playbook converges, and a rerun changes nothing.

Hosts 771 (proxy, 198.18.0.71, with Traefik and Vaultwarden's declaration) and 772 (198.18.0.72, carrying
monitoring and github_runner to exercise those roles) are created for this module and destroyed in a
finalizer, even when a step fails. Playbooks run in the order plugins.tools.playbooks.playbooks_for derives
from the roles. rsync is removed from host 772 before bootstrap: bootstrap must bring it back (incident #11).
The demo app (app_demo: builds, PostgreSQL, data, rsync excludes) has its own host and module:
test_app_demo_host.py.
"""

from __future__ import annotations

import copy
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from plain_http import get

from plugins.health.web import check_service, wait_for_service
from plugins.inventory import Inventory, load_inventory, read_document
from plugins.stack import ansible_inventory
from plugins.tools.playbooks import ANSIBLE_DIR, PlaybookResult, playbooks_for, run_playbook

pytestmark = pytest.mark.lab

ROOT = ANSIBLE_DIR.parent
HOSTS = {
    "app-demo": (772, "198.18.0.72", ["monitoring", "github_runner"]),
    "proxy": (771, "198.18.0.71", ["proxy", "utilities"]),
}
SERVICES = {"app-demo": ["grafana"], "proxy": ["traefik", "vaultwarden"]}
CONTAINERS = {"app-demo": ["grafana"], "proxy": ["traefik", "vaultwarden"]}
PLAYBOOKS = tuple(p.stem for p in playbooks_for(r for _, _, roles in HOSTS.values() for r in roles))
MONITORING_PORT, UTILITIES_PORT = 3000, 8080


@dataclass
class Deployment:
    """What the module's deploy did: runs, timings, and how to reach the hosts."""

    key: Path
    known_hosts: Path
    inventory: dict
    runner_key: str
    first: dict[str, PlaybookResult] = field(default_factory=dict)
    rerun: dict[str, PlaybookResult] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def ssh(self, host: str, command: str, user: str = "root", check: bool = True) -> subprocess.CompletedProcess:
        """Run a command on a lab host with the deploy key (host keys pinned in the module's known_hosts)."""
        ip = HOSTS[host][1]
        cmd = ["ssh", "-i", str(self.key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
               "-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={self.known_hosts}",
               "-o", "ConnectTimeout=5", "-o", "KexAlgorithms=curve25519-sha256", "-o", "LogLevel=ERROR",
               f"{user}@{ip}", command]  # fmt: skip
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(f"ssh {user}@{ip} {command!r} exited {done.returncode}: {done.stderr}{done.stdout}")
        return done

    def play(self, name: str, **extravars) -> PlaybookResult:
        """Run one playbook on the module's hosts."""
        return run_playbook(name, self.inventory, private_key=self.key, known_hosts=self.known_hosts,
                            extravars={"github_runner_private_key": self.runner_key, **extravars})


def wait_for_status(ip: str, port: int, path: str, want: int, deadline: float = 90) -> list[int]:
    """Poll until the URL answers `want`; return every status seen (0 = no answer). Fails after deadline."""
    seen: list[int] = []
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            status = get(ip, port, path)[0]
        except OSError:
            status = 0
        seen.append(status)
        if status == want:
            return seen
        time.sleep(0.3)
    raise AssertionError(f"http://{ip}:{port}{path}: no {want} after {deadline} s; seen {sorted(set(seen))}")


def slowest_tasks(result: PlaybookResult, count: int = 4) -> str:
    """The run's slowest tasks, as `host/task 12.3s`."""
    done = [e["event_data"] for e in result.events if e.get("event") in ("runner_on_ok", "runner_on_failed")]
    done.sort(key=lambda d: d.get("duration") or 0, reverse=True)
    return ", ".join(f"{d.get('host')}/{d.get('task')} {d.get('duration') or 0:.1f}s" for d in done[:count])


def module_inventory(key: Path) -> dict:
    """The two test hosts through the real inventory model (inventories/lab.yml with its hosts replaced)."""
    _, document = read_document(ROOT / "inventories" / "lab.yml")
    document = copy.deepcopy(document)
    document["runner"] = {**document["runner"], "host": None, "deploy_key": str(key)}
    document["hosts"] = [
        {"vmid": vmid, "hostname": name, "ip": ip, "roles": roles, "packages": ["rsync", "python3"],
         "services": SERVICES[name]}
        for name, (vmid, ip, roles) in HOSTS.items()
    ]  # fmt: skip
    return ansible_inventory(Inventory.model_validate(document))


def module_model() -> Inventory:
    """The module's inventory as the model (for the checks through Traefik)."""
    _, document = read_document(ROOT / "inventories" / "lab.yml")
    document = copy.deepcopy(document)
    document["runner"] = {**document["runner"], "host": None}
    document["hosts"] = [{"vmid": vmid, "hostname": name, "ip": ip, "roles": roles, "services": SERVICES[name]}
                         for name, (vmid, ip, roles) in HOSTS.items()]
    return Inventory.model_validate(document)


def via_traefik(name: str) -> int | None:
    """Status of the service's route, checked through the module's Traefik by host name (TLS verified)."""
    service = next(s for _, s in module_model().endpoints if s.name == f"{name}-via-traefik")
    return check_service(service).status


@pytest.fixture(scope="module")
def deployment(lab_hosts, tmp_path_factory) -> Deployment:
    """Create the two hosts, break rsync on one, deploy bootstrap and every role, then rerun everything."""
    assert load_inventory(ROOT / "inventories" / "lab.yml")  # the file the derivation starts from is valid
    tmp = tmp_path_factory.mktemp("roles")
    key = tmp / "deploy_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    runner_key = tmp / "runner_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(runner_key)], check=True)
    dep = Deployment(key, tmp / "known_hosts", module_inventory(key), runner_key.read_text())

    created: list[int] = []
    try:
        started = time.monotonic()
        for name, (vmid, ip, _) in HOSTS.items():
            if lab_hosts.exists(vmid):  # left by a crashed earlier run
                lab_hosts.destroy(vmid)
            created.append(vmid)
            lab_hosts.create(vmid, name, ip, 24, "198.18.0.1", None, key.with_suffix(".pub").read_text())
            lab_hosts.start(vmid)
        for vmid, _, _ in HOSTS.values():
            lab_hosts.wait_ssh(vmid, timeout=60)
        dep.timings["hosts up"] = time.monotonic() - started
        dep.ssh("app-demo", "apt-get remove -y -q rsync >/dev/null 2>&1 && ! command -v rsync")

        for name in PLAYBOOKS:
            result = dep.play(name)
            dep.first[name] = result
            dep.timings[f"first {name}"] = result.duration
            assert result.ok, result.recap()
        for name in PLAYBOOKS:
            dep.rerun[name] = dep.play(name)
            dep.timings[f"rerun {name}"] = dep.rerun[name].duration
        yield dep
    finally:
        print("\nroles on the lab, seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in dep.timings.items()))
        for name, result in dep.first.items():
            print(f"slowest tasks of the first {name}: {slowest_tasks(result)}")
        for vmid in created:
            if lab_hosts.exists(vmid):
                lab_hosts.destroy(vmid)


def test_every_playbook_converges(deployment):
    """bootstrap and every role's playbook succeed on their hosts."""
    for result in deployment.first.values():
        assert result.ok and not result.failures(), result.recap()
    assert set(PLAYBOOKS) == {"bootstrap", "monitoring", "utilities", "github_runner", "proxy"}
    assert sorted(deployment.first["bootstrap"].stats) == sorted(HOSTS)
    assert sorted(deployment.first["monitoring"].stats) == ["app-demo"]
    assert sorted(deployment.first["proxy"].stats) == ["proxy"]


def test_deploy_user_logs_in_with_the_runner_key_and_sudoes(deployment):
    """Incident #9: the deploy user has the runner's public key; sudo works without a password."""
    public = deployment.key.with_suffix(".pub").read_text().strip()
    for host in HOSTS:
        keys = deployment.ssh(host, "cat ~/.ssh/authorized_keys", user="deploy").stdout
        assert public in keys.splitlines(), f"{host}: runner key not in ~deploy/.ssh/authorized_keys"
        assert deployment.ssh(host, "sudo -n id -u", user="deploy").stdout.strip() == "0"


def test_rsync_is_installed_on_every_host(deployment):
    """Incident #11: bootstrap (re)installs rsync, including where it had been removed."""
    for host in HOSTS:
        assert deployment.ssh(host, "command -v rsync").stdout.strip().endswith("/rsync"), host


def test_sshd_refuses_passwords(deployment):
    """sshd runs key-only after bootstrap."""
    for host in HOSTS:
        settings = deployment.ssh(host, "sshd -T").stdout.lower().splitlines()
        assert "passwordauthentication no" in settings, host


def test_traefik_redirects_to_https_and_routes_the_app_by_name(deployment):
    """http://proxy/ answers 301/302 to https; https://grafana.<domain>/api/health through Traefik reaches Grafana."""
    status, headers, _ = get(HOSTS["proxy"][1], 80, "/")
    assert status in (301, 302) and headers.get("Location", "").startswith("https://"), (status, headers)
    route = next(s for _, s in module_model().endpoints if s.name == "grafana-via-traefik")
    assert wait_for_service(route, 30).status == 200
    version = deployment.ssh("proxy", "docker exec traefik traefik version").stdout
    assert "3.7.15" in version, version


def test_a_rerun_changes_nothing(deployment):
    """Idempotence: the second run of every playbook reports changed=0 on every host."""
    changed = {name: r.changed_tasks() for name, r in deployment.rerun.items() if r.changed_total}
    failed = {name: r.summary() for name, r in deployment.rerun.items() if not r.ok}
    assert not failed, failed
    assert not changed, f"a rerun changed something: {changed}"


def test_traefik_answers_502_while_an_upstream_is_down(deployment):
    """With Grafana's container stopped, its route through Traefik answers 502 (a warm-up code of the checks)."""
    deployment.ssh("app-demo", "docker stop --time 2 grafana")
    try:
        assert via_traefik("grafana") == 502
    finally:
        deployment.ssh("app-demo", "docker start grafana")
    assert wait_for_status(HOSTS["app-demo"][1], MONITORING_PORT, "/api/health", 200)[-1] == 200


def test_monitoring_and_utilities_answer(deployment):
    """The Grafana stand-in reaches 200 on /api/health after its warm-up, directly and through Traefik;
    Vaultwarden's stand-in answers /alive."""
    assert wait_for_status(HOSTS["app-demo"][1], MONITORING_PORT, "/api/health", 200)[-1] == 200
    assert get(HOSTS["proxy"][1], UTILITIES_PORT, "/alive")[0] == 200
    assert via_traefik("grafana") == 200 and via_traefik("vaultwarden") == 200


def test_images_are_the_upstream_references(deployment):
    """docker image ls on the hosts lists the references of services/*.yml, pulled through the lab's mirror."""
    images = set(deployment.ssh("proxy", "docker image ls --format '{{.Repository}}:{{.Tag}}'").stdout.split())
    assert {"traefik:v3.7.15", "vaultwarden/server:1.32.7"} <= images, images


def test_every_expected_container_runs(deployment):
    """Each host runs the containers its inventory entry lists."""
    for host, names in CONTAINERS.items():
        running = set(deployment.ssh(host, "docker ps --format '{{.Names}}'").stdout.split())
        assert set(names) <= running, f"{host}: expected {names}, running {sorted(running)}"


def test_runner_key_is_written_and_never_logged(deployment):
    """github_runner writes the private key given as a variable (mode 600) and no run shows it."""
    stat = deployment.ssh("app-demo", "stat -c '%a %U' /home/deploy/.ssh/id_ed25519").stdout.split()
    assert stat == ["600", "deploy"]
    written = deployment.ssh("app-demo", "cat /home/deploy/.ssh/id_ed25519").stdout
    assert written.strip() == deployment.runner_key.strip()
    body = [line for line in deployment.runner_key.splitlines() if line and "-----" not in line]
    for result in [*deployment.first.values(), *deployment.rerun.values()]:
        texts = result.stdout + repr(result.events)
        assert not [line for line in body if line in texts], f"{result.playbook}: the runner key leaked"
