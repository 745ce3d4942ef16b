"""The restore drill's pieces without the lab: the whole drill against the in-process PVE emulator (files in memory
stand for the markers, the backup is its vzdump, converge and health are fakes), which hosts are drilled, the
markers' commands, and `make restore-db`'s refusals and steps (restic, SSH and the health checks faked)."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_backup_restore import APP, LAB, LAB_PATH, SECRETS, UTILITIES, Node, Recorder

from plugins.backup import cli, drill, restore_db
from plugins.backup.markers import DatabaseMarker, MarkerProblem, marker_name, markers_of, sql_command
from plugins.backup.restore import restore_host
from plugins.proxmox import backups as node_backups
from plugins.stack.backup_dumps import dumps

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def node(tmp_path, monkeypatch) -> Node:
    monkeypatch.setenv("HOMELAB_SUITE_STATE_DIR", str(tmp_path / "state"))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return Node(tmp_path)


class FileMarker:
    """A marker kept as a file in the in-memory CT: vzdump archives it, a destroy loses it, a restore brings it."""

    def __init__(self, node: Node, vmid: int):
        self.node, self.vmid, self.where = node, vmid, f"CT {vmid}: /srv"

    def write(self, name: str) -> None:
        self.node.files(self.vmid)[f"/srv/{name}"] = name

    def present(self, name: str) -> bool:
        return f"/srv/{name}" in self.node.files(self.vmid)

    def remove(self, name: str) -> None:
        self.node.files(self.vmid).pop(f"/srv/{name}", None)


def vzdump_only(node: Node):
    """make backup's run, reduced to its vzdump (no SSH dumps, no restic here)."""
    def backup(inventory, client, *, hosts, say):
        for name in hosts:
            host = inventory.host(name)
            node_backups.vzdump(client, host.node, host.vmid, storage="backup", mode="snapshot", prune_backups="keep-all=1")
            say(f"{name} ok vzdump")
        return 0
    return backup


def test_the_drill_brings_the_lost_host_back_to_its_recovery_point(node):
    """Marker, backup, marker, the CT and its snapshots destroyed, restore: the first marker back, the second gone,
    a recovery time and point, the node's job written again, the other host untouched."""
    node.client.snapshot("homelab", APP.vmid, "before-drill")
    steps = Recorder()
    said: list[str] = []
    result = drill.run_drill(LAB, node.client, APP, [FileMarker(node, APP.vmid)], say=said.append,
                             backup=vzdump_only(node),
                             restore=functools.partial(restore_host, converge_host=steps.converge,
                                                       check_host=steps.health))
    assert not result.failure, said
    assert result.back == {f"CT {APP.vmid}: /srv": True} and result.kept_second == {f"CT {APP.vmid}: /srv": False}
    assert result.recovery_time is not None and result.recovery_time >= 0
    assert result.backup_taken is not None and "before the loss" in result.recovery_point
    assert node.client.snapshots("homelab", APP.vmid) == [], "the lost CT's snapshots came back"
    assert steps.calls == ["converge app-demo", "health app-demo"]
    assert any(line.startswith("backup job homelab-suite: ") for line in said), said
    assert said[-1].startswith("app-demo: recovery time ") and "back 1/1" in said[-1] and "gone 1/1" in said[-1]
    assert node.files(UTILITIES.vmid)["/srv/marker"] == "first" and node.status(UTILITIES.vmid) == "running"


def test_a_drill_whose_restore_fails_says_so_in_one_line(node):
    """A restore that fails is the drill's failure, said, not raised."""
    result = drill.run_drill(LAB, node.client, APP, [FileMarker(node, APP.vmid)], say=lambda line: None,
                             backup=vzdump_only(node), restore=lambda *args, **kwargs: 1)
    assert result.failure == "make restore HOST=app-demo failed (its lines above)"
    assert result.summary() == "app-demo: drill FAILED: make restore HOST=app-demo failed (its lines above)"


def test_the_loss_destroys_the_ct_with_purge_and_unreferenced_disks(node, monkeypatch):
    """PVE's DELETE with purge and destroy-unreferenced-disks, after a stop; the CT is gone."""
    asked = []
    original = node.client._call

    def spy(action, request):
        class Api:  # records the DELETE's parameters, then lets the emulator answer it
            def __getattr__(self, name):
                return self

            def __call__(self, *args, **kwargs):
                return self

            def delete(self, **params):
                asked.append(params)
                return original(action, request)
        return request(Api()) if action.startswith("destroy CT") else original(action, request)

    monkeypatch.setattr(node.client, "_call", spy)
    drill.lose_host(node.client, APP)
    assert asked == [{"purge": 1, "destroy-unreferenced-disks": 1}]
    assert APP.vmid not in node.client.containers("homelab")


def test_every_host_with_data_but_the_runner_is_drilled_by_default():
    """utilities, monitoring and app-demo hold data; the proxy holds none; ci-runner is the runner."""
    assert [h.hostname for h in drill.drilled_hosts(LAB)] == ["utilities", "monitoring", "app-demo"]
    assert [h.hostname for h in drill.drilled_hosts(LAB, ["app-demo"])] == [APP.hostname]


@pytest.mark.parametrize(("name", "expected"), [
    ("nosuch", "--dr-hosts nosuch: no such host in "),
    ("ci-runner", "--dr-hosts ci-runner: refused: ci-runner is the runner the suite runs on"),
])
def test_a_host_that_cannot_be_drilled_is_refused_in_one_line(name, expected):
    """An unknown host and the runner: one line each."""
    with pytest.raises(drill.DrillRefused) as refused:
        drill.drilled_hosts(LAB, [name])
    assert str(refused.value).startswith(expected) and "\n" not in str(refused.value)


def test_the_suite_refuses_an_unknown_host_before_it_collects_anything():
    """`pytest suites/dr --dr-hosts nosuch`: a usage error naming the host, no test run."""
    done = subprocess.run([sys.executable, "-m", "pytest", "suites/dr", "--inventory", str(LAB_PATH),
                           "--dr-hosts", "nosuch", "--collect-only", "-q"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "--dr-hosts nosuch: no such host in " in done.stderr and "Traceback" not in done.stderr


def test_marker_names_are_the_drills_own():
    """Only lowercase letters, digits and dashes reach SQL or NetBox."""
    assert marker_name(drill.new_marker("before")).startswith("dr-before-")
    with pytest.raises(ValueError, match="expected lowercase letters"):
        marker_name("x'); DROP TABLE items; --")


def test_the_sql_runs_inside_the_databases_own_container():
    """PostgreSQL through psql as the dump's user; MariaDB with the container's own root password, never ours."""
    postgres = next(e for e in dumps(LAB, APP) if e["kind"] == "postgres")
    mariadb = next(e for e in dumps(LAB, UTILITIES) if e["kind"] == "mariadb")
    assert sql_command(postgres, "SELECT 1;").startswith(f"sudo -n docker exec {postgres['container']} psql ")
    command = sql_command(mariadb, "SELECT 1;")
    assert "'MYSQL_PWD=\"$MARIADB_ROOT_PASSWORD\"" in command and command.endswith(f"'SELECT 1;' {mariadb['database']}")


class FakePool:
    """SSH: the first call finds the master dead (the CT was lost), the retry answers."""

    def __init__(self, answers):
        self.answers, self.commands, self.resets = list(answers), [], []

    def run(self, name, command, timeout=60):
        self.commands.append(command)
        return self.answers.pop(0)

    def reset(self, name):
        self.resets.append(name)


def test_a_database_marker_reconnects_to_the_restored_host():
    """A dead master (255) is reset once; a failed query is one line naming the host and database."""
    entry = next(e for e in dumps(LAB, APP) if e["kind"] == "postgres")
    ok = subprocess.CompletedProcess("", 0, "1\n", "")
    pool = FakePool([subprocess.CompletedProcess("", 255, "", "broken pipe"), ok, ok])
    assert DatabaseMarker(pool, APP, entry).present("dr-before-1") and pool.resets == ["app-demo"]
    failing = FakePool([subprocess.CompletedProcess("", 1, "", "ERROR:  relation does not exist\n")])
    with pytest.raises(MarkerProblem, match=r"^app-demo: app-demo-postgres \(\w+\): ERROR:  relation"):
        DatabaseMarker(failing, APP, entry).write("dr-before-1")


def test_netbox_markers_need_the_api_token_and_never_say_it():
    """utilities runs NetBox: without its token in the environment, one line naming the variable."""
    with pytest.raises(MarkerProblem) as missing:
        markers_of(LAB, UTILITIES, FakePool([]), {})
    assert "NETBOX_API_TOKEN" in str(missing.value)
    found = markers_of(LAB, UTILITIES, FakePool([]), {"NETBOX_API_TOKEN": "t0ken-never-shown"})
    assert [type(m).__name__ for m in found].count("NetboxMarker") == 1
    assert all("t0ken-never-shown" not in m.where for m in found)


# make restore-db


def refused_db(capsys, *args: str, inventory: Path = LAB_PATH) -> str:
    assert cli.main(["restore-db", "--inventory", str(inventory), *args]) == 2
    out, err = capsys.readouterr()
    text = out + err
    assert text.count("\n") == 1 and "Traceback" not in text, text
    return text.strip()


def test_restore_db_refuses_bad_input_in_one_line(capsys, monkeypatch, tmp_path):
    """An unknown host, a host without databases, an unknown database, a missing restic secret: one line each,
    exit 2, no secret, nothing fetched or loaded."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(restore_db, "fetch_dump", lambda *a: pytest.fail("fetched after a refusal"))
    assert refused_db(capsys, "--host", "nosuch", "--database", "x").startswith("HOST=nosuch: no such host in ")
    assert refused_db(capsys, "--host", "proxy", "--database", "x").startswith(
        "HOST=proxy: the backup policy dumps no database of it")
    text = refused_db(capsys, "--host", "app-demo", "--database", "nosuch")
    assert text.startswith("DATABASE=nosuch: no such database dumped on app-demo (expected one of: ")
    monkeypatch.delenv("RESTIC_PASSWORD")
    text = refused_db(capsys, "--host", "app-demo", "--database", "app-demo-postgres")
    assert "RESTIC_PASSWORD" in text and all(value not in text for value in SECRETS.values())
    document = yaml.safe_load(LAB_PATH.read_text())
    del document["backup"]
    bare = tmp_path / "bare.yml"
    bare.write_text(yaml.safe_dump(document, sort_keys=False))
    assert "no backup policy" in refused_db(capsys, "--host", "app-demo", "--database", "x", inventory=bare)


class FakeRepository:
    """restic faked: two snapshots of app-demo, the newest holding the dump."""

    repository = "s3:http://127.0.0.1:9000/homelab-backup"

    def __init__(self, entry):
        self.entry, self.restored = entry, []

    def reachable(self):
        return None

    def snapshots(self, host=None):
        return [{"id": "b" * 64, "short_id": "bbbbbbbb", "time": "2026-12-07T02:10:00.1+00:00"},
                {"id": "a" * 64, "short_id": "aaaaaaaa", "time": "2026-12-07T01:10:00.1+00:00"}]

    def dumps(self, host=None):
        return sorted(self.snapshots(host), key=lambda snapshot: snapshot["time"])

    def restore(self, snapshot, target, host=None, include=None):
        self.restored.append((snapshot, include))
        path = target / "state" / "backups" / "lab" / "app-demo" / include
        path.parent.mkdir(parents=True)
        path.write_bytes(b"PGDMP")


def test_restore_db_fetches_the_newest_offsite_dump_loads_it_and_checks_the_host(monkeypatch):
    """choose → fetch (the newest snapshot, the dump alone) → load (into the running container) → health."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    entry = next(e for e in dumps(LAB, APP) if e["kind"] == "postgres")
    repo = FakeRepository(entry)
    monkeypatch.setattr(restore_db, "repository", lambda inventory, environment: repo)
    loaded, said = [], []
    rc = restore_db.restore_database(LAB, "app-demo", entry["database"], say=said.append,
                                     load=lambda inv, host, e, dump: loaded.append((host.hostname, dump.read_bytes())),
                                     check_host=lambda inv, host: "9 checks passed, 3 services answered")
    assert rc == 0, said
    assert repo.restored == [("b" * 64, entry["file"])]
    assert loaded == [("app-demo", b"PGDMP")]
    assert [line.split()[0] for line in said[:-1]] == ["choose", "fetch", "load", "health"]
    assert said[-1].startswith(f"{entry['database']} on app-demo restored from the off-site copy and healthy in ")
    assert said[-1].endswith("(recovery point 2026-12-07 02:10:00)")


def test_restore_db_loads_postgres_in_one_transaction():
    """pg_restore --single-transaction --clean: a dump that fails to load leaves the database as it was."""
    entry = next(e for e in dumps(LAB, APP) if e["kind"] == "postgres")
    command = restore_db.load_command(entry)
    assert "pg_restore --single-transaction --clean --if-exists" in command and entry["container"] in command


def test_the_drill_runs_only_when_named():
    """`pytest suites` leaves the destructive drill out; `pytest suites/dr` collects it."""
    def collected(path: str) -> str:
        return subprocess.run([sys.executable, "-m", "pytest", path, "--inventory", str(LAB_PATH), "--collect-only",
                               "-q"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False).stdout
    assert "suites/dr/" not in collected("suites")
    assert "suites/dr/test_drill.py::test_the_lost_host_comes_back_to_its_recovery_point[app-demo]" in collected(
        "suites/dr")
