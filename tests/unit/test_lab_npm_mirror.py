"""The lab's npm mirror: served without uplink, seeded once per lockfile, lockfiles found outside node_modules."""

from __future__ import annotations

import json

import pytest

from lab import npm_mirror
from lab.npm_mirror import NpmMirror

pytestmark = pytest.mark.unit


def mirror(tmp_path) -> NpmMirror:
    """A mirror with its storage and state under tmp_path."""
    return NpmMirror("198.18.0.1", 4873, tmp_path / "storage", tmp_path / "state")


def test_the_lab_mirror_serves_on_the_bridge_without_any_uplink(tmp_path):
    """What lab hosts reach has no uplink: nothing it lacks can be fetched from outside."""
    lab = NpmMirror.lab()
    assert lab.url == "http://198.18.0.1:4873/"
    cfg = json.loads(mirror(tmp_path)._config("198.18.0.1:4873"))
    assert cfg["uplinks"] == {} and "proxy" not in cfg["packages"]["**"]
    assert cfg["packages"]["**"]["publish"] == "$authenticated" and cfg["auth"]["htpasswd"]["max_users"] == -1


def test_only_the_seeding_instance_proxies_and_only_on_loopback(tmp_path):
    """The uplink exists only in the seeding config, whose listener is 127.0.0.1."""
    cfg = json.loads(mirror(tmp_path)._config("127.0.0.1:5555", "https://registry.example.invalid/"))
    assert cfg["listen"].startswith("127.0.0.1:")
    assert cfg["packages"]["**"]["proxy"] == "npmjs" and cfg["uplinks"]["npmjs"]["url"].endswith(".invalid/")


def test_lockfiles_are_found_outside_node_modules_and_hashed_with_their_package_json(tmp_path):
    """A lockfile under node_modules is a dependency's, not a project's; package.json is part of the hash."""
    (tmp_path / "app-demo" / "backend" / "node_modules" / "x").mkdir(parents=True)
    for d in ("app-demo/backend", "app-demo/backend/node_modules/x"):
        (tmp_path / d / "package-lock.json").write_text("{}")
    (tmp_path / "app-demo" / "backend" / "package.json").write_text('{"name": "b"}')
    found = npm_mirror.seed_lockfiles(tmp_path)
    assert found == [tmp_path / "app-demo" / "backend" / "package-lock.json"]
    before = npm_mirror.lockfile_hash(found[0])
    (tmp_path / "app-demo" / "backend" / "package.json").write_text('{"name": "b", "version": "2.0.0"}')
    assert npm_mirror.lockfile_hash(found[0]) != before


def test_a_seeded_lockfile_is_not_seeded_again(tmp_path, monkeypatch):
    """Warm `lab up`: the marker of the lockfile's hash means no verdaccio and no npm run at all."""
    m = mirror(tmp_path)
    lock = tmp_path / "package-lock.json"
    lock.write_text("{}")
    (tmp_path / "package.json").write_text("{}")
    m.seeded_dir.mkdir(parents=True)
    (m.seeded_dir / npm_mirror.lockfile_hash(lock)).write_text("seeded\n")
    monkeypatch.setattr(npm_mirror.procs, "start", lambda *a, **k: pytest.fail("a verdaccio was started"))
    monkeypatch.setattr(npm_mirror, "_npm_ci", lambda *a, **k: pytest.fail("npm ci ran"))
    assert m.seed([lock], tmp_path / "run", tmp_path / "log") == []
