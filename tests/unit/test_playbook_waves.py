"""Playbook waves: bootstrap alone first, role playbooks on disjoint hosts together, order kept."""

from __future__ import annotations

import threading
import time

from plugins.ansible import playbooks_for
from plugins.inventory import load_inventory
from plugins.playbook_waves import playbook_hosts, run_in_waves, waves

LAB = load_inventory("inventories/lab.yml")


def test_disjoint_host_sets_share_a_wave_and_overlaps_start_a_new_one():
    """Order is kept; a playbook touching a host of the current wave opens the next wave."""
    items = [("all", frozenset("abc")), ("p", frozenset("a")), ("q", frozenset("b")), ("r", frozenset("a")),
             ("s", frozenset("c"))]
    assert waves(items) == [["all"], ["p", "q"], ["r", "s"]]


def test_a_playbook_with_no_hosts_stands_alone():
    """An empty host set (a group nobody has) never joins another wave."""
    assert waves([("p", frozenset("a")), ("none", frozenset()), ("q", frozenset("b"))]) == [["p"], ["none"], ["q"]]


def test_the_lab_deploy_runs_bootstrap_then_every_role_together():
    """On the lab inventory: bootstrap (all hosts) first, then the five role playbooks side by side."""
    playbooks = playbooks_for(LAB.roles)
    hosts = {p.stem: playbook_hosts(p, LAB) for p in playbooks}
    assert hosts["bootstrap"] == {h.hostname for h in LAB.hosts}
    assert hosts["app_demo"] == {"app-demo"} and hosts["monitoring"] == {"monitoring"}
    grouped = waves((p.stem, hosts[p.stem]) for p in playbooks)
    assert grouped == [["bootstrap"], ["proxy", "utilities", "github_runner", "monitoring", "app_demo"]]


def test_waves_run_concurrently_and_stop_after_a_failed_wave(tmp_path):
    """Playbooks of one wave overlap in time; a failure in a wave keeps the next waves from running."""
    books = {}
    for name, hosts in (("boot", "all"), ("p", "proxy"), ("q", "app_demo"), ("r", "proxy")):
        books[name] = tmp_path / f"{name}.yml"
        books[name].write_text(f"- hosts: {hosts}\n  tasks: []\n")
    running, peak, lock = [0], [0], threading.Lock()

    def run(path):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.2)
        with lock:
            running[0] -= 1
        return path.stem != "q"

    results = run_in_waves(list(books.values()), LAB, run, ok=bool)
    assert peak[0] == 2, "p and q did not run side by side"
    assert list(results) == ["boot", "p", "q"], "the wave after q's failure ran"
