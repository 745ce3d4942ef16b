"""plugins/health/: the probe script and the judges, run for real in a local shell with stub commands."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from plugins.health import dockerd, hosts, probes
from plugins.health.registry import CHECKS
from plugins.health.remote import run_probes
from plugins.shared.this_machine import is_this_machine, self_reason
from plugins.ssh.pool import MasterState, SshTarget

pytestmark = pytest.mark.unit



def fake_key(seed: bytes, comment: str) -> str:
    """An ed25519-shaped public key line (valid base64, never a real key)."""
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + (seed * 32)[:32]
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


KEY = fake_key(b"runner", "runner@ci")
OTHER = fake_key(b"owner", "owner@laptop")


@dataclass
class Host:
    """The inventory host's shape, as far as the checks read it."""

    hostname: str = "app-demo"
    ip: str = "198.18.0.250"
    packages: list[str] = field(default_factory=lambda: ["rsync", "python3"])
    containers: list[str] = field(default_factory=lambda: ["web"])


class StubHost:
    """A testinfra-like host whose run() executes the script locally with stub commands first on PATH."""

    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.scripts: list[str] = []
        self.env: dict[str, str] = {}

    def run(self, command: str):
        """Run the command like a remote shell would, with only the stub dir and a few tools on PATH."""
        self.scripts.append(command)
        done = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, check=False,
                              env={"PATH": str(self.bin_dir), "HOME": str(self.bin_dir.parent / "home"), **self.env})
        return SimpleNamespace(rc=done.returncode, stdout=done.stdout, stderr=done.stderr)


@pytest.fixture
def lab_host(tmp_path):
    """Give (StubHost, stub writer): coreutils linked in, `docker`, `dpkg-query`, `rsync`, `getent` stubbable."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "timeout", "head", "cut", "cat", "sleep", "grep"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "authorized_keys").write_text(f"{OTHER}\nrestrict,command=\"x\" {KEY}\n")

    def stub(name: str, body: str) -> None:
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(0o755)

    stub("getent", f'echo "deploy:x:1000:1000::{home}:/bin/sh"')
    stub("rsync", 'echo "rsync  version 3.2.7  protocol version 31"')
    stub("dpkg-query", r"""for p in "$@"; do case "$p" in
  rsync) printf 'rsync\tinstall ok installed\t3.2.7-1\n';;
  python3) printf 'python3\tinstall ok installed\t3.11.2-1\n';;
  git) printf 'git\tdeinstall ok config-files\t1:2.39\n';;
  -*|'${Package}'*) ;;
  *) echo "dpkg-query: no packages found matching $p" >&2; missing=1;;
esac; done; exit ${missing:-0}""")
    stub("docker", r"""printf 'web\trunning\tUp 5 minutes (healthy)\n'
printf 'worker\trunning\tUp 5 minutes\n'
printf 'db\texited\tExited (1) 2 minutes ago\n'
printf 'api\trunning\tUp 1 minute (unhealthy)\n'""")
    return StubHost(bin_dir), stub


def run(lab_host, *given):
    """Run probes on the stub host; give results by (check, subject)."""
    conn, _ = lab_host
    return {(r.check, r.subject): r for r in run_probes(Host(), conn, list(given))}


def test_all_probes_run_in_one_command_and_pass(lab_host, tmp_path):
    pub = tmp_path / "deploy_ed25519.pub"
    pub.write_text(KEY + "\n")
    every = [probes.rsync_probe(), probes.docker_probe(), probes.container_probe("web"),
             probes.container_probe("worker"), probes.package_probe("rsync", ["rsync", "python3"]),
             probes.package_probe("python3", ["rsync", "python3"]), probes.runner_key_probe("deploy", pub)]
    results = run(lab_host, *every)
    assert [r.outcome for r in results.values()] == ["pass"] * 7, [r.message for r in results.values()]
    assert len(lab_host[0].scripts) == 1, "one remote command per host"
    assert lab_host[0].scripts[0].count(dockerd.docker_ps_command()) == 1, "identical commands run once"
    assert results[("container_running", "web")].message == "app-demo (198.18.0.250): container web running (healthy)"
    assert results[("rsync_installed", None)].message.endswith("/bin/rsync")


def test_rsync_missing_names_host_and_incident(lab_host):
    conn, _ = lab_host
    (conn.bin_dir / "rsync").unlink()
    outcome = run(lab_host, probes.rsync_probe())[("rsync_installed", None)]
    assert outcome.outcome == "fail"
    assert outcome.message.startswith("app-demo (198.18.0.250): rsync is not installed")
    assert "incident #11" in outcome.message


def test_docker_down_fails_docker_and_skips_its_containers(lab_host):
    _, stub = lab_host
    stub("docker", 'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. '
                   'Is the docker daemon running?" >&2; exit 1')
    results = run(lab_host, probes.docker_probe(), probes.container_probe("web"))
    assert results[("docker_running", None)].outcome == "fail"
    assert "docker is not running" in results[("docker_running", None)].message
    assert results[("container_running", "web")].outcome == "skip"
    assert results[("container_running", "web")].message.startswith("not checked: docker is not running")


def test_docker_permission_denied_is_explained(lab_host):
    _, stub = lab_host
    stub("docker", 'echo "permission denied while trying to connect to the Docker daemon socket" >&2; exit 1')
    message = run(lab_host, probes.docker_probe())[("docker_running", None)].message
    assert "group docker" in message


# Engine API answer as dockerd gives it (trimmed): "/cache/db" is a legacy link alias, not a container of that name.
API_ANSWER = json.dumps([
    {"Names": ["/web"], "State": "running", "Status": "Up 5 minutes (healthy)"},
    {"Names": ["/db", "/cache/db"], "State": "exited", "Status": "Exited (1) 2 minutes ago"},
    {"Names": ["/api"], "State": "running", "Status": "Up 1 minute (unhealthy)"},
])


def test_docker_engine_api_is_asked_through_curl_when_there(lab_host):
    conn, stub = lab_host
    stub("curl", f"echo '{API_ANSWER}'")
    stub("docker", "echo 'the CLI must not run when the API answered' >&2; exit 3")
    results = run(lab_host, probes.docker_probe(), *map(probes.container_probe, ("web", "db", "api", "cache")))
    assert results[("docker_running", None)].message == "app-demo (198.18.0.250): dockerd answers (3 containers)"
    assert results[("container_running", "web")].outcome == "pass"
    assert "container db is exited (Exited (1) 2 minutes ago)" in results[("container_running", "db")].message
    assert "running but not healthy (Up 1 minute (unhealthy))" in results[("container_running", "api")].message
    assert "container cache does not exist; containers there: api, db, web" in \
        results[("container_running", "cache")].message
    assert "--unix-socket /var/run/docker.sock" in conn.scripts[0]


@pytest.mark.parametrize("why", ["curl fails", "DOCKER_HOST set"])
def test_docker_cli_answers_when_the_socket_cannot(lab_host, why):
    conn, stub = lab_host
    if why == "curl fails":  # daemon down, or no permission on the socket: the CLI's error says which
        stub("curl", 'echo "curl: (7) Failed to connect to docker port 80: Couldn\'t connect to server" >&2; exit 7')
    else:  # the daemon is elsewhere: the CLI knows where, the socket path does not
        stub("curl", "echo '[]'")
        conn.env["DOCKER_HOST"] = "tcp://198.18.0.9:2375"
    stub("docker", 'echo "permission denied while trying to connect to the Docker daemon socket" >&2; exit 1')
    message = run(lab_host, probes.docker_probe())[("docker_running", None)].message
    assert "group docker" in message, message


def test_a_silent_docker_socket_is_cut_without_asking_the_cli(lab_host):
    _, stub = lab_host
    stub("curl", "echo 'curl: (28) Operation timed out after 20001 milliseconds' >&2; exit 28")
    stub("docker", "echo 'the CLI must not be tried after a timeout' >&2; exit 3")
    results = run(lab_host, probes.docker_probe(), probes.container_probe("web"))
    assert "docker is not answering: no container list within" in results[("docker_running", None)].message
    assert results[("container_running", "web")].outcome == "skip"


def test_an_unreadable_api_answer_fails_docker_and_skips_containers(lab_host):
    _, stub = lab_host
    stub("curl", "echo '{\"message\": \"page not found\"}'")
    results = run(lab_host, probes.docker_probe(), probes.container_probe("web"))
    assert "unreadable container list (expected a JSON list" in results[("docker_running", None)].message
    assert results[("container_running", "web")].outcome == "skip"


# dockerd's answers when some containers are not running: the list, the list filtered to those, each one's inspect
STOPPED_ID, ALWAYS_ID = "a" * 64, "b" * 64
STOPPED_LIST = json.dumps([
    {"Id": "c" * 64, "Names": ["/web"], "State": "running", "Status": "Up 5 minutes (healthy)"},
    {"Id": STOPPED_ID, "Names": ["/vault"], "State": "exited", "Status": "Exited (143) 2 minutes ago"},
    {"Id": ALWAYS_ID, "Names": ["/db"], "State": "exited", "Status": "Exited (255) 1 second ago"},
], separators=(",", ":"))  # dockerd writes its JSON without spaces


def inspect_answer(name: str, policy: str) -> str:
    """The Engine API's inspect of a container (trimmed), as one line the way dockerd writes it."""
    return json.dumps({"Id": "x", "Name": f"/{name}", "State": {"Status": "exited"},
                       "HostConfig": {"RestartPolicy": {"Name": policy, "MaximumRetryCount": 0}}}, separators=(",", ":"))


def api_stub(stub, listing: str, log: Path) -> None:
    """curl answering the list, the filtered list and each inspect as dockerd would; each URL asked logged."""
    stopped = json.dumps([{"Id": STOPPED_ID, "Names": ["/vault"]}, {"Id": ALWAYS_ID, "Names": ["/db"]}])
    stub("curl", f"""for a in "$@"; do url=$a; done; echo "$url" >> {log}
case "$url" in
  *filters=*) echo '{stopped}';;
  */{STOPPED_ID}/json) echo '{inspect_answer("vault", "no")}';;
  */{ALWAYS_ID}/json) echo '{inspect_answer("db", "always")}';;
  *) echo '{listing}';;
esac""")


def test_a_stopped_container_whose_restart_policy_is_no_is_down_for_good(lab_host, tmp_path):
    """Exited with restart policy "no": nothing starts it again, a final failure; exited with "always" (a dockerd
    just booted, about to restart it) stays a failure a wait can change."""
    _, stub = lab_host
    api_stub(stub, STOPPED_LIST, tmp_path / "asked")
    results = run(lab_host, probes.docker_probe(), *map(probes.container_probe, ("web", "vault", "db")))
    vault, db = results[("container_running", "vault")], results[("container_running", "db")]
    assert vault.outcome == "fail" and vault.final, vault
    assert vault.message == ("app-demo (198.18.0.250): container vault is exited (Exited (143) 2 minutes ago) and its "
                             "restart policy is no: nothing starts it again; expected running (`docker logs vault`)")
    assert db.outcome == "fail" and not db.final, db
    assert "container db is exited (Exited (255) 1 second ago); expected running" in db.message
    assert results[("container_running", "web")].outcome == "pass"
    assert results[("docker_running", None)].message.endswith("dockerd answers (3 containers)")
    asked = (tmp_path / "asked").read_text().split()
    assert sorted(url.rsplit("/", 2)[1] for url in asked if url.endswith(("a/json", "b/json"))) == \
        [STOPPED_ID, ALWAYS_ID], asked


def test_the_policies_are_read_only_when_a_container_is_not_running(lab_host, tmp_path):
    """Every container running: one request, the list (the common case costs the host nothing more)."""
    _, stub = lab_host
    api_stub(stub, json.dumps([{"Id": "c" * 64, "Names": ["/web"], "State": "running", "Status": "Up 5 minutes"}]),
             tmp_path / "asked")
    assert run(lab_host, probes.container_probe("web"))[("container_running", "web")].outcome == "pass"
    assert (tmp_path / "asked").read_text().split() == ["http://docker/containers/json?all=1"]


def test_the_docker_cli_gives_the_policies_too(lab_host):
    """Without the socket (DOCKER_HOST set): `docker ps` rows, then `docker inspect` rows of the stopped ones."""
    conn, stub = lab_host
    conn.env["DOCKER_HOST"] = "tcp://198.18.0.9:2375"
    stub("docker", r"""case "$1 $2" in
  "ps -a") printf 'web	running	Up 5 minutes
vault	exited	Exited (0) 1 minute ago
db	exited	Exited (1) 2 s ago
';;
  "ps -aq") printf 'aaa
bbb
';;
  inspect*) printf '/vault	no
/db	unless-stopped
';;
esac""")
    results = run(lab_host, *map(probes.container_probe, ("web", "vault", "db")))
    assert results[("container_running", "vault")].final
    assert not results[("container_running", "db")].final
    assert results[("container_running", "db")].outcome == "fail"


@pytest.mark.parametrize(("state", "policy", "final"), [
    ("exited", "no", True), ("created", "no", True), ("dead", "", True), ("exited", "always", False),
    ("exited", "unless-stopped", False), ("exited", "on-failure", False), ("exited", None, False),
    ("restarting", "no", False), ("running", "no", False),
])
def test_only_a_stopped_container_that_nothing_restarts_is_down_for_good(state, policy, final):
    assert dockerd.down_for_good(state, policy) is final


def test_an_unreadable_inspect_line_leaves_the_policy_unknown():
    out = (f"{dockerd.DOCKER_API_MARK}\n[]\n{dockerd.POLICIES_MARK}\n{{not json\n"
           f"{inspect_answer('vault', 'no')}\n\n{{\"Name\": \"/x\"}}\n")
    assert dockerd.restart_policies(out) == {"vault": "no"}
    assert dockerd.docker_containers(out) == {}


@pytest.mark.parametrize(("name", "expected"), [
    ("db", "app-demo (198.18.0.250): container db is exited (Exited (1) 2 minutes ago); expected running"),
    ("api", "app-demo (198.18.0.250): container api is running but not healthy (Up 1 minute (unhealthy))"),
    ("cache", "app-demo (198.18.0.250): container cache does not exist; containers there: api, db, web, worker"),
])
def test_container_failures_say_what_was_found(lab_host, name, expected):
    outcome = run(lab_host, probes.container_probe(name))[("container_running", name)]
    assert outcome.outcome == "fail"
    assert outcome.message.startswith(expected), outcome.message


def test_missing_and_removed_packages_fail(lab_host):
    names = ["git", "nginx"]
    results = run(lab_host, probes.package_probe("git", names), probes.package_probe("nginx", names))
    assert "dpkg status: deinstall ok config-files" in results[("package_installed", "git")].message
    assert "nginx is not installed" in results[("package_installed", "nginx")].message


def test_runner_key_absent_names_fingerprint_not_key(lab_host, tmp_path):
    conn, _ = lab_host
    (conn.bin_dir.parent / "home" / ".ssh" / "authorized_keys").write_text(OTHER + "\n")
    pub = tmp_path / "deploy_ed25519.pub"
    pub.write_text(KEY + "\n")
    outcome = run(lab_host, probes.runner_key_probe("deploy", pub))[("runner_key_authorized", None)]
    assert outcome.outcome == "fail"
    assert "SHA256:" in outcome.message and "1 other key(s) there" in outcome.message
    assert KEY.split()[1] not in outcome.message
    assert "incident #9" in outcome.message


def test_missing_public_key_file_is_reported(lab_host, tmp_path):
    outcome = run(lab_host, probes.runner_key_probe("deploy", tmp_path / "absent.pub"))[("runner_key_authorized", None)]
    assert outcome.outcome == "fail" and "cannot read the runner's public key" in outcome.message


def test_a_hanging_probe_is_cut_by_the_timeout(lab_host, monkeypatch):
    _, stub = lab_host
    stub("docker", "sleep 5")
    monkeypatch.setattr(dockerd, "PROBE_TIMEOUT", 1)
    message = run(lab_host, probes.docker_probe(), probes.rsync_probe())
    assert "docker is not answering" in message[("docker_running", None)].message
    assert message[("rsync_installed", None)].outcome == "pass"


class FakePool:
    """An SshPool stand-in whose masters are given open or failed, and whose hosts are stub hosts."""

    def __init__(self, conn, error=None, methods=("publickey",)):
        self.conn, self.error, self.methods, self.opened = conn, error, methods, []

    def open(self, name, command=None):
        self.opened.append(name)
        target = SshTarget(name, "198.18.0.250", "deploy", "/keys/deploy_ed25519")
        return MasterState(target, is_open=self.error is None, error=self.error, auth_methods=self.methods)

    def open_all(self, names):
        return {name: self.open(name) for name in names}

    def auth_methods(self, name):
        return self.methods

    def host(self, name):
        return self.conn


PLAN = [("ssh_reachable", None), ("sshd_refuses_passwords", None), ("runner_key_authorized", None),
        ("rsync_installed", None), ("docker_running", None), ("container_running", "web")]


def test_check_host_all_pass(lab_host, tmp_path):
    pub = tmp_path / "k.pub"
    pub.write_text(KEY)
    results = hosts.check_host(Host(), FakePool(lab_host[0]), PLAN, user="deploy", public_key_file=pub)
    assert [r.outcome for r in results] == ["pass"] * 6, [r.message for r in results]


def test_password_auth_offered_fails(lab_host, tmp_path):
    pool = FakePool(lab_host[0], methods=("publickey", "password"))
    results = hosts.check_host(Host(), pool, PLAN[:2], user="deploy", public_key_file=tmp_path / "k.pub")
    assert results[1].outcome == "fail"
    assert "sshd offers password authentication (methods: publickey,password)" in results[1].message


def test_key_refused_fails_ssh_and_key_and_skips_the_rest(lab_host, tmp_path):
    pool = FakePool(lab_host[0], error="deploy@198.18.0.250: Permission denied (publickey).", methods=("publickey",))
    results = {r.check: r for r in hosts.check_host(Host(), pool, PLAN, user="deploy",
                                                     public_key_file=tmp_path / "k.pub")}
    assert results["ssh_reachable"].outcome == "fail" and "Permission denied" in results["ssh_reachable"].message
    assert results["runner_key_authorized"].outcome == "fail"
    assert [results[c].outcome for c in ("rsync_installed", "docker_running", "container_running")] == ["skip"] * 3


def test_unreachable_host_fails_ssh_only(lab_host, tmp_path):
    pool = FakePool(lab_host[0], error="ssh: connect to host 198.18.0.250 port 22: Connection refused", methods=None)
    results = {r.check: r for r in hosts.check_host(Host(), pool, PLAN, user="deploy",
                                                     public_key_file=tmp_path / "k.pub")}
    assert results["ssh_reachable"].outcome == "fail"
    assert results["runner_key_authorized"].outcome == "skip"


def test_runner_host_skips_ssh_checks_visibly(lab_host, tmp_path):
    inventory = SimpleNamespace(runner=SimpleNamespace(host="app-demo"), where=lambda key: f"lab.yml: {key}")
    reason = self_reason(inventory, Host())
    pool = FakePool(lab_host[0])
    results = {r.check: r for r in hosts.check_host(Host(), pool, PLAN, user="deploy",
                                                     public_key_file=tmp_path / "k.pub", self_reason=reason)}
    for name in [check.name for check in CHECKS if check.self_check]:
        assert results[name].outcome == "skip" and "incident #13" in results[name].message
    assert results["rsync_installed"].outcome == "pass"


def test_this_machine_is_recognised_by_address():
    assert is_this_machine(Host(hostname="loopback", ip="127.0.0.1"))
    assert not is_this_machine(Host(hostname="app-demo", ip="198.18.0.250"))


def test_check_hosts_gives_every_result(lab_host, tmp_path):
    fleet = [Host(hostname=f"h{i}", ip=f"198.18.0.{130 + i}") for i in range(5)]
    results = hosts.check_hosts([(h, [("rsync_installed", None)]) for h in fleet], FakePool(lab_host[0]),
                                 user="deploy", public_key_file=tmp_path / "k.pub")
    assert sorted(results) == [(f"h{i}", "rsync_installed", None) for i in range(5)]


def test_a_master_whose_sessions_fail_is_reset_and_the_probes_run_again():
    """No frame of the script came back (the master's connection died under it): on_no_output resets it, the
    script runs once more through a new connection, and its answers are judged."""

    class Conn:
        def __init__(self):
            self.calls = 0

        def run(self, command):
            self.calls += 1
            if self.calls == 1:
                return SimpleNamespace(rc=255, stdout="", stderr="")
            done = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, check=False)
            return SimpleNamespace(rc=done.returncode, stdout=done.stdout, stderr=done.stderr)

    conn, resets = Conn(), []
    [answer] = run_probes(Host(), lambda: conn, [probes.rsync_probe()], on_no_output=lambda: resets.append(1))
    assert resets == [1] and conn.calls == 2
    expected = "pass" if shutil.which("rsync") else "fail"
    assert answer.outcome == expected, answer.message
    assert "no output from the host" not in answer.message
