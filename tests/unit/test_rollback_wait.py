"""The rollback's wait judges each restored host by the checks of the release its snapshot holds: those recorded
by the deploy that made it, never the failed release's; without a record, by the checks both releases share,
naming the others, which never make it INCOMPLETE. A service the failed run added is not waited for."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from plugins.deploy.finish import rollback
from plugins.deploy.finish import timeline as tl
from plugins.deploy.finish.judgement import SHARED_CHECKS, judge, judge_lines, judged_by
from plugins.deploy.release import host_record, parse_host_record, release_record
from plugins.deploy.session import DeploySession
from plugins.health.registry import host_wanted
from plugins.health.results import PASS, CheckResult
from plugins.health.web import HttpResult
from plugins.inventory import Inventory, read_document
from plugins.inventory.catalog import CATALOG_DIR, load_catalog

pytestmark = pytest.mark.unit

LAB = Path(__file__).resolve().parents[2] / "inventories" / "lab.yml"


def lab(max_health_wait: float | None = None, catalog=None) -> Inventory:
    """The lab inventory as the model (with deploy.max_health_wait, a test's cap on the deploy's checks)."""
    _, document = read_document(LAB)
    document = copy.deepcopy(document)
    if max_health_wait:
        document.setdefault("deploy", {})["max_health_wait"] = max_health_wait
    return Inventory.model_validate(document, context={"catalog": catalog})


def changed_release(tmp_path: Path, old: str, new: str) -> Inventory:
    """The lab inventory against a copy of services/ whose vaultwarden.yml has `old` replaced by `new`."""
    services = tmp_path / "services"
    shutil.copytree(CATALOG_DIR, services)
    declaration = services / "vaultwarden.yml"
    text = declaration.read_text()
    assert old in text, f"services/vaultwarden.yml has no {old!r}: update this test with the declaration"
    declaration.write_text(text.replace(old, new))
    catalog = load_catalog(services)
    assert not catalog.problems, catalog.problems
    return lab(catalog=catalog)


def recorded(inventory: Inventory, hostname: str, release: str = "r1") -> dict:
    """What reading the host's record file gives, for a release deployed from `inventory`."""
    record = release_record(inventory, release, "0123456789abcdef", inventory.rollback_set)
    return parse_host_record(json.dumps(host_record(record, hostname)), hostname)


@pytest.fixture
def captured(monkeypatch):
    """What the rollback hands the wait: per host (check, subject) pairs, and the (host, check) HTTP pairs."""
    seen = {}

    def fake_wait(inventory, hosts, services, wanted_of, deadline_of, container_of, observe_hosts=None,
                  observe_services=None):
        seen["wanted"] = {h.hostname: wanted_of(h) for h in hosts}
        seen["containers"] = {s.name: container_of(h, s) for h, s in services}
        seen["services"] = [(h.hostname, s.name) for h, s in services]
        seen["accepted"] = {s.name: s.accepted for _, s in services}
        seen["urls"] = {s.name: s.url for _, s in services}
        seen["deadlines"] = {s.name: deadline_of(s) for _, s in services}
        return {}, {}

    monkeypatch.setattr(rollback, "wait_hosts_and_services", fake_wait)
    return seen


def test_a_check_the_failed_release_changed_is_judged_as_the_restored_release_recorded_it(tmp_path, captured):
    """The failed release accepts only 418 on /alive; the restored one was recorded accepting 200: the wait asks
    for 200, and says whose checks those are."""
    before, failed = lab(), changed_release(tmp_path, "path: /alive, accepted: [200]", "path: /alive, accepted: [418]")
    host = failed.host("utilities")
    assert next(s for s in host.endpoints if s.name == "vaultwarden").accepted == [418]
    judgement = judge(host, recorded(before, "utilities"), before=None)
    assert rollback.wait_healthy([host], failed, {"utilities": judgement}) == {"utilities": ""}
    assert captured["accepted"]["vaultwarden"] == [200]
    assert captured["services"] == [("utilities", s.name) for s in before.host("utilities").endpoints]
    assert judgement.by == "the checks of release r1, commit 0123456789ab, recorded in its snapshot"
    assert not judgement.not_judged


def test_the_wait_knows_each_services_container_as_the_restored_release_recorded_it(tmp_path, captured):
    """A container found down for good ends the wait of the services it answers: which ones the record says
    (Vaultwarden's own checks and its route through the proxy), not the failed release's declarations."""
    before = lab()
    host = before.host("utilities")
    rollback.wait_healthy([host], before, {"utilities": judge(host, recorded(before, "utilities"), before=None)})
    vaultwarden = {name for name, container in captured["containers"].items() if container == "vaultwarden"}
    assert vaultwarden == {"vaultwarden", "vaultwarden-admin-locked", "vaultwarden-via-traefik"}, captured["containers"]
    assert all(captured["containers"].values()), captured["containers"]


def test_a_moved_health_path_is_asked_where_the_restored_release_answers(tmp_path, captured):
    """The failed release moved /alive to /healthz (with a new image): the restored release is asked /alive."""
    before = lab()
    failed = changed_release(tmp_path, "path: /alive,", "path: /healthz,")
    judgement = judge(failed.host("utilities"), recorded(before, "utilities"), before=None)
    rollback.wait_healthy([failed.host("utilities")], failed, {"utilities": judgement})
    assert captured["urls"]["vaultwarden"].endswith(":8080/alive")


def test_a_service_the_run_added_is_not_waited_for(captured):
    """app-demo had only its database when snapshotted, and its release recorded only that: the backend and
    frontend (added by the failed run) are neither expected running nor asked over HTTP; the database is."""
    inventory = lab()
    app = inventory.host("app-demo")
    before = {"app-demo": ["app-demo-postgres", "node-exporter", "promtail"]}
    record = recorded(inventory, "app-demo")
    record["host"]["checks"] = [c for c in record["host"]["checks"]
                                if c[0] != "container_running" or c[1] in before["app-demo"]]
    record["host"]["services"] = [s for s in record["host"]["services"] if s["container"] in before["app-demo"]]
    judgement = judge(app, record, before["app-demo"])
    assert rollback.wait_healthy([app], inventory, {"app-demo": judgement}) == {"app-demo": ""}
    containers = [subject for check, subject in captured["wanted"]["app-demo"] if check == "container_running"]
    assert containers == ["app-demo-postgres", "node-exporter", "promtail"]
    assert not [name for _, name in captured["services"] if "backend" in name or "frontend" in name]
    assert rollback.new_services(inventory, before) == {"app-demo": ["app-demo-backend", "app-demo-frontend"]}


def test_a_recorded_container_absent_at_the_snapshot_is_named_not_judged():
    """The record names a container the host no longer had when snapshotted: not expected back, and said so."""
    inventory = lab()
    app = inventory.host("app-demo")
    judgement = judge(app, recorded(inventory, "app-demo"), ["app-demo-postgres", "node-exporter", "promtail"])
    assert "container_running app-demo-backend (not on the host at the snapshot)" in judgement.not_judged
    assert ("container_running", "app-demo-backend") not in judgement.wanted
    assert not [s for s in judgement.services if "backend" in s.name]


def test_without_a_record_the_shared_checks_judge_and_the_others_are_named(captured):
    """A snapshot older than the records: SSH, passwords, key, rsync, Docker and the containers seen at the
    snapshot are judged; this release's HTTP checks and packages are named as not judged, never waited for."""
    inventory = lab()
    utilities = inventory.host("utilities")
    judgement = judge(utilities, None, list(utilities.containers))
    assert rollback.wait_healthy([utilities], inventory, {"utilities": judgement}) == {"utilities": ""}
    checks = {check for check, _ in captured["wanted"]["utilities"]}
    assert checks == (SHARED_CHECKS | {"container_running"}) & {c for c, _ in host_wanted(utilities)}
    assert captured["services"] == []
    assert "http vaultwarden" in judgement.not_judged
    assert judgement.release is None
    assert judgement.by.startswith("the checks both releases share (no release record in the snapshot")
    lines = judge_lines(judged_by({"utilities": judgement}))
    assert lines[0].startswith("judged by the checks both releases share") and lines[0].endswith(": utilities")
    assert lines[1].startswith("not judged on utilities: ") and "http vaultwarden" in lines[1]


def test_without_a_record_or_a_listing_no_container_is_judged():
    """No record and the host did not answer at the snapshot: its containers cannot be judged either."""
    utilities = lab().host("utilities")
    judgement = judge(utilities, None, None)
    assert not [pair for pair in judgement.wanted if pair[0] == "container_running"]
    assert "container_running vaultwarden" in judgement.not_judged


def test_an_unreadable_record_falls_back_saying_why():
    """A record file that is not valid JSON: the host is judged by the shared checks, the reason kept."""
    judgement = judge(lab().host("proxy"), "/var/lib/homelab-suite/release.json is unusable: bad", [])
    assert "could not be read: /var/lib/homelab-suite/release.json is unusable" in judgement.by


def test_a_recorded_check_this_suite_no_longer_knows_is_named():
    """A record from a release whose suite had a check this one lacks: named, not judged, not an error."""
    inventory = lab()
    record = recorded(inventory, "proxy")
    record["host"]["checks"].append(["ntp_synced", None])
    judgement = judge(inventory.host("proxy"), record, None)
    assert judgement.not_judged == ["ntp_synced (unknown to this suite)"]


def test_the_rollback_waits_the_recorded_declared_deadlines_not_the_deploys_cap(captured):
    """deploy.max_health_wait shortens the deploy's own checks; the rollback still gives NetBox, whose restart
    loads Django, the deadline its declaration says (and every service its own)."""
    inventory = lab(max_health_wait=20)
    utilities = inventory.host("utilities")
    netbox = next(s for s in utilities.endpoints if s.name == "netbox")
    assert netbox.deadline == 20, "the cap no longer applies to the deploy's checks"
    judgement = judge(utilities, recorded(inventory, "utilities"), None)
    rollback.wait_healthy([utilities], inventory, {"utilities": judgement})
    assert captured["deadlines"]["netbox"] == 300
    assert captured["deadlines"]["netbox-via-traefik"] == 300
    assert captured["deadlines"] == {s.name: s.deadline for s in lab().host("utilities").endpoints}


class OkClient:
    """A ProxmoxClient stand-in whose every rollback task ends OK."""

    def rollback_many(self, node, targets, start=True, *, timeout=None, on_log=None):
        """Every container's task succeeds."""
        return {vmid: f"UPID:{node}:{vmid}" for vmid in targets}


def test_the_outcome_says_whose_checks_judged_each_host_and_a_silent_host_is_not_waited_again(monkeypatch):
    """proxy had a record, app-demo none, utilities never answered SSH: result.json's rollback says which checks
    judged which host; the silent host is unhealthy at once (its wait was the record's), the others waited for."""
    inventory = lab()
    deploy = DeploySession(run_id="u", inventory=inventory, snapshot_name="deploy_u")
    deploy.snapshots.update({200: "deploy_u", 201: "deploy_u", 250: "deploy_u"})
    reads = {"proxy": recorded(inventory, "proxy"), "app-demo": None,
             "utilities": "no SSH answer: ssh: connect to host 198.18.0.201 port 22: No route to host"}
    monkeypatch.setattr(rollback, "read_records", lambda inv, hosts, on_answer=None: {h.hostname: reads[h.hostname] for h in hosts})
    waited = []
    monkeypatch.setattr(rollback, "wait_healthy",
                        lambda hosts, inv, judgements, timeline=None: waited.append(sorted(judgements)) or {h.hostname: "" for h in hosts})
    outcome = rollback.roll_back(deploy, OkClient())
    assert waited == [["app-demo", "proxy"]]
    assert not outcome["ok"]
    assert outcome["unhealthy"] == {"utilities": reads["utilities"] + " (90 s after the rollback)"}
    assert outcome["judged_by"]["proxy"]["release"] == "r1"
    assert outcome["judged_by"]["app-demo"]["release"] is None
    lines = rollback.describe(outcome)
    assert "  judged by the checks of release r1, commit 0123456789ab, recorded in its snapshot: proxy" in lines
    assert any(line.startswith("  not judged on app-demo: ") for line in lines)


def test_the_outcome_says_what_was_not_waited_for():
    """describe() names the services the rollback took away with the run."""
    outcome = {"ok": True, "seconds": 4.2, "rolled_back": {"app-demo": "deploy_x"}, "task_errors": {},
               "unhealthy": {}, "excluded": [], "new_in_this_run": {"app-demo": ["app-demo-backend"]}}
    assert "  not waited for on app-demo (added by this run, gone with it): app-demo-backend" in rollback.describe(outcome)



def test_the_wait_marks_each_green_http_check_each_healthy_container_and_the_healthy_host(monkeypatch):
    """What the waits see goes into the timeline: a container, an accepted answer, the host healthy at the end;
    an answer that failed marks nothing, and the host it belongs to is not marked healthy."""
    inventory = lab()
    proxy, utilities = inventory.host("proxy"), inventory.host("utilities")

    def fake_wait(inventory, hosts, services, wanted_of, deadline_of, container_of, observe_hosts=None,
                  observe_services=None):
        observe_hosts({("proxy", "container_running", "traefik"):
                       CheckResult("proxy", "container_running", PASS, "running", "traefik")})
        for host, service in services:
            ok = host.hostname == "proxy"
            observe_services(host, service, HttpResult(service.name, service.url, ok=ok, status=200 if ok else 503))
        return {}, {(h.hostname, s.name): HttpResult(s.name, s.url, ok=h.hostname == "proxy",
                                                      message=f"{s.name}: got 503")
                    for h, s in services}

    monkeypatch.setattr(rollback, "wait_hosts_and_services", fake_wait)
    judgements = {h.hostname: judge(h, recorded(inventory, h.hostname), before=None) for h in (proxy, utilities)}
    timeline = tl.Timeline()
    problems = rollback.wait_healthy([proxy, utilities], inventory, judgements, timeline)
    steps = {host: [entry["step"] for entry in entries] for host, entries in timeline.as_dict().items()}
    assert problems["proxy"] == "" and problems["utilities"]
    assert "container traefik" in steps["proxy"] and steps["proxy"][-1] == tl.HEALTHY
    assert {f"http {s.name}" for s in judgements["proxy"].services} <= set(steps["proxy"])
    assert steps["utilities"] == [tl.CHECKS_START]
