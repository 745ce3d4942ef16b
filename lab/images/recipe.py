"""Image recipes as data: lab/images/recipes/<name>/recipe.toml, loaded, validated and hashed.

A recipe says which upstream reference it provides (repository + tags), what it is built from
(`scratch`, `debootstrap` of a Debian suite, or another recipe), what it fetches on the machine
(pinned wheels from PyPI, .debs from apt), the steps that assemble it, its image config, and a
check whose output must prove the version the tag claims.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
RECIPE_FILE = "recipe.toml"
# Bumped when the builder assembles the same recipe differently: every image then rebuilds.
BUILDER_VERSION = "lab-images-1"

SCRATCH, DEBOOTSTRAP = "scratch", "debootstrap"
TOP_KEYS = {"repository", "tags", "from", "suite", "software", "version", "real", "contains",
            "inputs", "steps", "config", "check"}
INPUT_KEYS = {"wheels", "debs", "python", "glibc", "pip", "pip_sdists"}
CONFIG_KEYS = {"entrypoint", "cmd", "env", "workdir", "user", "ports", "volumes", "stop_signal", "labels"}
STEP_KINDS = {"copy": {"copy", "to", "mode"}, "run": {"run"}}
SUITES = ("bookworm", "trixie")
REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)+$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
WHEEL_PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9][A-Za-z0-9.+!_-]*$")
DEB_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?$")


class RecipeError(ValueError):
    """A recipe is malformed (the message names the file, the key and what was expected)."""


@dataclass(frozen=True)
class Recipe:
    """One image recipe (see the module docstring for its fields)."""

    name: str
    directory: Path
    repository: str
    tags: tuple[str, ...]
    parent: str
    suite: str
    software: str
    version: str
    real: bool
    contains: str
    wheels: tuple[str, ...] = ()
    debs: tuple[str, ...] = ()
    # a Python application's packages, for the image's own Python: wheels with their dependencies, and the
    # sdists the image builds (inputs.py fetches them on the machine; `input:pip` holds them all)
    python: str = ""
    glibc: str = ""
    pip: tuple[str, ...] = ()
    pip_sdists: tuple[str, ...] = ()
    steps: tuple[dict, ...] = ()
    config: dict = field(default_factory=dict)
    check: dict = field(default_factory=dict)

    @property
    def file(self) -> Path:
        """Its recipe.toml."""
        return self.directory / RECIPE_FILE

    @property
    def references(self) -> list[str]:
        """The upstream references it provides, as a Docker Hub user writes them (`traefik:v3.7`)."""
        short = self.repository.removeprefix("library/")
        return [f"{short}:{tag}" for tag in self.tags]

    def files(self) -> list[Path]:
        """Every file of its directory, sorted (all of them count in its hash)."""
        return sorted(p for p in self.directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def _fail(file: Path, what: str) -> RecipeError:
    return RecipeError(f"{file}: {what}")


def _strings(file: Path, key: str, value, pattern: re.Pattern | None = None, empty: bool = True) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or (not value and not empty):
        raise _fail(file, f"{key} must be a {'non-empty ' if not empty else ''}list of strings, got {value!r}")
    for v in value:
        if pattern and not pattern.match(v):
            raise _fail(file, f"{key}: {v!r} does not match {pattern.pattern}")
    return tuple(value)


def _steps(file: Path, steps) -> tuple[dict, ...]:
    if not isinstance(steps, list):
        raise _fail(file, f"steps must be a list of tables ([[steps]]), got {steps!r}")
    for i, step in enumerate(steps):
        kind = next((k for k in STEP_KINDS if isinstance(step, dict) and k in step), None)
        if kind is None:
            raise _fail(file, f"steps[{i}]: expected one of {sorted(STEP_KINDS)}, got {step!r}")
        extra = set(step) - STEP_KINDS[kind]
        if extra:
            raise _fail(file, f"steps[{i}] ({kind}): unknown key(s) {sorted(extra)}")
        if kind == "copy" and not (isinstance(step.get("to"), str) and step["to"].startswith("/")):
            raise _fail(file, f"steps[{i}] (copy): `to` must be an absolute path in the image")
        if kind == "copy" and "mode" in step and not re.fullmatch(r"0[0-7]{3,4}", str(step["mode"])):
            raise _fail(file, f"steps[{i}] (copy): mode must be an octal string like \"0755\"")
        if kind == "run" and not (isinstance(step["run"], str) or (
                isinstance(step["run"], list) and step["run"] and all(isinstance(a, str) for a in step["run"]))):
            raise _fail(file, f"steps[{i}] (run): a shell script string or an argv list")
    return tuple(steps)


def load(directory: Path) -> Recipe:
    """Load and validate one recipe directory."""
    file = directory / RECIPE_FILE
    try:
        data = tomllib.loads(file.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise _fail(file, f"cannot read: {exc}") from exc
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise _fail(file, f"unknown key(s) {sorted(unknown)}; expected some of {sorted(TOP_KEYS)}")
    for key in ("repository", "tags", "from", "software", "version", "contains"):
        if key not in data:
            raise _fail(file, f"missing key {key!r}")
    if not isinstance(data["repository"], str) or not REPOSITORY.match(data["repository"]):
        raise _fail(file, f"repository {data['repository']!r}: expected NAMESPACE/NAME (library/traefik)")
    parent = data["from"]
    suite = data.get("suite", "")
    if parent == DEBOOTSTRAP and suite not in SUITES:
        raise _fail(file, f"suite {suite!r}: a debootstrap recipe needs one of {list(SUITES)}")
    if parent != DEBOOTSTRAP and suite:
        raise _fail(file, "suite is only for `from = \"debootstrap\"` (the parent recipe decides the suite)")
    inputs = data.get("inputs", {})
    if set(inputs) - INPUT_KEYS:
        raise _fail(file, f"inputs: unknown key(s) {sorted(set(inputs) - INPUT_KEYS)}; expected {sorted(INPUT_KEYS)}")
    if (inputs.get("pip") or inputs.get("pip_sdists")) and not (
            re.fullmatch(r"3\.\d+", str(inputs.get("python", ""))) and re.fullmatch(r"2\.\d+", str(inputs.get("glibc", "")))):
        raise _fail(file, "inputs: pip needs python (the image's, like \"3.13\") and glibc (its C library, like \"2.41\")")
    cfg = data.get("config", {})
    if not isinstance(cfg, dict) or set(cfg) - CONFIG_KEYS:
        raise _fail(file, f"config: unknown key(s) {sorted(set(cfg) - CONFIG_KEYS)}; expected some of {sorted(CONFIG_KEYS)}")
    check = data.get("check", {})
    if set(check) != {"run", "expect"}:
        raise _fail(file, "check: needs `run` (argv list) and `expect` (a regex its output must match)")
    _strings(file, "check.run", check["run"], empty=False)
    try:
        re.compile(check["expect"])
    except (re.error, TypeError) as exc:
        raise _fail(file, f"check.expect is not a regex: {exc}") from exc
    return Recipe(
        name=directory.name, directory=directory, repository=data["repository"],
        tags=_strings(file, "tags", data["tags"], TAG, empty=False), parent=parent, suite=suite,
        software=str(data["software"]), version=str(data["version"]), real=bool(data.get("real", True)),
        contains=str(data["contains"]),
        wheels=_strings(file, "inputs.wheels", inputs.get("wheels", []), WHEEL_PIN),
        debs=_strings(file, "inputs.debs", inputs.get("debs", []), DEB_NAME),
        python=str(inputs.get("python", "")), glibc=str(inputs.get("glibc", "")),
        pip=_strings(file, "inputs.pip", inputs.get("pip", []), WHEEL_PIN),
        pip_sdists=_strings(file, "inputs.pip_sdists", inputs.get("pip_sdists", []), WHEEL_PIN),
        steps=_steps(file, data.get("steps", [])), config=cfg, check=check,
    )


def load_all(root: Path = RECIPES_DIR) -> dict[str, Recipe]:
    """Every recipe under root, parents before children (build order)."""
    recipes = {d.name: load(d) for d in sorted(root.iterdir()) if (d / RECIPE_FILE).is_file()}
    refs: dict[str, str] = {}
    for r in recipes.values():
        if r.parent not in (SCRATCH, DEBOOTSTRAP) and r.parent not in recipes:
            raise _fail(r.file, f"from = {r.parent!r}: no such recipe; expected scratch, debootstrap "
                                f"or one of {sorted(recipes)}")
        for ref in r.references:
            if ref in refs:
                raise _fail(r.file, f"{ref} is also provided by recipe {refs[ref]!r}")
            refs[ref] = r.name
    ordered: dict[str, Recipe] = {}

    def visit(name: str, seen: tuple[str, ...]) -> None:
        if name in seen:
            raise _fail(recipes[name].file, f"from-cycle: {' -> '.join((*seen, name))}")
        if name in ordered:
            return
        parent = recipes[name].parent
        if parent in recipes:
            visit(parent, (*seen, name))
        ordered[name] = recipes[name]

    for name in recipes:
        visit(name, ())
    return ordered


def suite_of(recipe: Recipe, recipes: dict[str, Recipe]) -> str:
    """The Debian suite the image is based on ("" for scratch)."""
    while recipe.parent not in (SCRATCH, DEBOOTSTRAP):
        recipe = recipes[recipe.parent]
    return recipe.suite


def recipe_hash(recipe: Recipe, recipes: dict[str, Recipe], _memo: dict[str, str] | None = None) -> str:
    """sha256 of the builder version, the parent's hash and every file of the recipe (path and bytes)."""
    memo = {} if _memo is None else _memo
    if recipe.name in memo:
        return memo[recipe.name]
    h = hashlib.sha256(f"{BUILDER_VERSION}\0".encode())
    parent = recipe.parent
    h.update((recipe_hash(recipes[parent], recipes, memo) if parent in recipes else parent).encode() + b"\0")
    for path in recipe.files():
        h.update(path.relative_to(recipe.directory).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    memo[recipe.name] = h.hexdigest()
    return memo[recipe.name]


def all_hashes(recipes: dict[str, Recipe]) -> dict[str, str]:
    """Hash of every recipe (parents computed once)."""
    memo: dict[str, str] = {}
    return {name: recipe_hash(r, recipes, memo) for name, r in recipes.items()}
