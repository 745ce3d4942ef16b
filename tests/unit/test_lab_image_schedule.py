"""Cold image builds in parallel: parents before children, a few at once, the longest chain first, one line per failure.

No buildah, no registry: the scheduler runs fake jobs, ensure() a fake build and push.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from lab import config
from lab.images import build, publish, schedule
from lab.images import recipe as recipes
from tests.unit.test_lab_images import FakeRegistry, write_recipe

pytestmark = pytest.mark.unit

PIP_APP = """
[inputs]
python = "3.13"
glibc = "2.41"
pip = ["app==1"]

[[steps]]
run = "true"
"""


class Recorder:
    """A work function that logs each job's start and end and how many ran at once."""

    def __init__(self, seconds: float = 0.05, fail: tuple = (), slow: dict | None = None):
        """Each job sleeps `seconds` (or its `slow` entry); the keys in `fail` raise."""
        self.seconds, self.fail, self.slow = seconds, fail, slow or {}
        self.events: list[tuple[str, object]] = []
        self.lock = threading.Lock()
        self.now = self.most = 0

    def __call__(self, key) -> None:
        """Run one fake job."""
        with self.lock:
            self.events.append(("start", key))
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(self.slow.get(key, self.seconds))
            if key in self.fail:
                raise build.BuildError(f"{key}: step 2/3 run exited 1; its last lines:\nE: no such package")
        finally:
            with self.lock:
                self.now -= 1
                self.events.append(("end", key))

    def index(self, kind: str, key) -> int:
        """Position of an event in the log."""
        return self.events.index((kind, key))


def test_a_job_starts_only_after_the_jobs_it_needs_have_ended():
    """A chain base → mid → leaf and a sibling: every start follows the end of what it needs."""
    jobs = [schedule.Job("base"), schedule.Job("mid", ("base",)), schedule.Job("leaf", ("mid",)),
            schedule.Job("sibling", ("base",)), schedule.Job("alone")]
    work = Recorder()
    result = schedule.run(jobs, work, workers=2)
    assert not result.failed and not result.not_started and sorted(result.started) == sorted(j.key for j in jobs)
    for job in jobs:
        for need in job.needs:
            assert work.index("end", need) < work.index("start", job.key), f"{job.key} started before {need} ended"


def test_independent_jobs_run_at_once_up_to_the_number_of_workers():
    """Two jobs that can only finish together (a barrier) pass with 2 workers; 1 worker never runs two."""
    barrier = threading.Barrier(2, timeout=10)
    result = schedule.run([schedule.Job("a"), schedule.Job("b")], lambda _: barrier.wait(), workers=2)
    assert not result.failed, "the two jobs did not run at the same time"
    four = Recorder(seconds=0.05)
    schedule.run([schedule.Job(k) for k in "abcd"], four, workers=2)
    assert four.most == 2
    one = Recorder(seconds=0.02)
    schedule.run([schedule.Job(k) for k in "abcd"], one, workers=1)
    assert one.most == 1


def test_the_longest_chain_starts_first():
    """The light base whose child is heavy starts before a heavier job alone, and the heavy child next."""
    jobs = [schedule.Job("bookworm", weight=2), schedule.Job("lone", weight=5), schedule.Job("trixie", weight=1),
            schedule.Job("netbox", ("trixie",), weight=40), schedule.Job("small", ("bookworm",), weight=1)]
    assert schedule.chain_weights(jobs)["trixie"] == 41
    result = schedule.run(jobs, Recorder(seconds=0.01), workers=1)
    assert result.started == ["trixie", "netbox", "lone", "bookworm", "small"]


def test_after_a_failure_nothing_new_starts_the_running_job_ends_and_the_rest_is_listed():
    """One of two running jobs fails: the other one ends normally, the waiting ones never start."""
    jobs = [schedule.Job("fails", weight=3), schedule.Job("runs", weight=2), schedule.Job("after", ("runs",)),
            schedule.Job("later")]
    work = Recorder(seconds=0.05, fail=("fails",), slow={"runs": 0.5})
    result = schedule.run(jobs, work, workers=2)
    assert list(result.failed) == ["fails"] and isinstance(result.failed["fails"], build.BuildError)
    assert ("end", "runs") in work.events, "the running job was not left to finish"
    assert result.not_started == ["after", "later"]
    assert [e for e in work.events if e[0] == "start"] == [("start", "fails"), ("start", "runs")]


def test_once_stopped_nothing_new_starts_and_the_running_job_ends():
    """lab up's base failed while the images built: the running build ends, the waiting ones never start."""
    stop = threading.Event()
    jobs = [schedule.Job("running", weight=3), schedule.Job("after", ("running",)), schedule.Job("later")]
    work = Recorder(slow={"running": 0.5})
    threading.Timer(0.1, stop.set).start()
    result = schedule.run(jobs, work, workers=1, stop=stop)
    assert ("end", "running") in work.events and not result.failed
    assert result.not_started == ["after", "later"]


def test_jobs_needing_each_other_in_a_circle_are_refused():
    """A circle is refused before anything runs (recipes refuse it when they load; the scheduler too)."""
    with pytest.raises(ValueError, match="circle"):
        schedule.run([schedule.Job("a", ("b",)), schedule.Job("b", ("a",))], Recorder(), workers=2)


@pytest.fixture
def stack(monkeypatch, tmp_path):
    """Recipes like the lab's: two debootstrap bases, a Python app on one, small images on both, one scratch."""
    root = tmp_path / "recipes"
    for name in ("bookworm", "trixie"):
        write_recipe(root, name, parent="debootstrap", extra='suite = "' + name + '"')
    write_recipe(root, "netbox", parent="trixie", extra=PIP_APP)
    write_recipe(root, "mariadb", parent="trixie")
    for name in ("grafana", "loki", "postgres"):
        write_recipe(root, name, parent="bookworm")
    write_recipe(root, "traefik")
    reg = FakeRegistry()
    log: list[str] = []
    lock = threading.Lock()
    fail: set[str] = set()

    def fake_build(recipe, digest, parent_entry, cache, progress):
        if recipe.parent not in ("scratch", "debootstrap"):
            assert parent_entry and (parent_entry / build.META).exists(), "built before its parent"
        with lock:
            log.append(f"start {recipe.name}")
        time.sleep(0.03)
        if recipe.name in fail:
            raise build.BuildError(f"image {recipe.references[0]} (recipe {recipe.name}): step 1/1 run `x` "
                                   "exited 100; its last lines:\nE: Unable to locate package x")
        entry = build.entry_dir(cache, recipe, digest)
        (entry / build.IMAGE_DIR).mkdir(parents=True)
        (entry / build.IMAGE_DIR / "manifest.json").write_text("{}")
        meta = {"hash": digest, "version": "1", "manifest_digest": f"sha256:{digest}",
                "compressed_bytes": 1, "build_seconds": 1.0}
        (entry / build.META).write_text(json.dumps(meta))
        return meta

    def fake_push(registry, entry, repository, tag):
        registry.tags[(repository, tag)] = json.loads((entry / build.META).read_text())["manifest_digest"]

    def fake_fetch(recipe, cache, progress):
        with lock:
            log.append(f"fetch {recipe.name}")
        time.sleep(0.03)
        with lock:
            log.append(f"fetched {recipe.name}")

    monkeypatch.setattr(build, "build", fake_build)
    monkeypatch.setattr(publish.inputs, "fetch", fake_fetch)
    monkeypatch.setattr(publish, "push", fake_push)
    monkeypatch.setattr(publish, "registry_digest", lambda registry, repository, tag: registry.tags.get((repository, tag)))
    return recipes.load_all(root), reg, log, fail, tmp_path / "cache"


def test_a_cold_ensure_starts_the_python_apps_chain_first_and_builds_two_at_once(stack):
    """Cold cache: the Python app's base and its downloads, then the app itself go first; the rest fills the other worker."""
    loaded, reg, log, _, cache = stack
    lines: list[str] = []
    out = publish.ensure(reg, cache, lines.append, recipes=loaded, workers=2)
    assert [o.recipe for o in out] == list(loaded), "outcomes come back in recipe order"
    assert all(o.built_seconds and o.pushed_tags == ["1"] for o in out)
    # the app's downloads and its base start together; the app builds as soon as both have ended
    starts = [line for line in log if line.startswith(("start ", "fetch "))]  # a short job may end before the other starts
    assert set(starts[:2]) == {"fetch netbox", "start trixie"}, log
    assert log.index("fetched netbox") < log.index("start netbox") < min(log.index(f"start {name}") for name in
                                                                         ("grafana", "loki", "postgres")), log
    building = [line for line in lines if line.endswith(")") and ": building (recipe " in line]
    assert len(building) == len(loaded) and all(line.startswith("image ") for line in building)
    assert all("\n" not in line for line in lines)


def test_a_failed_build_is_one_line_naming_the_image_and_leaves_no_partial_entry(stack):
    """One build fails: one line names its image, the error is raised, what was built is complete and cached."""
    loaded, reg, _, fail, cache = stack
    fail.add("mariadb")
    lines: list[str] = []
    with pytest.raises(build.BuildError, match="Unable to locate package"):
        publish.ensure(reg, cache, lines.append, recipes=loaded, workers=2)
    failed = [line for line in lines if "FAILED" in line]
    assert failed == [("image mariadb:1: build FAILED: image mariadb:1 (recipe mariadb): step 1/1 run `x` exited 100; "
                       "its last lines:")]
    hashes = recipes.all_hashes(loaded)
    for name, recipe in loaded.items():
        entry = build.entry_dir(cache, recipe, hashes[name])
        assert build.cached_meta(cache, recipe, hashes[name]) is not None or not entry.exists(), name
    fail.clear()
    again: list[str] = []
    publish.ensure(reg, cache, again.append, recipes=loaded, workers=2)
    rebuilt = {line.split(":")[0] for line in again if ": building (recipe " in line}
    assert "image mariadb" in rebuilt and "image trixie" not in rebuilt, "the rerun rebuilt what was cached"


def test_build_weights_use_the_last_builds_seconds_else_the_recipes_steps(stack):
    """No history: the Python app is the heaviest; with every recipe's earlier build known, its seconds."""
    loaded, _, _, _, cache = stack
    names = list(loaded)
    cold = publish.build_weights(loaded, names, cache)
    assert max(cold, key=cold.get) == "netbox" and cold["netbox"] > cold["trixie"] + cold["mariadb"]
    for i, (name, recipe) in enumerate(loaded.items()):
        entry = build.entry_dir(cache, recipe, f"{i:064x}")
        entry.mkdir(parents=True)
        (entry / build.META).write_text(json.dumps({"build_seconds": 100.0 if name == "postgres" else 10.0}))
    warm = publish.build_weights(loaded, names, cache)
    assert warm["postgres"] == 100.0 and warm["netbox"] == 10.0


def test_a_real_build_that_fails_leaves_no_entry_no_temp_dir_and_its_own_buildah_storage_emptied(monkeypatch, tmp_path):
    """build.build with buildah faked: a failing step removes the temp entry; storage is per recipe, then gone."""
    recipe = recipes.load(write_recipe(tmp_path / "recipes", "app", extra='[[steps]]\nrun = "false"\n'))
    cache = tmp_path / "cache"
    mount = tmp_path / "rootfs"
    mount.mkdir()
    roots: list[Path] = []

    class FakeBuildah:
        def __init__(self, root: Path):
            roots.append(root)
            self.root = root
            root.mkdir(parents=True, exist_ok=True)

        def __call__(self, *args, what: str, timeout: float = 0) -> str:
            if args[0] == "run":
                raise build.BuildError(f"{what}: buildah run exited 1")
            return str(mount) if args[0] == "mount" else "ctr"

        def reset(self) -> None:
            shutil.rmtree(self.root, ignore_errors=True)

    monkeypatch.setattr(build, "Buildah", FakeBuildah)
    with pytest.raises(build.BuildError, match="step 1/1 run"):
        build.build(recipe, "ab" * 32, None, cache, lambda _: None)
    assert roots and set(roots) == {cache / ".buildah" / "app"}, "builds running at once would share a storage"
    assert not roots[0].exists()
    assert [p.name for p in cache.iterdir() if p.name != ".buildah"] in ([], ["inputs"])


def test_the_number_of_builds_at_once_comes_from_the_environment_or_the_cores(monkeypatch):
    """Unset: one per core, at most two; a bad value is one line naming the variable."""
    monkeypatch.delenv(config.IMAGE_BUILDS_ENV, raising=False)
    assert 1 <= config.image_builds() <= 2
    monkeypatch.setenv(config.IMAGE_BUILDS_ENV, "3")
    assert config.image_builds() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(config.IMAGE_BUILDS_ENV, bad)
        with pytest.raises(RuntimeError, match=f"LAB_IMAGE_BUILDS='{bad}': expected") as caught:
            config.image_builds()
        assert "\n" not in str(caught.value)
