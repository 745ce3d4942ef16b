"""plugins/health/table.py: the host × check table and its Allure attachment; plugins/ssh/pool.py config text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugins.health.table import cell_text, render, table_rows, write_allure_summary
from plugins.ssh import pool as ssh_pool
from plugins.ssh.pool import SshTarget, auth_methods_in, last_error, ssh_config_text

pytestmark = pytest.mark.unit


def test_cells_fold_several_subjects():
    assert cell_text([]) == "-"
    assert cell_text(["pass"]) == "pass"
    assert cell_text(["fail"]) == "FAIL"
    assert cell_text(["pass", "fail", "pass"]) == "FAIL 1/3"
    assert cell_text(["pass", "skip"]) == "pass*"
    assert cell_text(["skip", "skip"]) == "skip"


def test_table_has_a_row_per_host_and_a_column_per_check():
    cells = {
        ("proxy", "ssh"): {"a": "pass"}, ("proxy", "rsync"): {"b": "fail"},
        ("app-demo", "ssh"): {"c": "skip"}, ("app-demo", "containers"): {"d": "pass", "e": "fail"},
    }
    columns, rows = table_rows(cells)
    assert columns == ["host", "ssh", "rsync", "containers"]
    assert rows == [["proxy", "pass", "FAIL", "-"], ["app-demo", "skip", "-", "FAIL 1/2"]]
    text = render(columns, rows).splitlines()
    assert text[0].split() == columns and set(text[1]) <= {"-", " "}


def test_allure_summary_is_a_result_with_the_table_attached(tmp_path: Path):
    write_allure_summary(tmp_path, ["host", "rsync"], [["app-demo", "FAIL"]], started=0.0)
    (result_file,) = tmp_path.glob("*-result.json")
    result = json.loads(result_file.read_text())
    assert result["status"] == "failed" and result["name"].startswith("health summary")
    sources = [a["source"] for a in result["attachments"]]
    assert all((tmp_path / source).exists() for source in sources)
    assert "app-demo" in (tmp_path / sources[0]).read_text()


def test_ssh_config_reuses_masters_with_the_cheap_kex_and_a_known_hosts_file(tmp_path: Path):
    text = ssh_config_text([SshTarget("app-demo", "198.18.0.250", "deploy", "/keys/deploy_ed25519")],
                           tmp_path, tmp_path / "known_hosts")
    for line in ("Host app-demo", "HostName 198.18.0.250", "User deploy", "KexAlgorithms curve25519-sha256",
                 "ControlMaster auto", f"ControlPath {tmp_path}/%n", "StrictHostKeyChecking accept-new",
                 f"UserKnownHostsFile {tmp_path / 'known_hosts'}", "BatchMode yes"):
        assert line in text
    assert "StrictHostKeyChecking no" not in text


def test_ssh_output_is_read_for_methods_and_errors():
    log = "debug1: Authentications that can continue: publickey,password\ndebug1: Next authentication method"
    assert auth_methods_in(log) == ("publickey", "password")
    assert auth_methods_in("deploy@198.18.0.250: Permission denied (publickey).") == ("publickey",)
    assert last_error("debug1: x\nssh: connect to host 198.18.0.250 port 22: Connection refused\n") == \
        "ssh: connect to host 198.18.0.250 port 22: Connection refused"


def test_a_first_command_that_hangs_fails_the_open_naming_the_time_it_was_given(tmp_path: Path, monkeypatch):
    fake = tmp_path / "bin" / "ssh"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexec sleep 30\n")  # an ssh whose first session never ends
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    monkeypatch.setattr(ssh_pool, "CONNECT_TIMEOUT", 0.1)
    monkeypatch.setattr(ssh_pool, "FIRST_COMMAND_TIMEOUT", 0.2)
    pool = ssh_pool.SshPool([SshTarget("app-demo", "198.18.0.250", "deploy", "/keys/deploy_ed25519")],
                       known_hosts=tmp_path / "known_hosts")
    try:
        state = pool.open("app-demo", command="sleep 600")
    finally:
        pool.close_all()
    assert not state.is_open
    assert state.error == "ssh did not finish within 0.5 s"
