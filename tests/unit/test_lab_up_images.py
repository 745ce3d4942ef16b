"""lab up builds the missing images beside its base rootfs and services; the pushes wait for the registry.

No lab here: the bridge, the base, the services and the builds are replaced by recorders.
"""

from __future__ import annotations

import threading

import pytest

from lab import orchestrate
from lab.images.publish import Outcome

pytestmark = pytest.mark.unit


class _Mirror:
    url = "http://mirror"

    def seed(self, *args):
        pass

    def start(self, *args):
        pass

    def packages(self):
        return []


@pytest.fixture
def up_parts(monkeypatch):
    """Every part of up() a recorder; the base and services wait until the image builds have started."""
    log: list[str] = []
    builds_started = threading.Event()
    base_fails: list[BaseException] = []
    seen_stop: list[threading.Event] = []

    def fake_ensure(registry, cache, progress, recipes, workers, stop=None):
        if registry is None:
            log.append("build")
            builds_started.set()
            seen_stop.append(stop)
            stop.wait(0.3)
            log.append("build stopped" if stop.is_set() else "built")
            return [Outcome("netbox", ["netbox:1"], "h", built_seconds=1.0)]
        log.append("push")
        return [Outcome("netbox", ["netbox:1"], "h")]

    def fake_base(progress, nodes):
        assert builds_started.wait(5), "the base started before the image builds"
        log.append("base and services")
        if base_fails:
            raise base_fails[0]
        return False

    monkeypatch.setattr(orchestrate.config, "image_builds", lambda: 2)
    monkeypatch.setattr(orchestrate.net, "bridge_up", lambda: None)
    monkeypatch.setattr(orchestrate, "ensure_deploy_key", lambda: "key")
    monkeypatch.setattr(orchestrate, "_images_needed", lambda progress: {})
    monkeypatch.setattr(orchestrate.images, "ensure", fake_ensure)
    monkeypatch.setattr(orchestrate, "_base_and_services", fake_base)
    monkeypatch.setattr(orchestrate, "NPM_MIRROR", _Mirror())
    monkeypatch.setattr(orchestrate, "seed_lockfiles", list)
    monkeypatch.setattr(orchestrate, "_wait_port", lambda *args: None)
    monkeypatch.setattr(orchestrate, "status", lambda: {"up": True})
    monkeypatch.setattr(orchestrate, "_check_api", lambda status_now: None)
    return log, base_fails, seen_stop


def test_the_builds_start_before_the_base_and_the_pushes_after_both(up_parts):
    """Builds and base at once; the pushes once both have ended; the summary counts the early builds."""
    log, _, _ = up_parts
    lines: list[str] = []
    orchestrate.up(progress=lines.append)
    assert log[0] == "build" and log[-1] == "push" and set(log[1:3]) == {"base and services", "built"}, log
    assert any(line.startswith("images: 1 recipes") and "built 1, pushed 0 tags" in line for line in lines), lines


def test_a_failed_base_stops_the_builds_and_pushes_nothing(up_parts):
    """The base fails: its error comes out, the builds are told to stop, nothing is pushed."""
    log, base_fails, seen_stop = up_parts
    base_fails.append(RuntimeError("debootstrap failed"))
    with pytest.raises(RuntimeError, match="debootstrap failed"):
        orchestrate.up()
    assert seen_stop[0].is_set() and "push" not in log and "build stopped" in log, log
