"""docker_service_container's decisions, against a scripted docker CLI (the real one runs in tests/lab/test_roles.py)."""

from __future__ import annotations

import importlib.util
import os

import pytest

from plugins.tools.playbooks import ROLES_DIR

pytestmark = pytest.mark.unit

_SPEC = importlib.util.spec_from_file_location(
    "docker_service_container", ROLES_DIR / "docker_service" / "library" / "docker_service_container.py")
module = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(module)

PARAMS = {"name": "grafana", "image": "homelab-monitoring:latest", "build_dir": "/opt/monitoring",
          "base_image": "labbase:latest", "base_image_tar": "", "ports": ["3000:3000"],
          "env": {"MONITORING_PORT": 3000}, "restart_policy": "unless-stopped", "init": True}
OLD, NEW = "sha256:" + "1" * 64, "sha256:" + "2" * 64


class FakeHost:
    """A host whose docker answers from a small state; records every command."""

    def __init__(self, *, enabled=True, running=True, images=None, container=None, build_id=NEW, fail=None):
        self.enabled, self.running = enabled, running
        self.images = dict({"labbase:latest": "sha256:base", PARAMS["image"]: OLD} if images is None else images)
        self.container = container  # (spec label, running) or None
        self.build_id, self.fail = build_id, fail
        self.calls: list[tuple[str, ...]] = []

    def run(self, *argv, env=None):
        self.calls.append(argv)
        if self.fail and argv[:2] == self.fail:
            return 1, "", "something broke\nError: the last line"
        match argv[:3]:
            case ("systemctl", "is-enabled", _):
                return (0 if self.enabled else 1), "", ""
            case ("docker", "info", _):
                return (0 if self.running else 1), "27.0\n", ""
            case ("docker", "image", "inspect"):
                found = self.images.get(argv[-1])
                return (0, found + "\n", "") if found else (1, "", "No such image")
            case ("docker", "build", _):
                assert env == {"DOCKER_BUILDKIT": "0"}
                self.images[PARAMS["image"]] = self.build_id
                return 0, self.build_id + "\n", ""
            case ("docker", "container", "inspect"):
                if self.container is None:
                    return 1, "", "No such container"
                return 0, f"{self.container[0]} {str(self.container[1]).lower()}\n", ""
        return 0, "", ""

    def must(self, *argv, env=None):
        rc, out, err = self.run(*argv, env=env)
        if rc:
            raise module.DockerError(list(argv), rc, err)
        return out.strip()

    def ran(self, *prefix) -> bool:
        return any(call[: len(prefix)] == prefix for call in self.calls)


def test_nothing_changes_when_the_build_keeps_its_id_and_the_container_is_current():
    """The no-change redeploy: same image id, container running with the same spec label."""
    spec = module.spec_hash(OLD, PARAMS)
    host = FakeHost(build_id=OLD, container=(spec, True))
    result = module.converge(host, PARAMS, check=False)
    assert result == {"changed": False, "actions": [], "image_id": OLD, "spec": spec, "diff": []}
    assert not host.ran("docker", "rm") and not host.ran("docker", "run")


def test_a_new_image_id_replaces_the_container():
    """A build that moved the id gives a new spec: the old container is removed and a new one runs."""
    host = FakeHost(container=(module.spec_hash(OLD, PARAMS), True))
    result = module.converge(host, PARAMS, check=False)
    assert result["changed"] and result["image_id"] == NEW
    assert result["actions"][-1] == "replace container grafana"
    run = next(call for call in host.calls if call[:2] == ("docker", "run"))
    assert run[-1] == PARAMS["image"] and "--init" in run and "--publish=3000:3000" in run
    assert "--env=MONITORING_PORT=3000" in run and f"homelab.spec={result['spec']}" in run


def test_a_stopped_container_is_started_again_even_with_the_same_spec():
    """Same spec but not running: replaced, so that the service answers."""
    host = FakeHost(build_id=OLD, container=(module.spec_hash(OLD, PARAMS), False))
    assert module.converge(host, PARAMS, check=False)["actions"] == ["replace container grafana"]


def test_the_spec_follows_ports_env_restart_and_init():
    """Any of them moving changes the label; env values compare as text."""
    base = module.spec_hash(OLD, PARAMS)
    assert module.spec_hash(OLD, {**PARAMS, "env": {"MONITORING_PORT": "3000"}}) == base
    for change in ({"ports": ["3001:3000"]}, {"env": {}}, {"restart_policy": "always"}, {"init": False}):
        assert module.spec_hash(OLD, {**PARAMS, **change}) != base, change
    assert module.spec_hash(NEW, PARAMS) != base


def test_check_mode_changes_nothing_and_says_what_would_change():
    """--check: no build, no rm, no run; a missing container is reported."""
    host = FakeHost(container=None)
    result = module.converge(host, PARAMS, check=True)
    assert result["changed"] and result["actions"] == ["start container grafana"]
    assert not any(host.ran(*cmd) for cmd in (("docker", "build"), ("docker", "run"), ("docker", "rm")))


def test_a_stopped_daemon_is_enabled_and_started(monkeypatch):
    """Docker not enabled and not answering: enable, start, then the usual work."""
    host = FakeHost(enabled=False, running=False)
    monkeypatch.setattr(host, "run", _start_on_systemctl(host))
    result = module.converge(host, PARAMS, check=False)
    assert result["actions"][:2] == ["enable docker at boot", "start docker"]
    assert host.ran("systemctl", "enable", "docker") and host.ran("systemctl", "start", "docker")


def _start_on_systemctl(host: FakeHost):
    original = host.run

    def run(*argv, env=None):
        if argv[:2] == ("systemctl", "start"):
            host.running = True
        return original(*argv, env=env)
    return run


def test_the_base_image_is_imported_from_its_tar_when_absent(tmp_path):
    """No base image and a tar on the host: `docker import` before the build."""
    tar = tmp_path / "labbase.tar"
    tar.write_bytes(b"")
    host = FakeHost(images={})
    result = module.converge(host, {**PARAMS, "base_image_tar": str(tar)}, check=False)
    assert result["actions"][0] == f"import labbase:latest from {tar}"
    assert host.calls.index(("docker", "import", str(tar), "labbase:latest")) < next(
        i for i, call in enumerate(host.calls) if call[:2] == ("docker", "build"))


def test_a_failed_build_names_the_command_and_its_last_error_line():
    """The failure Ansible reports: the command, its rc, the last line of stderr."""
    host = FakeHost(fail=("docker", "build"))
    with pytest.raises(module.DockerError, match=r"^`docker build --quiet .*` failed \(rc=1\): Error: the last line$"):
        module.converge(host, PARAMS, check=False)


def test_check_mode_reports_the_context_files_that_would_change_without_writing(tmp_path):
    """--check --diff: the diff of each differing file, nothing written."""
    build = tmp_path / "proxy"
    build.mkdir()
    (build / "Dockerfile").write_text("FROM old\n")
    actions: list[str] = []
    diffs = module.write_context(str(build), {"Dockerfile": "FROM new\n", "proxy.py": "print(1)\n"}, True, actions)
    assert actions == [f"write {build}/Dockerfile", f"write {build}/proxy.py"]
    assert diffs[0]["before"] == "FROM old\n" and diffs[0]["after"] == "FROM new\n"
    assert (build / "Dockerfile").read_text() == "FROM old\n" and not (build / "proxy.py").exists()


@pytest.mark.parametrize("name", ["../etc/passwd", "/etc/passwd", "a/../../x"])
def test_context_file_names_cannot_leave_the_build_dir(tmp_path, name):
    """A file name that resolves outside build_dir is refused before anything is written."""
    with pytest.raises(module.DockerError, match="is not inside"):
        module.write_context(str(tmp_path), {name: "x"}, False, [])


@pytest.mark.skipif(os.geteuid() != 0, reason="writes root-owned files: run as root (the lab's tests are)")
def test_context_files_are_written_root_owned_0644_and_then_left_alone(tmp_path):
    """First call writes (and creates the dir), a second call with the same content does nothing."""
    build = tmp_path / "svc"
    first: list[str] = []
    module.write_context(str(build), {"Dockerfile": "FROM base\n"}, False, first)
    written = build / "Dockerfile"
    assert first == [f"create {build}", f"write {written}"]
    assert written.read_text() == "FROM base\n" and written.stat().st_mode & 0o777 == 0o644
    again: list[str] = []
    assert module.write_context(str(build), {"Dockerfile": "FROM base\n"}, False, again) == [] and again == []
    written.chmod(0o600)
    module.write_context(str(build), {"Dockerfile": "FROM base\n"}, False, again)
    assert again == [f"write {written}"] and written.stat().st_mode & 0o777 == 0o644
