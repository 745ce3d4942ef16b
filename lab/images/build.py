"""Build one recipe with buildah, which needs no daemon.

dockerd must never run on the machine: it sets FORWARD DROP and bridge-nf-call-iptables=1, which
silently cut host-to-host traffic on the lab bridge.

buildah keeps its own vfs storage per recipe under LAB_CACHE/images/.buildah/<recipe> (emptied after
each build: vfs stores every layer whole), so builds running at once share no storage, lock or container. The
result is committed straight in skopeo's `dir:` layout — manifest, config and gzip'd layers as the registry will
serve them — so pushing it again later gives the same digests, and a child recipe starts `FROM` its parent's
cached layers (shared in the registry).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from lab import base
from lab.images import flaky, inputs
from lab.images.recipe import DEBOOTSTRAP, SCRATCH, Recipe

META = "meta.json"
IMAGE_DIR = "image"
INPUT_PREFIX = "input:"
# debootstrap copies these from the machine into the target: an image must not carry them.
MACHINE_FILES = ("etc/resolv.conf", "etc/hostname", "etc/apt/sources.list")
# dpkg syncs every file it unpacks; a build writes its layer once, at the commit, so those syncs buy nothing.
# The file Docker's images of Ubuntu carried (`docker-apt-speedup`), here only while a step runs: the image
# does not keep it (and no recipe's hash changes: the files an image holds are the same).
DPKG_UNSAFE_IO = ("etc/dpkg/dpkg.cfg.d/99lab-build-unsafe-io", "force-unsafe-io\n")


class BuildError(RuntimeError):
    """A recipe failed to build (the message names the recipe and the step)."""


def entry_dir(cache: Path, recipe: Recipe, digest: str) -> Path:
    """The cache entry of a recipe built from this hash."""
    return cache / f"{recipe.name}-{digest[:16]}"


def cached_meta(cache: Path, recipe: Recipe, digest: str) -> dict | None:
    """The metadata of the cached build of this hash, or None when there is none (or it is partial)."""
    entry = entry_dir(cache, recipe, digest)
    try:
        meta = json.loads((entry / META).read_text())
    except (OSError, ValueError):
        return None
    if meta.get("hash") != digest or not (entry / IMAGE_DIR / "manifest.json").is_file():
        return None
    return meta


def older_metas(cache: Path, recipe: Recipe) -> list[dict]:
    """The metadata of every complete cache entry of this recipe, whatever its hash (a rebuild's history)."""
    found = []
    for entry in cache.glob(f"{recipe.name}-*"):
        if re.fullmatch(r"[0-9a-f]{16}", entry.name[len(recipe.name) + 1:]):
            try:
                found.append(json.loads((entry / META).read_text()))
            except (OSError, ValueError):
                continue
    return found


class Buildah:
    """buildah with the lab's private vfs storage."""

    def __init__(self, root: Path):
        """Use storage under root (created on demand)."""
        self.root = root
        self.base = ["buildah", "--root", str(root / "storage"), "--runroot", str(root / "run"),
                     "--storage-driver", "vfs"]
        self.recipe_file = "lab/images/recipes/<recipe>/recipe.toml"

    def __call__(self, *args: str, what: str, timeout: float = 1800) -> str:
        """Run one buildah command; raise BuildError naming `what` with its output's tail on failure."""
        cmd = [*self.base, *args]
        try:
            res = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout,
                                 env={**os.environ, "BUILDAH_ISOLATION": "chroot"})
        except subprocess.TimeoutExpired as exc:
            raise BuildError(f"{what}: timed out after {timeout:.0f} s") from exc
        if res.returncode != 0:
            output = res.stdout + res.stderr
            raise BuildError(f"{what}: buildah {args[0]} exited {res.returncode}; its last lines:\n"
                             f"{flaky.tool_tail(output)}\n{flaky.what_to_do(output, self.recipe_file)}")
        return res.stdout

    def reset(self) -> None:
        """Drop every container and image of a previous (maybe interrupted) build."""
        if (self.root / "storage").exists():
            subprocess.run([*self.base, "rm", "--all"], check=False, capture_output=True)
            subprocess.run([*self.base, "rmi", "--all", "--force"], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def _source(recipe: Recipe, staged: Path, spec: str) -> Path:
    """A copy step's source: `input:...` in the fetched inputs, else a file of the recipe (one match)."""
    if spec.startswith(INPUT_PREFIX):
        pattern, where = str(staged / spec[len(INPUT_PREFIX):]), "the recipe's inputs"
    else:
        pattern, where = str(recipe.directory / spec), str(recipe.directory)
    found = glob.glob(pattern)
    if len(found) != 1:
        raise BuildError(f"{recipe.name}: copy {spec!r} matched {len(found)} paths in {where}; expected one")
    return Path(found[0])


def _copy(recipe: Recipe, staged: Path, mount: Path, step: dict) -> None:
    """Copy a file or a directory's contents into the image (owned by root; mode if given)."""
    src = _source(recipe, staged, step["copy"])
    dest = mount / step["to"].lstrip("/")
    if src.is_dir():
        shutil.copytree(src, dest, symlinks=True, dirs_exist_ok=True)
        for path in [dest, *dest.rglob("*")]:
            os.lchown(path, 0, 0)
        return
    if step["to"].endswith("/"):
        dest = dest / src.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)
    os.chown(dest, 0, 0)
    if "mode" in step:
        dest.chmod(int(str(step["mode"]), 8))


@contextlib.contextmanager
def dpkg_unsafe_io(mount: Path):
    """dpkg in the working container skips its per-file syncs while a step runs; gone before the commit."""
    conf = mount / DPKG_UNSAFE_IO[0]
    if not conf.parent.is_dir():  # no dpkg (FROM scratch)
        yield
        return
    conf.write_text(DPKG_UNSAFE_IO[1])
    try:
        yield
    finally:
        conf.unlink(missing_ok=True)


def _debian_sources(suite: str) -> str:
    """deb822 sources of the image: the machine's own mirrors (never a host name in the code)."""
    main = base.debian_mirror(suite=base.config.SUITE)
    stanzas = [(f"Types: deb\nURIs: {main}\nSuites: {suite} {suite}-updates\nComponents: main\n"
               "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")]
    try:
        security = base.debian_mirror(suite=f"{base.config.SUITE}-security")
    except RuntimeError:
        security = ""
    if security:
        stanzas.append(f"Types: deb\nURIs: {security}\nSuites: {suite}-security\nComponents: main\n"
                       "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    return "\n".join(stanzas)


def _debootstrap(recipe: Recipe, mount: Path, progress) -> None:
    """A Debian minbase of the recipe's suite, straight into the working container's rootfs."""
    mirror = base.debian_mirror(suite=base.config.SUITE)  # one mirror serves every suite
    cmd = ["debootstrap", "--variant=minbase", recipe.suite, str(mount), mirror]
    progress(f"{recipe.name}: {' '.join(cmd)}")
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=1200)
    if res.returncode != 0:
        raise BuildError(f"{recipe.name}: debootstrap failed:\n" + "\n".join(res.stdout.splitlines()[-20:]))
    for rel in MACHINE_FILES:
        (mount / rel).unlink(missing_ok=True)
    sources = mount / "etc/apt/sources.list.d/debian.sources"
    sources.parent.mkdir(parents=True, exist_ok=True)
    sources.write_text(_debian_sources(recipe.suite))


def _config_args(cfg: dict) -> list[str]:
    """buildah config arguments for the recipe's [config] table."""
    args: list[str] = []
    if "entrypoint" in cfg:
        args += ["--entrypoint", json.dumps(cfg["entrypoint"])]
    if "cmd" in cfg:
        args += ["--cmd", json.dumps(cfg["cmd"])]
    for key, value in cfg.get("env", {}).items():
        args += ["--env", f"{key}={value}"]
    for flag, key in (("--workingdir", "workdir"), ("--user", "user"), ("--stop-signal", "stop_signal")):
        if key in cfg:
            args += [flag, str(cfg[key])]
    for port in cfg.get("ports", []):
        args += ["--port", str(port)]
    for volume in cfg.get("volumes", []):
        args += ["--volume", str(volume)]
    for key, value in cfg.get("labels", {}).items():
        args += ["--label", f"{key}={value}"]
    return args


def _check(buildah: Buildah, recipe: Recipe, ctr: str) -> str:
    """Run the recipe's check in the finished rootfs; return what its regex matched (its first group if any)."""
    out = buildah("run", ctr, "--", *recipe.check["run"], what=f"{recipe.name}: check", timeout=120)
    found = re.search(recipe.check["expect"], out, re.MULTILINE)
    if not found:
        raise BuildError(f"{recipe.name}: check `{' '.join(recipe.check['run'])}` printed {out.strip()[:300]!r}; "
                         f"expected /{recipe.check['expect']}/ (the tag would lie about the version)")
    return (found.group(1) if found.groups() else found.group(0)).strip()


def build(recipe: Recipe, digest: str, parent_entry: Path | None, cache: Path, progress) -> dict:
    """Build the recipe into its cache entry (atomic: a temp dir renamed at the end); return its metadata."""
    started = time.monotonic()
    staged = inputs.fetch(recipe, cache, progress)
    buildah = Buildah(cache / ".buildah" / recipe.name)
    buildah.recipe_file = f"lab/images/recipes/{recipe.name}/recipe.toml"
    buildah.reset()
    entry = entry_dir(cache, recipe, digest)
    tmp = entry.with_name(entry.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        name = f"lab-build-{recipe.name}"
        source = "scratch" if recipe.parent in (SCRATCH, DEBOOTSTRAP) else f"dir:{parent_entry / IMAGE_DIR}"
        ctr = buildah("from", "--name", name, source, what=f"{recipe.name}: from {source}").strip()
        mount = Path(buildah("mount", ctr, what=f"{recipe.name}: mount").strip())
        # where a build's seconds go (meta.json): each step, and the commit
        timings: dict[str, float] = {"inputs, from, mount": time.monotonic() - started}
        lap = time.monotonic()
        if recipe.parent == DEBOOTSTRAP:
            _debootstrap(recipe, mount, progress)
            timings["debootstrap"], lap = time.monotonic() - lap, time.monotonic()
        for i, step in enumerate(recipe.steps, 1):
            kind = "copy" if "copy" in step else "run"
            what = f"image {', '.join(recipe.references)} (recipe {recipe.name}): step {i}/{len(recipe.steps)} {kind}"
            if kind == "copy":
                _copy(recipe, staged, mount, step)
                timings[f"step {i} copy"], lap = time.monotonic() - lap, time.monotonic()
                continue
            argv = step["run"] if isinstance(step["run"], list) else ["/bin/sh", "-ec", step["run"]]
            first = (step["run"] if isinstance(step["run"], str) else " ".join(argv)).strip().splitlines()[0]
            progress(f"{what}: {first[:90]}")
            with flaky.apt_retries(mount), dpkg_unsafe_io(mount):
                buildah("run", *flaky.env_args(), ctr, "--", *argv, what=f"{what} `{first[:90]}`")
            timings[f"step {i} run"], lap = time.monotonic() - lap, time.monotonic()
        labels = {"org.opencontainers.image.title": recipe.repository,
                  "org.opencontainers.image.description": recipe.contains,
                  "homelab-lab.recipe": recipe.name, "homelab-lab.recipe-hash": digest}
        buildah("config", *_config_args({**recipe.config, "labels": {**labels, **recipe.config.get("labels", {})}}),
                ctr, what=f"{recipe.name}: config")
        version = _check(buildah, recipe, ctr)
        timings["config and check"], lap = time.monotonic() - lap, time.monotonic()
        progress(f"{recipe.name}: check passed ({version}); committing")
        # straight into the cache's dir: layout, gzip'd as the registry serves it: a commit into buildah's own
        # storage first would write the whole new layer once more, only for a push to read it back
        buildah("commit", "--format", "docker", "--disable-compression=false", "--rm", "--quiet", ctr,
                f"dir:{tmp / IMAGE_DIR}", what=f"{recipe.name}: commit to the cache")
        timings["commit to the cache"] = time.monotonic() - lap
        manifest = (tmp / IMAGE_DIR / "manifest.json").read_bytes()
        parsed = json.loads(manifest)
        meta = {
            "recipe": recipe.name, "hash": digest, "repository": recipe.repository, "tags": list(recipe.tags),
            "version": version, "manifest_digest": "sha256:" + hashlib.sha256(manifest).hexdigest(),
            "config_digest": parsed["config"]["digest"],
            "compressed_bytes": sum(layer["size"] for layer in parsed["layers"]),
            "layers": len(parsed["layers"]), "inputs": inputs.fetched_files(staged),
            "build_seconds": round(time.monotonic() - started, 1), "built_at": time.time(),
            "step_seconds": {what: round(seconds, 1) for what, seconds in timings.items()},
        }
        (tmp / META).write_text(json.dumps(meta, indent=2) + "\n")
        shutil.rmtree(entry, ignore_errors=True)
        tmp.rename(entry)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        buildah.reset()
    for stale in cache.glob(f"{recipe.name}-*"):
        if stale != entry and re.fullmatch(r"[0-9a-f]{16}", stale.name[len(recipe.name) + 1:]):
            shutil.rmtree(stale, ignore_errors=True)
    return meta
