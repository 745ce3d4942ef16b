"""Property-based: the real inventories and service declarations, mutated as a hurried user would, are either
valid or refused by every entry point with one line per problem, naming the file, never a secret, never a
traceback, the cause first.

Mutations (hypothesis): a key deleted or renamed, a value retyped or swapped for text, a list, a mapping, null,
a huge number, odd unicode, another value of the file, or a secret. The entry points: `python -m plugins.inventory
check` (its main, in-process), and the suites' collection as the inventory plugin starts it (pytest_sessionstart:
load, or a one-line usage error) followed by what the health suite's collection and the deploy's start derive
from the inventory (each check's parameters, the host vars, the tfvars, the rollback set). The real pytest
collection of both suites on broken inventories is test_inventory_check.py's. Examples are derandomized: the
same ones every run, so CI never turns red by chance (PROPERTY_EXAMPLES=N: N new ones); make test-unit shows how
many ran (`--hypothesis-show-statistics`).
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugins.health.registry import CHECKS, services_of
from plugins.inventory import cli
from plugins.inventory import plugin as inventory_plugin
from plugins.inventory.catalog import CATALOG_DIR, load_catalog
from plugins.inventory.files import display
from plugins.inventory.masking import looks_secret
from plugins.shared.secret_names import names_a_secret, says_secret
from plugins.stack import ansible_inventory

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
INVENTORIES = {name: yaml.safe_load((ROOT / "inventories" / f"{name}.yml").read_text()) for name in ("lab", "homelab")}
DECLARATIONS = {path.stem: yaml.safe_load(path.read_text()) for path in sorted(CATALOG_DIR.glob("*.yml"))}
# Per test: each example loads an inventory and its catalog (tens of ms), so a test stays a few seconds. To hunt
# for more, PROPERTY_EXAMPLES=5000 runs that many, new ones each run (not derandomized).
EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "50"))
PROPERTIES = settings(max_examples=EXAMPLES, derandomize="PROPERTY_EXAMPLES" not in os.environ, database=None,
                      deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Secrets a user might paste: each has a secret's shape, so no message may show it, whatever key it lands under.
SECRETS = ("ghp_Zx8Q2mV7pL4kN9rT1wY6bC3dF5hJ0sAeUiOq", "7c1e2d3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
           "-----BEGIN OPENSSH PRIVATE KEY-----", "AKIAQ7R2XK4MZP3LW9TB", "c2VjcmV0LXZhbHVlLXRoYXQtaXMtbG9uZzEyMzQ1Njc4")
# A plain password: not shaped like a secret, so only its key (password, token, APP_KEY…) says it must stay hidden.
PASSWORD = "correct-horse-battery"

odd_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
replacement = st.one_of(
    odd_text,
    st.sampled_from(["", " ", "0200", "on", "~/key", "../..", "é", "\u202e", "a" * 300, PASSWORD]),
    st.sampled_from(SECRETS),
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10 ** 30), max_value=10 ** 30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.one_of(st.integers(), odd_text, st.none()), max_size=3),
    st.dictionaries(st.sampled_from(["x", "name", "secret", "value", "port"]), st.one_of(st.integers(), odd_text),
                    max_size=2),
)


def paths_of(document: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a document: (key,) for a mapping's key, (…, index) for a list's item."""
    found = []
    if isinstance(document, dict):
        items = document.items()
    elif isinstance(document, list):
        items = enumerate(document)
    else:
        return found
    for key, value in items:
        found.append((*prefix, key))
        found.extend(paths_of(value, (*prefix, key)))
    return found


def _parent(document: Any, path: tuple) -> Any:
    for part in path[:-1]:
        document = document[part]
    return document


@st.composite
def mutated(draw, documents: dict[str, Any]) -> tuple[str, Any, list[tuple]]:
    """(which document, the document after one to three mutations, [(operation, path, value)])."""
    name = draw(st.sampled_from(sorted(documents)))
    document = copy.deepcopy(documents[name])
    done = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = paths_of(document)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(document, path), path[-1]
        operation = draw(st.sampled_from(["delete", "rename", "replace", "swap"]))
        value = None
        if operation == "delete":
            del parent[key]
        elif operation == "rename" and isinstance(parent, dict):
            value = draw(st.one_of(st.just(f"{key}s"), st.just(str(key)[:-1]), odd_text, st.sampled_from(SECRETS)))
            if value not in parent and value != "<<":
                parent[value] = parent.pop(key)
        elif operation == "swap":
            other = draw(st.sampled_from(paths))
            value = _parent(document, other)[other[-1]]
            parent[key] = copy.deepcopy(value)
        else:
            value = draw(replacement)
            parent[key] = value
        done.append((operation, path, value))
    return name, document, done


def write_yaml(path: Path, document: Any) -> None:
    """The document as a user's YAML file (unicode as typed)."""
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")


def hidden_values(document: Any, under_secret: bool = False, environment: bool = False) -> list[str]:
    """Every text of the document no message may show: a secret's shape anywhere, the planted password under a
    secret's key (the real files' values under such keys are names: of a variable, of a vault entry); in a
    declaration's environment, KEY or PASS as a word names a secret too."""
    found = []
    if isinstance(document, dict):
        for key, value in document.items():
            secret_key = isinstance(key, str) and (says_secret(key) or (environment and names_a_secret(key)))
            found.extend(hidden_values(value, under_secret or secret_key, key == "environment"))
            if isinstance(key, str) and looks_secret(key):
                found.append(key)
    elif isinstance(document, list):
        for value in document:
            found.extend(hidden_values(value, under_secret))
    elif isinstance(document, str) and (looks_secret(document) or (under_secret and document == PASSWORD)):
        found.append(document)
    return found


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A directory for the mutated files (module-scoped: hypothesis runs many examples in one test call)."""
    return tmp_path_factory.mktemp("mutations")


@contextlib.contextmanager
def with_catalog(directory: Path | None):
    """Inventories validate against the catalog of directory (the repository's when None)."""
    if directory is None:
        yield
        return
    catalog = load_catalog(directory)
    with mock.patch("plugins.inventory.model.repository_catalog", lambda *_: catalog):
        yield


def run_check(inventory: Path) -> tuple[int, list[str]]:
    """`python -m plugins.inventory check PATH`, in-process: (exit status, stderr lines); stdout must be one ok line
    or nothing."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(["check", str(inventory)])
    assert len(out.getvalue().splitlines()) == (1 if status == 0 else 0), out.getvalue()
    return status, err.getvalue().splitlines()


def run_collection_start(inventory: Path) -> list[str]:
    """What collecting either suite does with the inventory: the plugin's session start (load or one usage-error
    line), then the health checks' parameters and the deploy's derivations. The problem lines ([] when valid)."""
    config = SimpleNamespace(stash=pytest.Stash(), rootpath=ROOT, invocation_params=SimpleNamespace(dir=ROOT),
                             getoption=lambda name, default=None: str(inventory))
    try:
        inventory_plugin.pytest_sessionstart(SimpleNamespace(config=config))
    except pytest.UsageError as error:
        return [str(error)]
    loaded = inventory_plugin.get_inventory(config)
    for check in CHECKS:
        values, ids = check.parameters(loaded.hosts)
        assert len(values) == len(ids)
    services_of(loaded.hosts)
    ansible_inventory(loaded)
    loaded.terraform_vars()
    assert not any(loaded.is_runner(host) for host in loaded.rollback_set)
    return []


def assert_diagnosis(lines: list[str], files: tuple[str, ...], document: Any, done: list[tuple]) -> None:
    """One line per problem, each naming one of the files, no secret, no traceback; a deleted section first."""
    text = "\n".join(lines)
    assert "Traceback" not in text and "internal error" not in text, text
    for line in lines:
        assert line.startswith(files), (line, files)
    for value in hidden_values(document):
        assert value not in text, (value, text)
    if len(lines) > 1 and len(done) == 1 and done[0][0] == "delete" and len(done[0][1]) <= 2 \
            and isinstance(done[0][1][-1], str):
        section = ".".join(map(str, done[0][1]))
        assert section in lines[0] or done[0][1][-1] in lines[0], (section, lines)


@PROPERTIES
@given(change=mutated(INVENTORIES))
def test_a_mutated_inventory_is_valid_or_refused_one_line_each(workdir, change):
    """check and the suites' collection start, on lab.yml or homelab.yml after one to three mutations."""
    name, document, done = change
    path = workdir / f"{name}.yml"
    write_yaml(path, document)
    status, lines = run_check(path)
    assert status in (0, 1), (status, lines)
    assert_diagnosis(lines, (f"{display(path)}: ", f"{display(CATALOG_DIR)}/"), document, done)
    collected = run_collection_start(path)
    assert len(collected) <= 1 and "\n" not in "".join(collected), collected
    assert_diagnosis(collected, (f"{display(path)}: ", f"{display(CATALOG_DIR)}/"), document, done)


@PROPERTIES
@given(change=mutated(DECLARATIONS), inventory=st.sampled_from(sorted(INVENTORIES)))
def test_a_mutated_declaration_is_valid_or_refused_one_line_each(workdir, change, inventory):
    """check and the suites' collection start, with one services/<name>.yml mutated one to three times."""
    name, document, done = change
    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        catalog = Path(shutil.copytree(CATALOG_DIR, Path(scratch) / "services"))
        write_yaml(catalog / f"{name}.yml", document)
        path = ROOT / "inventories" / f"{inventory}.yml"
        files = (f"{display(path)}: ", f"{display(catalog)}/")
        with with_catalog(catalog):
            status, lines = run_check(path)
            collected = run_collection_start(path)
        assert status in (0, 1), (status, lines)
        assert_diagnosis(lines, files, document, done)
        assert len(collected) <= 1 and "\n" not in "".join(collected), collected
        assert_diagnosis(collected, files, document, done)
