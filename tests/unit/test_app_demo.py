"""The demo app on this machine: its node test suites, and the backend on a real PostgreSQL on 127.0.0.1.

PostgreSQL 15 (Debian's, scripts/install.sh) runs from a throwaway data directory, as user postgres when
the tests run as root (initdb refuses root), and is stopped by its PID. The backend runs with the
machine's node from app-demo/backend (its node_modules: scripts/install.sh).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import plain_http
import pytest
from plain_http import free_port

from lab import scenarios

pytestmark = pytest.mark.unit

APP = scenarios.ROOT / "app-demo"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def node_modules(part: str) -> Path:
    """app-demo/<part>/node_modules, or a failure saying how to get it."""
    tree = APP / part / "node_modules"
    if not tree.is_dir() or shutil.which("node") is None:
        pytest.fail(f"{tree} or node is missing: sudo scripts/install.sh installs both")
    return tree


def wait_for(predicate, timeout: float, what: str):
    """Poll until predicate() is truthy; fail naming `what` after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def answer(port: int, path: str, method: str = "GET", body: dict | None = None) -> tuple[int, object]:
    """(status, JSON body) from the backend on 127.0.0.1; (0, None) when nothing answers."""
    try:
        if method == "GET":
            status, _, raw = plain_http.get("127.0.0.1", port, path)
        else:
            status, raw = _post(port, path, body or {})
    except OSError:
        return 0, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def _post(port: int, path: str, body: dict) -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@dataclass
class Postgres:
    """A running throwaway PostgreSQL: where it listens and the password of its superuser app_demo."""

    port: int
    password: str


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    """PostgreSQL 15 on 127.0.0.1 (free port), initdb'd in a temp dir; stopped by PID and removed after."""
    if not (PG_BIN / "postgres").exists():
        pytest.fail(f"{PG_BIN}/postgres is missing: sudo scripts/install.sh installs postgresql-15")
    root = Path(tempfile.mkdtemp(prefix="app-demo-pg-"))
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    password = secrets.token_urlsafe(18)
    server = None
    try:
        (root / "pw").write_text(password)
        if as_postgres:
            shutil.chown(root, "postgres", "postgres")
            shutil.chown(root / "pw", "postgres", "postgres")
        subprocess.run([*as_postgres, str(PG_BIN / "initdb"), "-D", str(root / "data"), "-U", "app_demo",
                        "--auth=scram-sha-256", f"--pwfile={root / 'pw'}", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True, timeout=120)
        port = free_port()
        log = (root / "postgres.log").open("w")
        server = subprocess.Popen([*as_postgres, str(PG_BIN / "postgres"), "-D", str(root / "data"), "-h", "127.0.0.1",
                                   "-p", str(port), "-k", str(root), "-c", "fsync=off"],
                                  stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)],
                                        check=False).returncode == 0, 30, "PostgreSQL accepting connections")
        yield Postgres(port, password)
    finally:
        if server is not None:
            server.terminate()  # runuser forwards SIGTERM: postgres does a smart shutdown
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def backend(tmp_path) -> Iterator:
    """Start app-demo's backend (from a source dir, default the repository's) with the machine's node."""
    children: list[subprocess.Popen] = []

    def start(db: Postgres | None, source: Path = APP, db_port: int | None = None) -> tuple[int, Path]:
        src = source / "backend"
        if source != APP:  # a scenario's copy: the repository's installed packages
            (src / "node_modules").symlink_to(node_modules("backend"), target_is_directory=True)
        else:
            node_modules("backend")
        port = free_port()
        env = {**os.environ, "PORT": str(port), "PGHOST": "127.0.0.1", "PGUSER": "app_demo", "PGDATABASE": "postgres",
               "PGPORT": str(db_port or db.port), "PGPASSWORD": db.password if db else "unused-password"}
        log = tmp_path / f"backend-{len(children)}.log"
        with log.open("w") as sink:
            children.append(subprocess.Popen(["node", "src/server.js"], cwd=src, env=env, stdout=sink,
                                             stderr=subprocess.STDOUT))
        wait_for(lambda: answer(port, "/api/health")[0], 20, f"backend on :{port} listening ({log})")
        return port, log

    yield start
    for child in children:
        child.terminate()
        child.wait(timeout=10)


def healthy(port: int) -> bool:
    """True once /api/health answers 200 ok."""
    return answer(port, "/api/health") == (200, {"status": "ok", "database": "ok"})


@pytest.mark.parametrize("part", ["backend", "frontend"])
def test_the_node_test_suite_passes(part):
    """`npm test` (node --test) of the backend and the frontend: routes, migrations order, the API forwarding."""
    node_modules(part)
    done = subprocess.run(["npm", "test", "--silent"], cwd=APP / part, capture_output=True, text=True, timeout=180,
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout


def test_the_backend_migrates_once_and_keeps_rows_across_a_restart(postgres, backend):
    """Startup applies 001 and 002 and the API is healthy; rows written survive a restart, which applies nothing."""
    port, log = backend(postgres)
    wait_for(lambda: healthy(port), 30, f"/api/health 200 ({log})")
    assert "migrations applied: 001_create_items, 002_add_item_note" in log.read_text()
    status, row = answer(port, "/api/items", "POST", {"name": "disk", "note": "sda"})
    assert status == 201 and row["name"] == "disk" and row["note"] == "sda", row
    assert answer(port, "/api/items", "POST", {"note": "no name"})[0] == 400

    again, log2 = backend(postgres)
    wait_for(lambda: healthy(again), 30, f"/api/health 200 after a restart ({log2})")
    assert "migrations applied: none (schema up to date)" in log2.read_text()
    status, rows = answer(again, "/api/items")
    assert status == 200 and [(r["name"], r["note"]) for r in rows] == [("disk", "sda")]


def test_health_is_503_while_the_database_is_unreachable(backend):
    """No PostgreSQL on the port: /api/health answers 503 database unreachable (the inventory's warm-up code)."""
    port, _ = backend(None, db_port=free_port())
    wait_for(lambda: answer(port, "/api/health") == (503, {"status": "database unreachable"}), 10,
             "/api/health 503 database unreachable")


def test_a_destructive_migration_makes_health_fail_with_the_database_message(postgres, backend, tmp_path):
    """scenarios.destructive_migration_copy drops items.note: the migration runs, then /api/health answers 500."""
    port, log = backend(postgres)
    wait_for(lambda: healthy(port), 30, f"/api/health 200 ({log})")
    assert answer(port, "/api/items", "POST", {"name": "kept", "note": "dropped"})[0] == 201

    broken, log2 = backend(postgres, source=scenarios.destructive_migration_copy(tmp_path / "d"))
    _, body = wait_for(lambda: (r := answer(broken, "/api/health"))[0] == 500 and r, 30,
                            f"/api/health 500 after the destructive migration ({log2})")
    assert body == {"error": 'column "note" does not exist'}, body
    assert "migrations applied: 003_drop_item_note" in log2.read_text()


def test_the_broken_app_copy_answers_500_from_its_health_route(postgres, backend, tmp_path):
    """scenarios.broken_app_copy: a bad change that makes /api/health raise gives 500 with its message."""
    port, log = backend(postgres, source=scenarios.broken_app_copy(tmp_path / "b"))
    _, body = wait_for(lambda: (r := answer(port, "/api/health"))[0] == 500 and r, 30,
                            f"/api/health 500 ({log})")
    assert body == {"error": "health check broken by a bad change"}
