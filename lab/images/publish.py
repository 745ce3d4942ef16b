"""Make the registry hold every recipe's image: check, push from the cache, or build first.

Warm path (the usual `lab up`): hash each recipe, find its cache entry, ask the registry for each
tag's manifest digest (one HEAD each) — nothing else. A registry that lost an image (fresh
storage) is refilled from the cache with skopeo; only a recipe whose hash has no cache entry is
built.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab.images import build
from lab.images import recipe as recipes_mod
from lab.registry import MANIFEST_TYPES, Registry


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
    certs.mkdir(parents=True, exist_ok=True)
    ca = registry.ca_file.read_bytes()
    if not (certs / "ca.crt").exists() or (certs / "ca.crt").read_bytes() != ca:
        (certs / "ca.crt").write_bytes(ca)
    return certs


def push(registry: Registry, entry: Path, repository: str, tag: str) -> None:
    """Copy a cached image (dir: layout) to repository:tag, byte for byte (same digests)."""
    cmd = ["skopeo", "copy", "--quiet", "--dest-cert-dir", str(_cert_dir(registry)),
           f"dir:{entry / build.IMAGE_DIR}", f"docker://{registry.address}/{repository}:{tag}"]
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        raise RuntimeError(f"push {repository}:{tag} to {registry.url}: {res.stderr.strip()[-1000:]}")


def ensure(registry: Registry, cache: Path, progress=lambda _: None,
           recipes: dict[str, recipes_mod.Recipe] | None = None) -> list[Outcome]:
    """Every recipe built (cached by hash) and pushed under all its tags; return what was done."""
    recipes = recipes_mod.load_all() if recipes is None else recipes
    hashes = recipes_mod.all_hashes(recipes)
    cache.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for name, recipe in recipes.items():
        digest = hashes[name]
        out = Outcome(name, recipe.references, digest)
        meta = build.cached_meta(cache, recipe, digest)
        if meta is None:
            progress(f"image {', '.join(recipe.references)}: building (recipe {digest[:12]})")
            parent = recipes.get(recipe.parent)
            parent_entry = build.entry_dir(cache, parent, hashes[parent.name]) if parent else None
            meta = build.build(recipe, digest, parent_entry, cache, progress)
            out.built_seconds = meta["build_seconds"]
            progress(f"image {', '.join(recipe.references)}: built in {meta['build_seconds']:.0f} s "
                     f"({meta['compressed_bytes'] >> 20} MiB compressed)")
        out.version, out.compressed_bytes = meta["version"], meta["compressed_bytes"]
        entry = build.entry_dir(cache, recipe, digest)
        for tag in recipe.tags:
            served = registry_digest(registry, recipe.repository, tag)
            if served != meta["manifest_digest"]:
                started = time.monotonic()
                push(registry, entry, recipe.repository, tag)
                out.pushed_tags.append(tag)
                if served:  # the old manifest's layers now belong to no tag
                    out.replaced_tags.append(tag)
                progress(f"image {recipe.repository}:{tag}: pushed to {registry.address} "
                         f"in {time.monotonic() - started:.1f} s")
        outcomes.append(out)
    return outcomes


def cache_bytes(cache: Path) -> int:
    """Disk used by the image cache (entries, inputs)."""
    return sum(p.stat().st_size for p in cache.rglob("*") if p.is_file() and not p.is_symlink())


def clear(cache: Path) -> None:
    """Remove the whole image cache (forces cold builds)."""
    shutil.rmtree(cache, ignore_errors=True)
