"""The app_demo role on a real LXC host, as the deploy runs it: rsync, Docker builds from the lab's
registry (node, postgres) and npm mirror, PostgreSQL on a named volume, migrations at start.

Host 773 (198.18.0.73) is created for this module and destroyed in a finalizer, even when a step fails.
The role reads APP_DEMO_NPM_REGISTRY and APP_DEMO_DB_PASSWORD from the environment, as in a deploy
(`lab env`); the password is a fresh random one, and no run may show it.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lab import orchestrate, scenarios
from plugins.inventory import Inventory, read_document
from plugins.stack import ansible_inventory
from plugins.tools.playbooks import PlaybookResult, run_playbook

pytestmark = pytest.mark.lab

VMID, IP, NAME = 773, "198.18.0.73", "app-demo"
MARKER = "shipped-by-mistake.txt"


@dataclass
class AppHost:
    """The module's host, its runs, and the secret they must never show."""

    key: Path
    known_hosts: Path
    inventory: dict
    app_src: Path
    password: str
    runs: list[PlaybookResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def ssh(self, command: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a command as root on the host with the module's key."""
        cmd = ["ssh", "-i", str(self.key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
               "-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={self.known_hosts}",
               "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", f"root@{IP}", command]  # fmt: skip
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=180)
        if check and done.returncode != 0:
            raise AssertionError(f"ssh root@{IP} {command!r} exited {done.returncode}: {done.stderr}{done.stdout}")
        return done

    def play(self, name: str, **extravars) -> PlaybookResult:
        """One playbook on the host; kept for the secret check."""
        result = run_playbook(name, self.inventory, private_key=self.key, known_hosts=self.known_hosts,
                              extravars={"app_demo_src": str(self.app_src), **extravars}, limit=NAME)
        self.runs.append(result)
        return result

    def curl(self, path: str, port: int, data: str | None = None) -> tuple[int, str]:
        """(status, body) of http://<host>:<port><path>, asked from the machine."""
        cmd = ["curl", "-s", "-m", "5", "-o", "-", "-w", "\n%{http_code}", f"http://{IP}:{port}{path}"]
        if data is not None:
            cmd += ["-H", "content-type: application/json", "--data", data]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
        body, _, code = done.stdout.rpartition("\n")
        return int(code or 0), body


def wait_status(host: AppHost, path: str, port: int, want: int, deadline: float = 120) -> list[int]:
    """Poll until the URL answers `want`; every status seen (0 = no answer). Fails after deadline."""
    seen: list[int] = []
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        seen.append(host.curl(path, port)[0])
        if seen[-1] == want:
            return seen
        time.sleep(0.5)
    raise AssertionError(f"http://{IP}:{port}{path}: no {want} after {deadline} s; seen {sorted(set(seen))}")


@pytest.fixture(scope="module")
def lab_up() -> dict:
    """The running lab (registry and npm mirror); skip with one line without it."""
    st = orchestrate.status()
    if not st["up"]:
        pytest.skip("the lab is not up (registry, npm mirror): sudo python -m lab up")
    return st


@pytest.fixture(scope="module")
def app_host(lab_hosts, lab_up, tmp_path_factory):
    """Create the host, deploy bootstrap + app_demo, and rerun app_demo; the host is destroyed afterwards."""
    tmp = tmp_path_factory.mktemp("app-demo")
    key = tmp / "deploy_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    app_src = scenarios.app_copy(tmp)
    for tree in ("backend/node_modules/left-pad", "frontend/node_modules/react", ".git"):
        (app_src / tree).mkdir(parents=True)
        (app_src / tree / MARKER).write_text("must never reach the host\n")
    _, document = read_document(scenarios.LAB_INVENTORY)
    document = copy.deepcopy(document)
    document["runner"] = {**document["runner"], "host": None, "deploy_key": str(key)}
    [lab_app] = [h for h in document["hosts"] if "app_demo" in h["roles"]]
    [lab_proxy] = [h for h in document["hosts"] if "traefik" in h.get("services", [])]
    # The app host with the lab's app services; the lab's proxy stays in the inventory (the routes need a
    # Traefik) but every play is limited to the module's host: the proxy is never contacted.
    document["hosts"] = [{"vmid": VMID, "hostname": NAME, "ip": IP, "roles": ["app_demo"],
                          "packages": ["rsync", "python3"],
                          "services": [s for s in lab_app["services"] if s.startswith("app-demo")]},
                         {**lab_proxy, "services": ["traefik"]}]
    host = AppHost(key, tmp / "known_hosts", ansible_inventory(Inventory.model_validate(document)), app_src,
                   secrets.token_urlsafe(18))
    saved = {name: os.environ.get(name) for name in ("APP_DEMO_NPM_REGISTRY", "APP_DEMO_DB_PASSWORD")}
    os.environ["APP_DEMO_NPM_REGISTRY"] = lab_up["npm_mirror"]["url"]
    os.environ["APP_DEMO_DB_PASSWORD"] = host.password
    created = False
    try:
        if lab_hosts.exists(VMID):
            lab_hosts.destroy(VMID)
        created = True
        lab_hosts.create(VMID, NAME, IP, 24, "198.18.0.1", None, key.with_suffix(".pub").read_text())
        lab_hosts.start(VMID)
        lab_hosts.wait_ssh(VMID, timeout=60)
        for name in ("bootstrap", "app_demo"):
            result = host.play(name)
            host.timings[f"first {name}"] = result.duration
            assert result.ok, result.recap()
        started = time.monotonic()
        wait_status(host, "/api/health", 3000, 200)
        host.timings["api healthy after the deploy"] = time.monotonic() - started
        rerun = host.play("app_demo")
        host.timings["no-change app_demo"] = rerun.duration
        yield host
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        print("\napp_demo on the lab, seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in host.timings.items()))
        if created and lab_hosts.exists(VMID):
            lab_hosts.destroy(VMID)


def test_the_api_and_the_frontend_answer(app_host):
    """/api/health 200 {"status":"ok","database":"ok"}; / serves the React build; /api/ through the frontend too."""
    status, body = app_host.curl("/api/health", 3000)
    assert (status, json.loads(body)) == (200, {"status": "ok", "database": "ok"})
    status, body = app_host.curl("/", 80)
    assert status == 200 and "<title>app-demo</title>" in body and "assets/" in body, body[:300]
    status, body = app_host.curl("/api/health", 80)
    assert status == 200 and json.loads(body)["database"] == "ok"


def test_a_rerun_changes_nothing(app_host):
    """The second app_demo run: changed=0 (same image IDs from the build cache, containers left alone)."""
    rerun = app_host.runs[-1] if app_host.runs[-1].playbook == "app_demo.yml" else None
    assert rerun is not None and rerun.ok, rerun.recap() if rerun else app_host.runs
    assert rerun.changed_total == 0, rerun.changed_tasks()


def test_node_modules_and_git_are_not_shipped(app_host):
    """Incident #10: the synced source has the app but no node_modules/ or .git/ from the runner."""
    out = app_host.ssh(f"find /opt/app-demo/src -name {MARKER} -o -name node_modules -print; ls -A /opt/app-demo/src").stdout
    assert MARKER not in out and "node_modules" not in out, out
    assert {"backend", "frontend", "README.md"} <= set(out.split()) and ".git" not in out.split()


def test_the_images_are_upstream_references_and_the_builds_local(app_host):
    """docker image ls: node:24-bookworm-slim and postgres:15 (from the registry mirror) and the two built tags."""
    listed = set(app_host.ssh("docker image ls --format '{{.Repository}}:{{.Tag}}'").stdout.split())
    assert {"node:24-bookworm-slim", "postgres:15", "app-demo-backend:latest", "app-demo-frontend:latest"} <= listed


def test_rows_survive_a_container_recreate_and_a_redeploy(app_host):
    """Rows written through the API are still there after the database and backend containers are removed
    and the role recreates them on the same named volume."""
    name = f"row-{secrets.token_hex(4)}"
    status, body = app_host.curl("/api/items", 3000, data=json.dumps({"name": name, "note": "kept"}))
    assert status == 201, body
    app_host.ssh("docker rm -f app-demo-backend app-demo-postgres")
    result = app_host.play("app_demo")
    assert result.ok and result.changed_total >= 2, result.recap()
    wait_status(app_host, "/api/health", 3000, 200)
    status, body = app_host.curl("/api/items", 3000)
    assert status == 200 and [(r["name"], r["note"]) for r in json.loads(body) if r["name"] == name] == [(name, "kept")]
    volumes = app_host.ssh("docker volume ls --format '{{.Name}}'").stdout.split()
    assert "app-demo-pgdata" in volumes


def test_a_bad_change_makes_health_500_and_the_good_source_repairs(app_host, tmp_path):
    """scenarios.broken_app_copy deployed: /api/health 500; the repository's source deployed again: 200."""
    broken = app_host.play("app_demo", app_demo_src=f"{scenarios.broken_app_copy(tmp_path)}/")
    assert broken.ok and broken.changed_total > 0, broken.recap()
    assert wait_status(app_host, "/api/health", 3000, 500, deadline=60)[-1] == 500
    repaired = app_host.play("app_demo")
    assert repaired.ok, repaired.recap()
    assert wait_status(app_host, "/api/health", 3000, 200)[-1] == 200


def test_the_database_password_never_shows_in_a_run(app_host):
    """No stdout, event or recap of any run holds the generated password (no_log on every task that carries it)."""
    assert app_host.runs
    for result in app_host.runs:
        text = result.stdout + json.dumps(result.events) + result.recap()
        assert app_host.password not in text, f"{result.playbook}: the database password leaked"
    env = app_host.ssh("docker inspect --format '{{json .Config.Env}}' app-demo-backend").stdout
    assert f"PGPASSWORD={app_host.password}" in env  # it did reach the app: the check above is not vacuous
