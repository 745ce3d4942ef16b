"""ansible/roles/app_demo: secrets only in no_log tasks, community.docker only, rsync's excludes really exclude,
and the Dockerfiles build from the upstream node image with the npm registry given as a build argument."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from lab import npm_mirror, orchestrate, scenarios
from plugins.inventory import load_inventory
from plugins.stack import ansible_inventory
from plugins.tools.playbooks import ROLES_DIR

pytestmark = pytest.mark.unit

ROLE = ROLES_DIR / "app_demo"
APP = scenarios.ROOT / "app-demo"


def tasks() -> list[dict]:
    """The role's tasks."""
    return yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())


def defaults() -> dict:
    """The role's defaults."""
    return yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def module_of(task: dict) -> str:
    """The task's module name (its one key that is a collection FQCN)."""
    return next(key for key in task if key.count(".") == 2)


def lab_app_host() -> dict:
    """The lab's app-demo host vars, as plugins/inventory derives them from services/app-demo-*.yml."""
    return ansible_inventory(load_inventory(scenarios.LAB_INVENTORY))["all"]["hosts"]["app-demo"]


def test_the_role_carries_no_secret_the_stack_role_hides_it():
    """The password reaches the containers through the stack role only (its run task is no_log when a service has
    a secret); the app_demo role's own tasks and defaults never name a secret."""
    text = json.dumps(tasks()) + json.dumps(defaults())
    assert "password" not in text.lower() and "PGPASSWORD" not in text
    [run] = [t for t in yaml.safe_load((ROLES_DIR / "stack" / "tasks" / "main.yml").read_text())
             if "community.docker.docker_container" in t and t["name"] == "Run the services' containers"]
    assert run["no_log"] == "{{ item.secret_env | length > 0 }}"
    backend = next(s for s in lab_app_host()["stack_services"] if s["name"] == "app-demo-backend")
    assert backend["secret_env"] == [{"name": "PGPASSWORD", "env": "APP_DEMO_DB_PASSWORD"}]


def test_the_npm_registry_comes_from_the_environment():
    """The npm registry comes from the environment (lab env / CI), never a literal default."""
    assert defaults()["app_demo_npm_registry"] == "{{ lookup('ansible.builtin.env', 'APP_DEMO_NPM_REGISTRY') }}"


def test_the_role_deploys_with_community_docker_and_the_stack_role_only():
    """Images through community.docker, containers through the stack role; no role-local module, no shell."""
    modules = [module_of(t) for t in tasks()]
    assert {m for m in modules if "docker" in m} == {"community.docker.docker_image"}
    included = [t["ansible.builtin.include_role"]["name"] for t in tasks() if "ansible.builtin.include_role" in t]
    assert included == ["stack", "stack"]
    assert not {m for m in modules if m.endswith((".command", ".shell"))}


def test_the_role_builds_and_runs_what_the_declarations_say():
    """The lab host's services are the app's three declarations (then every host's node exporter and log
    shipper); the two the role builds name a context with a Dockerfile; the role runs them after their
    database, whose image is pulled."""
    services = lab_app_host()["stack_services"]
    assert [s["name"] for s in services] == ["app-demo-postgres", "app-demo-backend", "app-demo-frontend",
                                             "node-exporter", "promtail"]
    built = [s for s in services if s["built_by"] == "app_demo"]
    assert [s["build_context"] for s in built] == ["backend", "frontend"]
    assert all((APP / s["build_context"] / "Dockerfile").is_file() for s in built)
    assert [s["pull"] for s in services] == [True, False, False, True, True]


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
    """FROM the build argument NODE_IMAGE (default: the role's node image); `npm ci --registry "$NPM_REGISTRY"`;
    no registry written in."""
    text = (APP / part / "Dockerfile").read_text()
    assert {line.split()[1] for line in text.splitlines() if line.startswith("FROM ")} == {"${NODE_IMAGE}"}
    assert f"ARG NODE_IMAGE={defaults()['app_demo_node_image']}\n" in text
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


def test_the_lab_exports_the_npm_mirror_and_the_generated_password(tmp_path, monkeypatch):
    """`lab env` (suite_env) gives the role its registry and the password `lab up` generated: random, kept
    across calls, in a 0600 file."""
    from lab import config, stack_files

    paths = config.LabPaths(lab_dir=tmp_path / "lab", cache_dir=tmp_path / "cache")
    monkeypatch.setattr(orchestrate, "PATHS", paths)
    status = {"token_secret": "t" * 20, "npm_mirror": {"url": "http://198.18.0.1:4873/"}}
    env = orchestrate.suite_env(status)
    assert env["APP_DEMO_NPM_REGISTRY"] == "http://198.18.0.1:4873/"
    assert len(env["APP_DEMO_DB_PASSWORD"]) >= 24
    assert orchestrate.suite_env(status)["APP_DEMO_DB_PASSWORD"] == env["APP_DEMO_DB_PASSWORD"]
    assert stack_files.secrets_file(paths).stat().st_mode & 0o777 == 0o600
