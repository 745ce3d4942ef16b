"""The hosts' dump program (ansible/roles/backup/files/homelab-dumps), run here with a stand-in `docker` on PATH:
SQLite through its online backup, a volume's files as a tar, a failed dump said in one line and never left
half-written under its name."""

from __future__ import annotations

import grp
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PROGRAM = Path(__file__).resolve().parents[2] / "ansible" / "roles" / "backup" / "files" / "homelab-dumps"
# `docker volume inspect` answers the volume's directory; `docker exec` fails as a stopped container does
FAKE_DOCKER = """#!/bin/sh
if [ "$1" = volume ]; then echo "$VOLUMES/$5"; exit 0; fi
echo "Error response from daemon: container $2 is not running" >&2
exit 1
"""


@pytest.fixture
def host(tmp_path, monkeypatch) -> Path:
    """A fake host: volumes under tmp_path/volumes, `docker` a script, dumps into tmp_path/dumps."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("VOLUMES", str(tmp_path / "volumes"))
    return tmp_path


def dump(host: Path, entries: list[dict]) -> tuple[int, dict]:
    """Run the program on these dumps; (exit code, its JSON summary)."""
    manifest = host / "dumps.json"
    group = grp.getgrgid(os.getgid()).gr_name
    manifest.write_text(json.dumps({"directory": str(host / "dumps"), "group": group, "dumps": entries}))
    done = subprocess.run([sys.executable, str(PROGRAM), "--manifest", str(manifest)], capture_output=True,
                          text=True, check=False, timeout=60)
    return done.returncode, json.loads(done.stdout)


def test_sqlite_and_files_are_copied_whole_and_readable_by_the_group_only(host):
    """Vaultwarden's SQLite copied while open for writing (the online backup), NetBox's media as a tar."""
    (host / "volumes" / "vaultwarden-data").mkdir(parents=True)
    live = sqlite3.connect(host / "volumes" / "vaultwarden-data" / "db.sqlite3")
    live.execute("CREATE TABLE users (email text)")
    live.execute("INSERT INTO users VALUES ('owner@home.arpa')")
    live.commit()
    live.execute("INSERT INTO users VALUES ('not committed')")  # an open write transaction during the dump
    (host / "volumes" / "netbox-media" / "image-attachments").mkdir(parents=True)
    (host / "volumes" / "netbox-media" / "image-attachments" / "rack.png").write_bytes(b"png")
    rc, summary = dump(host, [
        {"name": "vaultwarden", "kind": "sqlite", "container": "vaultwarden", "file": "vaultwarden-data.sqlite3",
         "volume": "vaultwarden-data", "path": "db.sqlite3"},
        {"name": "netbox", "kind": "files", "container": "netbox", "file": "netbox-media.tar.gz",
         "volume": "netbox-media", "path": ""}])
    live.close()
    assert rc == 0 and summary["ok"], summary
    copy = sqlite3.connect(host / "dumps" / "vaultwarden-data.sqlite3")
    assert copy.execute("SELECT email FROM users").fetchall() == [("owner@home.arpa",)]
    with tarfile.open(host / "dumps" / "netbox-media.tar.gz") as archive:
        assert "./image-attachments/rack.png" in archive.getnames()
    assert oct((host / "dumps" / "netbox-media.tar.gz").stat().st_mode & 0o777) == "0o640"
    assert json.loads((host / "dumps" / "status.json").read_text())["ok"]


def test_a_failed_dump_is_one_line_and_leaves_no_partial_file(host):
    """pg_dump in a stopped container: exit 1, docker's reason in one line, no file under the dump's name."""
    rc, summary = dump(host, [{"name": "app-demo-postgres", "kind": "postgres", "container": "app-demo-postgres",
                               "file": "app-demo-postgres.pgdump", "user": "app", "database": "app"}])
    assert rc == 1 and not summary["ok"]
    assert summary["dumps"][0]["error"] == ("postgres dump of app-demo-postgres failed: Error response from daemon: "
                                            "container app-demo-postgres is not running")
    assert sorted(p.name for p in (host / "dumps").iterdir()) == ["status.json"]


def test_a_service_that_has_written_nothing_yet_is_noted_not_failed(host):
    """A SQLite file not there yet (a service before its first start): a note, nothing dumped, no failure."""
    (host / "volumes" / "vaultwarden-data").mkdir(parents=True)
    rc, summary = dump(host, [{"name": "vaultwarden", "kind": "sqlite", "container": "vaultwarden",
                               "file": "vaultwarden-data.sqlite3", "volume": "vaultwarden-data", "path": "db.sqlite3"}])
    assert rc == 0 and summary["dumps"][0]["note"].startswith("no db.sqlite3 in volume vaultwarden-data yet")
