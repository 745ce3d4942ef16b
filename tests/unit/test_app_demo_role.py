"""ansible/roles/app_demo: secrets only in no_log tasks, community.docker only, rsync's excludes really exclude,
and the Dockerfiles build from the upstream node image with the npm registry given as a build argument."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from lab import npm_mirror, orchestrate, scenarios
from plugins.tools.playbooks import ROLES_DIR

pytestmark = pytest.mark.unit

ROLE = ROLES_DIR / "app_demo"
APP = scenarios.ROOT / "app-demo"
SECRET_VARS = ("app_demo_db_password",)


def tasks() -> list[dict]:
    """The role's tasks."""
    return yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())


def defaults() -> dict:
    """The role's defaults."""
    return yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def module_of(task: dict) -> str:
    """The task's module name (its one key that is a collection FQCN)."""
    return next(key for key in task if key.count(".") == 2)


def test_every_task_that_carries_the_database_password_has_no_log():
    """A task whose arguments hold a secret hides its result (only `when` may name it: it shows no value)."""
    uses = re.compile(r"\{\{[^}]*\b(" + "|".join(SECRET_VARS) + r")\b")
    carrying = [t for t in tasks() if uses.search(json.dumps(t[module_of(t)]))]
    assert {t["name"] for t in carrying} == {"Run PostgreSQL on its volume", "Run the backend"}
    assert all(t.get("no_log") is True for t in carrying), [t["name"] for t in carrying if t.get("no_log") is not True]


def test_no_secret_has_a_value_in_the_repository():
    """The password and the npm registry come from the environment (lab env / CI), never a literal default."""
    assert defaults()["app_demo_db_password"] == "{{ lookup('ansible.builtin.env', 'APP_DEMO_DB_PASSWORD') }}"
    assert defaults()["app_demo_npm_registry"] == "{{ lookup('ansible.builtin.env', 'APP_DEMO_NPM_REGISTRY') }}"


def test_the_role_deploys_with_community_docker_only():
    """Network, volume, images and containers through community.docker; no role-local module, no shell."""
    modules = [module_of(t) for t in tasks()]
    docker = {m for m in modules if "docker" in m}
    assert docker == {"community.docker.docker_network", "community.docker.docker_volume",
                      "community.docker.docker_image", "community.docker.docker_container"}
    assert not {m for m in modules if m.endswith((".command", ".shell", ".include_role"))}


def test_the_three_containers_are_those_the_lab_inventory_expects():
    """app-demo-postgres, -backend, -frontend: the names the health suite looks for on the app-demo host."""
    d = defaults()
    names = {d["app_demo_postgres_container_name"], d["app_demo_backend_container_name"], d["app_demo_container_name"]}
    lab = yaml.safe_load((scenarios.LAB_INVENTORY).read_text())
    [host] = [h for h in lab["hosts"] if "app_demo" in h["roles"]]
    assert set(host["containers"]) == names
    ports = {int(u.split(":")[2].split("/")[0]) if u.count(":") == 2 else 80 for u in (s["url"] for s in host["services"])}
    assert ports == {d["app_demo_port"], d["app_demo_backend_port"]}


def test_rsync_with_the_roles_excludes_ships_no_node_modules_git_or_dist(tmp_path):
    """Incident #10, for real: rsync with the role's rsync_opts copies the app but none of the excluded trees."""
    source = scenarios.app_copy(tmp_path / "src")
    for tree in ("backend/node_modules/left-pad", "frontend/node_modules/react", "frontend/dist", ".git"):
        (source / tree).mkdir(parents=True)
        (source / tree / "shipped-by-mistake.txt").write_text("must never reach the host\n")
    [sync] = [t for t in tasks() if "ansible.posix.synchronize" in t]
    assert sync["ansible.posix.synchronize"]["rsync_opts"].startswith("{{ app_demo_sync_excludes | map")
    opts = [f"--exclude={name}" for name in defaults()["app_demo_sync_excludes"]]
    dest = tmp_path / "dest"
    subprocess.run(["rsync", "-a", "--delete", *opts, f"{source}/", f"{dest}/"], check=True, timeout=60)
    assert not list(dest.rglob("shipped-by-mistake.txt"))
    assert (dest / "backend" / "package-lock.json").exists() and (dest / "frontend" / "src" / "App.jsx").exists()
    assert not list(dest.rglob("node_modules")) and not (dest / ".git").exists()


@pytest.mark.parametrize("part", ["backend", "frontend"])
def test_the_dockerfile_builds_from_node_24_with_npm_ci_against_the_given_registry(part):
    """FROM the upstream node:24-bookworm-slim; `npm ci --registry "$NPM_REGISTRY"`; no registry written in."""
    text = (APP / part / "Dockerfile").read_text()
    assert {line.split()[1] for line in text.splitlines() if line.startswith("FROM ")} == {defaults()["app_demo_node_image"]}
    assert re.search(r'npm ci .*--registry "\$NPM_REGISTRY"', text)
    assert "ARG NPM_REGISTRY\n" in text and "registry.npmjs.org" not in text
    ignored = (APP / part / ".dockerignore").read_text().split()
    assert "node_modules" in ignored


@pytest.mark.parametrize("part", ["backend", "frontend"])
def test_the_lockfile_is_committed_and_seeds_the_lab_mirror(part):
    """package.json + package-lock.json of each part: the lab's npm mirror seeds from exactly these."""
    lockfile = APP / part / "package-lock.json"
    assert lockfile in npm_mirror.seed_lockfiles()
    lock = json.loads(lockfile.read_text())
    manifest = json.loads((APP / part / "package.json").read_text())
    assert lock["packages"][""]["dependencies"] == manifest.get("dependencies", {})
    versions = {**manifest.get("dependencies", {}), **manifest.get("devDependencies", {})}
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in versions.values()), f"{part}: pin exact versions: {versions}"


def test_the_lab_exports_the_npm_mirror_and_the_generated_password():
    """`lab env` (suite_env) gives the role both variables; the password is the one `lab up` generated."""
    status = {"token_secret": "t" * 20, "npm_mirror": {"url": "http://198.18.0.1:4873/"},
              "service_secrets": {"APP_DEMO_DB_PASSWORD": "generated-value-123"}}
    env = orchestrate.suite_env(status)
    assert env["APP_DEMO_NPM_REGISTRY"] == "http://198.18.0.1:4873/"
    assert env["APP_DEMO_DB_PASSWORD"] == "generated-value-123"


def test_service_secrets_are_generated_once_and_private(tmp_path):
    """lab.service_secrets: a random password at the first `lab up`, the same afterwards, file mode 0600."""
    from lab import config, service_secrets

    paths = config.LabPaths(lab_dir=tmp_path / "lab", cache_dir=tmp_path / "cache")
    first = service_secrets.ensure(paths)
    assert len(first["APP_DEMO_DB_PASSWORD"]) >= 24
    assert service_secrets.ensure(paths) == first == service_secrets.load(paths)
    assert service_secrets.secrets_file(paths).stat().st_mode & 0o777 == 0o600
    other = config.LabPaths(lab_dir=tmp_path / "other", cache_dir=tmp_path / "cache")
    assert service_secrets.ensure(other) != first
    shutil.rmtree(tmp_path / "other")
