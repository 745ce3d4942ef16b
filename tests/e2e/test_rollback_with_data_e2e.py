"""Databases roll back with their hosts, end to end on a deployed lab: NetBox's and Zabbix's (issue 13 item 4) and
the demo app's, whose failed deploy is a destructive migration.

Rows written before a deploy survive it; rows NetBox and Zabbix write while a deploy runs (after the deploy's
snapshots of their hosts, before its rollback) are gone once the failed deploy is rolled back, and both APIs
answer again. One failed deploy for all three: the app's next migration drops a column its code still reads
(/api/health answers 500, short health deadlines); the rollback brings the column and the app's rows back.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import pytest
import requests

from lab import scenarios
from plugins.inventory import load_inventory
from plugins.proxmox.client import ProxmoxClient

INVENTORY = load_inventory(scenarios.LAB_INVENTORY)
MONITORING, UTILITIES = INVENTORY.host("monitoring"), INVENTORY.host("utilities")
APP = INVENTORY.host("app-demo")
APP_HEALTH = next(s for s in APP.endpoints if s.name == "app-demo-backend")
APP_API = APP_HEALTH.url.removesuffix("/api/health")
ZABBIX_API = next(p.url for p in MONITORING.probes if p.kind == "zabbix_api" and not p.connect_to)
NETBOX_API = next(p.url for p in UTILITIES.probes if p.kind == "netbox_status" and not p.connect_to).removesuffix("status/")
# The schema's own first user (data.sql): the lab's Zabbix is a fresh install.
ZABBIX_LOGIN = {"username": "Admin", "password": "zabbix"}
# How long a service may take to answer again once its host is started after the snapshot (NetBox: Django
# loads, `migrate` finds nothing to do, gunicorn starts).
BACK_AFTER_SNAPSHOT = 90


def zabbix(method: str, params: dict, token: str | None = None) -> object:
    """One JSON-RPC call to the lab's Zabbix API; the result, or a one-line failure."""
    headers = {"Content-Type": "application/json-rpc", **({"Authorization": f"Bearer {token}"} if token else {})}
    answer = requests.post(ZABBIX_API, json={"jsonrpc": "2.0", "method": method, "params": params, "id": 1},
                           headers=headers, timeout=15).json()
    if "error" in answer:
        pytest.fail(f"{ZABBIX_API} {method}: {answer['error']}", pytrace=False)
    return answer["result"]


def zabbix_groups() -> set[str]:
    """The names of every Zabbix host group (a fresh login: sessions are rows too, rolled back with the rest)."""
    return {g["name"] for g in zabbix("hostgroup.get", {"output": ["name"]}, zabbix("user.login", ZABBIX_LOGIN))}


def zabbix_write(name: str) -> None:
    """Create a Zabbix host group."""
    zabbix("hostgroup.create", {"name": name}, zabbix("user.login", ZABBIX_LOGIN))


def netbox_headers() -> dict[str, str]:
    """The superuser's API token (a lab secret, exported by `lab env`)."""
    return {"Authorization": f"Token {scenarios.suite_env()['NETBOX_API_TOKEN']}", "Accept": "application/json"}


def netbox_tags() -> set[str]:
    """The slugs of every NetBox tag."""
    answer = requests.get(f"{NETBOX_API}extras/tags/?limit=1000", headers=netbox_headers(), timeout=15)
    answer.raise_for_status()
    return {tag["slug"] for tag in answer.json()["results"]}


def netbox_write(slug: str) -> None:
    """Create a NetBox tag."""
    answer = requests.post(f"{NETBOX_API}extras/tags/", json={"name": slug, "slug": slug}, headers=netbox_headers(),
                           timeout=15)
    if answer.status_code != 201:
        raise ValueError(f"{NETBOX_API}extras/tags/: {answer.status_code}")


def _write_once_back(write: Callable[[str], None], name: str, written: list[str]) -> None:
    """Write `name` as soon as the service answers again, within BACK_AFTER_SNAPSHOT seconds."""
    deadline = time.monotonic() + BACK_AFTER_SNAPSHOT
    while time.monotonic() < deadline:
        try:
            write(name)
            written.append(name)
            return
        except (requests.RequestException, ValueError, pytest.fail.Exception):
            time.sleep(1)


def app_items(name: str) -> list[dict]:
    """The demo app's items of that name, through its API."""
    answer = requests.get(f"{APP_API}/api/items", timeout=10)
    answer.raise_for_status()
    return [row for row in answer.json() if row["name"] == name]


def test_a_failed_deploy_brings_the_databases_back_to_their_snapshots(deployed, tmp_path):
    """Rows written before the deploy are kept; rows written after its snapshots are gone after the rollback; the
    column the failed migration dropped is back with its values."""
    run_id = uuid.uuid4().hex[:8]  # rows of earlier runs stay: names unique to this one
    kept, lost = f"e2e-kept-{run_id}", f"e2e-lost-{run_id}"
    zabbix_write(kept)
    netbox_write(kept)
    written = requests.post(f"{APP_API}/api/items", json={"name": kept, "note": "before the bad migration"}, timeout=10)
    assert written.status_code == 201, written.text
    proxmox = ProxmoxClient.from_inventory(INVENTORY, env=scenarios.suite_env())
    writes = {MONITORING.hostname: (MONITORING, zabbix_write, []), UTILITIES.hostname: (UTILITIES, netbox_write, [])}
    before = {name: {s["name"] for s in proxmox.snapshots(host.node, host.vmid)} for name, (host, _, _) in writes.items()}

    def write_after_the_snapshot(name: str) -> None:
        """Wait for the deploy's new snapshot of the host, then let its service write a row."""
        host, write, written = writes[name]
        for _ in range(1200):
            if {s["name"] for s in proxmox.snapshots(host.node, host.vmid)} - before[name]:
                time.sleep(3)  # the host is started again after its snapshot
                _write_once_back(write, lost, written)
                return
            time.sleep(0.5)

    writers = [threading.Thread(target=write_after_the_snapshot, args=(name,), daemon=True) for name in writes]
    for writer in writers:
        writer.start()
    source = scenarios.destructive_migration_copy(tmp_path)
    inventory = scenarios.short_deadlines_variant(tmp_path)
    run = scenarios.run_suite("deploy", "--ansible-var", f"app_demo_src={source}/", inventory=inventory)
    for writer in writers:
        writer.join(timeout=BACK_AFTER_SNAPSHOT)

    for name, (_, _, written) in writes.items():
        assert written == [lost], f"{name}: {lost} was not written during the deploy (after its snapshot):\n{run.tail()}"
    assert run.rc != 0, f"a deploy whose migration broke the app exited 0:\n{run.tail()}"
    failures = run.output.partition("end of the deploy run")[0]
    assert f"{APP_HEALTH.name} {APP_HEALTH.url}: got 500" in failures, run.tail(80)
    rollback = run.result["rollback"]
    assert rollback and rollback["ok"], f"rollback did not succeed: {rollback}\n{run.tail()}"
    assert {MONITORING.hostname, UTILITIES.hostname, APP.hostname} <= set(rollback["rolled_back"]), rollback
    for service, rows in (("Zabbix host groups", zabbix_groups()), ("NetBox tags", netbox_tags())):
        assert kept in rows, f"{service}: {kept}, written before the deploy, is gone after its rollback"
        assert lost not in rows, f"{service}: {lost}, written after the deploy's snapshot, survived the rollback"
    assert zabbix("apiinfo.version", {}).startswith("7.0."), "Zabbix's API version after the rollback"
    health = requests.get(APP_HEALTH.url, timeout=10)
    assert health.status_code == 200, f"{APP_HEALTH.url} answers {health.status_code} after the rollback"
    assert [row.get("note") for row in app_items(kept)] == ["before the bad migration"], app_items(kept)
