"""Make the registry hold every recipe's image: check, push from the cache, or build first.

Warm path (the usual `lab up`): hash each recipe, find its cache entry, ask the registry for each
tag's manifest digest (one HEAD each) — nothing else. A registry that lost an image (fresh
storage) is refilled from the cache with skopeo; only a recipe whose hash has no cache entry is
built.

Cold path: the downloads, builds and pushes are jobs on a few threads (lab/images/schedule.py; how many:
lab/config.py image_builds): a recipe's build waits for its parent's build and its own downloads, its push for
its build, and the job heading the heaviest chain starts first, so NetBox's base and then NetBox build while the other images fill the
other core.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab import config
from lab.images import build, inputs, schedule
from lab.images import recipe as recipes_mod
from lab.registry import MANIFEST_TYPES, Registry

# How much heavier than a step a Python application's build is, when no earlier build says (the order only).
PYTHON_APP_STEPS = 10
# A push job's weight beside a build's (a few tags copied from the cache).
PUBLISH_WEIGHT = 0.5
# A fetch of a recipe's wheels or .debs beside a build (downloads: the network's time more than the cores').
INPUTS_WEIGHT = 1.0
_CERT_LOCK = threading.Lock()


@dataclass
class Outcome:
    """What ensure() did for one recipe."""

    recipe: str
    references: list[str]
    hash: str
    version: str = ""
    built_seconds: float = 0.0
    pushed_tags: list[str] = field(default_factory=list)
    replaced_tags: list[str] = field(default_factory=list)
    compressed_bytes: int = 0

    def as_dict(self) -> dict:
        """Plain dict (for JSON, benchmarks)."""
        return dict(self.__dict__)


def registry_digest(registry: Registry, repository: str, tag: str) -> str | None:
    """The digest the registry serves for repository:tag, or None when it has no such tag."""
    status, headers, _ = registry.get(f"/v2/{repository}/manifests/{tag}", accept=MANIFEST_TYPES, method="HEAD")
    if status == 404:
        return None
    if status != 200:
        raise RuntimeError(f"lab registry {registry.url}: HEAD {repository}:{tag} answered {status}")
    return {k.lower(): v for k, v in headers.items()}.get("docker-content-digest")


def _cert_dir(registry: Registry) -> Path:
    """A directory with the lab CA as ca.crt (what skopeo's --dest-cert-dir reads)."""
    certs = registry.state_dir / "skopeo-certs"
    ca = registry.ca_file.read_bytes()
    with _CERT_LOCK:  # pushes run on several threads: one writes, and skopeo never reads a half-written file
        certs.mkdir(parents=True, exist_ok=True)
        if not (certs / "ca.crt").exists() or (certs / "ca.crt").read_bytes() != ca:
            tmp = certs / f".ca.crt.tmp-{os.getpid()}"
            tmp.write_bytes(ca)
            os.replace(tmp, certs / "ca.crt")
    return certs


def push(registry: Registry, entry: Path, repository: str, tag: str) -> None:
    """Copy a cached image (dir: layout) to repository:tag, byte for byte (same digests)."""
    cmd = ["skopeo", "copy", "--quiet", "--dest-cert-dir", str(_cert_dir(registry)),
           f"dir:{entry / build.IMAGE_DIR}", f"docker://{registry.address}/{repository}:{tag}"]
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        raise RuntimeError(f"push {repository}:{tag} to {registry.url}: {res.stderr.strip()[-1000:]}")


def build_weight(recipe: recipes_mod.Recipe, cache: Path) -> float | None:
    """The seconds this recipe's last build took on this machine (an older cache entry's), or None."""
    seconds = [meta.get("build_seconds") for meta in build.older_metas(cache, recipe)]
    return max((s for s in seconds if isinstance(s, (int, float))), default=None)


def build_weights(recipes: dict[str, recipes_mod.Recipe], names: list[str], cache: Path) -> dict[str, float]:
    """How heavy each build is, for the order only: the last builds' seconds when every one is known,
    else the recipe's steps, a Python application (pip inputs: resolved, compiled, installed, migrated
    at build) counting as PYTHON_APP_STEPS more."""
    known = {name: build_weight(recipes[name], cache) for name in names}
    if names and all(known.values()):
        return known
    return {name: 1 + sum("run" in step for step in recipes[name].steps)
            + (PYTHON_APP_STEPS if recipes[name].pip or recipes[name].pip_sdists else 0) for name in names}


def serialized(progress):
    """progress() called from several threads: one whole line at a time."""
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            progress(line)
    return say


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:300]


def ensure(registry: Registry | None, cache: Path, progress=lambda _: None,
           recipes: dict[str, recipes_mod.Recipe] | None = None, workers: int | None = None,
           stop: threading.Event | None = None) -> list[Outcome]:
    """Every recipe built (cached by hash; independent builds in parallel on `workers` threads, each after its
    parent) and pushed under all its tags; return what was done, in recipe order. registry None: built only
    (lab up builds while its base is made, before its registry runs); `stop` set: nothing more starts."""
    recipes = recipes_mod.load_all() if recipes is None else recipes
    workers = config.image_builds() if workers is None else workers
    hashes = recipes_mod.all_hashes(recipes)
    cache.mkdir(parents=True, exist_ok=True)
    say = serialized(progress)
    outcomes = {name: Outcome(name, recipe.references, hashes[name]) for name, recipe in recipes.items()}
    metas = {name: build.cached_meta(cache, recipe, hashes[name]) for name, recipe in recipes.items()}
    to_build = [name for name in recipes if metas[name] is None]
    weights = build_weights(recipes, to_build, cache)
    # a recipe's downloads need no parent: they run while the parent builds (NetBox's beside the trixie base)
    fetching = [name for name in to_build if inputs.has_inputs(recipes[name])]

    def build_needs(name: str) -> tuple:
        # a child waits for its parent's build only when the parent is built too (else its entry is cached)
        parent = (("build", recipes[name].parent),) if recipes[name].parent in to_build else ()
        return parent + ((("inputs", name),) if name in fetching else ())

    jobs = [schedule.Job(("inputs", name), (), INPUTS_WEIGHT) for name in fetching]
    jobs += [schedule.Job(("build", name), build_needs(name), weights[name]) for name in to_build]
    if registry is not None:
        jobs += [schedule.Job(("publish", name), (("build", name),) if name in to_build else (), PUBLISH_WEIGHT)
                 for name in recipes]

    def work(key) -> None:
        kind, name = key
        recipe = recipes[name]
        if kind == "inputs":
            inputs.fetch(recipe, cache, say)
        elif kind == "build":
            metas[name] = _build(recipe, hashes, recipes, cache, outcomes[name], say)
        else:
            _publish(registry, cache, recipe, metas[name], outcomes[name], say)

    result = schedule.run(jobs, work, workers, stop)
    if result.failed:
        for (kind, name), error in result.failed.items():
            say(f"image {', '.join(recipes[name].references)}: {kind} FAILED: {_first_line(error)}")
        left = sorted({name for _, name in result.not_started})
        if left:
            say(f"images not built or pushed after the failure (their builds stay cached): {', '.join(left)}")
        raise next(iter(result.failed.values()))
    return [outcomes[name] for name in recipes]


def _build(recipe: recipes_mod.Recipe, hashes: dict[str, str], recipes: dict[str, recipes_mod.Recipe],
           cache: Path, out: Outcome, say) -> dict:
    """Build one recipe into the cache (its parent is there already); return its metadata."""
    digest = hashes[recipe.name]
    say(f"image {', '.join(recipe.references)}: building (recipe {digest[:12]})")
    parent = recipes.get(recipe.parent)
    parent_entry = build.entry_dir(cache, parent, hashes[parent.name]) if parent else None
    meta = build.build(recipe, digest, parent_entry, cache, say)
    out.built_seconds = meta["build_seconds"]
    say(f"image {', '.join(recipe.references)}: built in {meta['build_seconds']:.0f} s "
        f"({meta['compressed_bytes'] >> 20} MiB compressed)")
    return meta


def _publish(registry: Registry, cache: Path, recipe: recipes_mod.Recipe, meta: dict, out: Outcome, say) -> None:
    """Push every tag the registry does not serve with the cached manifest's digest."""
    out.version, out.compressed_bytes = meta["version"], meta["compressed_bytes"]
    entry = build.entry_dir(cache, recipe, out.hash)
    for tag in recipe.tags:
        served = registry_digest(registry, recipe.repository, tag)
        if served != meta["manifest_digest"]:
            started = time.monotonic()
            push(registry, entry, recipe.repository, tag)
            out.pushed_tags.append(tag)
            if served:  # the old manifest's layers now belong to no tag
                out.replaced_tags.append(tag)
            say(f"image {recipe.repository}:{tag}: pushed to {registry.address} "
                f"in {time.monotonic() - started:.1f} s")


def cache_bytes(cache: Path) -> int:
    """Disk used by the image cache (entries, inputs)."""
    return sum(p.stat().st_size for p in cache.rglob("*") if p.is_file() and not p.is_symlink())


def clear(cache: Path) -> None:
    """Remove the whole image cache (forces cold builds)."""
    shutil.rmtree(cache, ignore_errors=True)
