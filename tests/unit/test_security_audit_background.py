"""The audit started in the background (suites/security begins it when collection ends): it runs once, in a thread
of its own, start() returns at once, and wait() gives its findings or its error."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from plugins.inventory import load_inventory
from plugins.security.audit import SecurityAudit
from plugins.security.findings import finding

LAB = "inventories/lab.yml"


@pytest.fixture
def audit(tmp_path) -> Iterator[SecurityAudit]:
    """An audit of the lab inventory's hosts (its SSH pool opens nothing until asked; its control dir is removed)."""
    inventory = load_inventory(LAB)
    audit = SecurityAudit(inventory, inventory.hosts, tmp_path / "known_hosts")
    yield audit
    audit.close()


def test_start_returns_at_once_and_wait_gives_the_one_runs_findings(audit, monkeypatch):
    """start() does not wait for the tools; a second start() starts nothing; wait() gives the run's findings."""
    release, calls = threading.Event(), []

    def run(controls=None):
        calls.append((set(controls), threading.current_thread().name))
        assert release.wait(10), "the test never released the run"
        return {("proxy", "lynis", None): "found"}

    monkeypatch.setattr(audit, "run", run)
    audit.start({"lynis"})
    audit.start({"lynis", "tls"})
    assert not release.is_set()  # start() came back while the run is still blocked
    release.set()
    assert audit.wait() == {("proxy", "lynis", None): "found"}
    assert len(calls) == 1 and calls[0][0] == {"lynis"}
    assert calls[0][1].startswith("security-audit") and calls[0][1] != threading.current_thread().name


def test_wait_raises_the_background_runs_error(audit, monkeypatch):
    """An audit that raised in its thread raises the same error where the findings are awaited."""
    def run(controls=None):
        raise RuntimeError("sslyze could not start")

    monkeypatch.setattr(audit, "run", run)
    audit.start({"tls"})
    with pytest.raises(RuntimeError, match="sslyze could not start"):
        audit.wait()


def test_wait_without_start_runs_the_audit_in_place(audit, monkeypatch):
    """Nothing started: wait() runs the audit itself, in the caller's thread."""
    threads = []
    monkeypatch.setattr(audit, "run", lambda controls=None: threads.append(threading.current_thread()) or {})
    assert audit.wait() == {}
    assert threads == [threading.current_thread()]


def test_lynis_and_openscap_run_side_by_side_while_the_facts_are_read(audit, monkeypatch):
    """On one host the two long scans start first and at once (each waits for the other here), the facts command is
    read meanwhile, and the findings come back in table order with the scans' own."""
    both = threading.Barrier(3, timeout=10)  # lynis, openscap and the facts read: all three at once
    host = audit.hosts[0]

    def scan(control):
        def run(scanned_host):
            both.wait()
            return finding(scanned_host.hostname, control, [], f"{control} ran")
        return run

    def facts(name, command, timeout):
        both.wait()
        return SimpleNamespace(stdout="@@upgrades\npackage install ok installed\n", returncode=0)

    monkeypatch.setattr(audit.pool, "open", lambda name: SimpleNamespace(is_open=True))
    monkeypatch.setattr(audit.pool, "run", facts)
    monkeypatch.setattr(audit, "_lynis", scan("lynis"))
    monkeypatch.setattr(audit, "_openscap", scan("openscap"))
    audit.controls = {"lynis", "openscap", "upgrades"}
    found = audit._host(host)
    assert [f.control for f in found] == ["lynis", "openscap", "upgrades"]
    assert found[0].passed and found[1].message.endswith("openscap ran")
