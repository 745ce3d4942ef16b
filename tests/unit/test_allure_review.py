"""The Allure results read as people say them: titles, readable parameters, labels, environment, executor, history."""

from __future__ import annotations

import json

import pytest
from review_suite import attachment_texts, read_results, review_run

from plugins.report.naming import readable
from plugins.report.run_facts import executor_from_env

pytestmark = pytest.mark.unit


@pytest.fixture
def first_run(pytester, monkeypatch):
    """One run of the small deploy + health suite, its results directory."""
    results = pytester.path / "allure-results"
    return review_run(pytester, monkeypatch, results, "--run-id", "review1"), results


def by_name(results) -> dict[str, dict]:
    """Results by their title."""
    return {r["name"]: r for r in read_results(results)}


def labels(result: dict) -> dict[str, list[str]]:
    """A result's labels: name → values."""
    found: dict[str, list[str]] = {}
    for label in result["labels"]:
        found.setdefault(label["name"], []).append(label["value"])
    return found


def test_stage_and_health_tests_are_titled_as_people_say_them(first_run):
    """`ansible › proxy › the host is configured`, `health › app-demo › rsync`, no Host repr anywhere."""
    _, results = first_run
    names = by_name(results)
    assert {"plan › the plan is computed", "snapshot › every existing rollback host has a snapshot of this run",
            "ansible › proxy › the host is configured", "ansible › app-demo › the host is configured",
            "health › proxy › rsync", "health › app-demo › rsync", "deploy › rollback"} <= set(names), sorted(names)
    everything = "".join(path.read_text() for path in results.glob("*-result.json"))
    assert "Host(" not in everything and "vmid=" not in everything
    assert names["ansible › proxy › the host is configured"]["parameters"] == [{"name": "stage_host", "value": "proxy"}]


def test_labels_are_epic_feature_story(first_run):
    """epic deploy/health, feature the stage or the check, story the host."""
    _, results = first_run
    names = by_name(results)
    ansible = labels(names["ansible › app-demo › the host is configured"])
    assert (ansible["epic"], ansible["feature"], ansible["story"]) == (["deploy"], ["ansible"], ["app-demo"])
    health = labels(names["health › proxy › rsync"])
    assert (health["epic"], health["feature"], health["story"]) == (["health"], ["rsync"], ["proxy"])
    plan = labels(names["plan › the plan is computed"])
    assert plan["epic"] == ["deploy"] and plan["feature"] == ["plan"] and "story" not in plan
    assert labels(names["deploy › rollback"])["epic"] == ["deploy"]


def test_a_failed_host_carries_its_recap_and_the_failed_tasks_output(first_run):
    """The failing host's test: its recap line, and the task's msg, command, rc and stderr."""
    _, results = first_run
    failed = by_name(results)["ansible › app-demo › the host is configured"]
    assert failed["status"] == "failed" and "task 'app_demo : Start the app'" in failed["statusDetails"]["message"]
    texts = attachment_texts(results, failed)
    assert texts["ansible recap of app-demo"].startswith("app-demo: ok=5 changed=0 unreachable=0 failed=1")
    output = texts["failed task output on app-demo"]
    assert '"stderr": "port 8080 in use"' in output and '"cmd": "docker compose up"' in output
    rollback = attachment_texts(results, by_name(results)["deploy › rollback"])
    assert "rollback succeeded in 2.5 s" in rollback["rollback"]


def test_environment_properties_say_what_ran_where(first_run):
    """environment, node, run id, git commit, Ansible's version (Proxmox and Terraform come from a live run)."""
    _, results = first_run
    properties = dict(line.split("=", 1) for line in (results / "environment.properties").read_text().splitlines())
    assert properties["environment"] == "lab" and properties["node"] == "homelab"
    assert properties["run_id"] == "review1" and properties["ansible_version"]


def test_a_tests_history_key_is_the_same_from_run_to_run(pytester, monkeypatch):
    """Allure 3 joins runs on testCaseId + parameters: both the same in two runs, different for two hosts."""
    first, second = pytester.path / "one", pytester.path / "two"
    review_run(pytester, monkeypatch, first, "--run-id", "review1")
    review_run(pytester, monkeypatch, second, "--run-id", "review2")

    def keys(results):
        return {r["name"]: (r["testCaseId"], json.dumps(r.get("parameters", []), sort_keys=True))
                for r in read_results(results)}

    one, two = keys(first), keys(second)
    assert one == two
    assert len(set(one.values())) == len(one)


def test_the_executor_comes_from_github_actions_variables():
    """executor.json: GitHub Actions, the workflow's run number and the run's link; nothing outside Actions."""
    env = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "77", "GITHUB_RUN_NUMBER": "12", "GITHUB_WORKFLOW": "deploy",
           "GITHUB_REPOSITORY": "owner/homelab", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REF_NAME": "main"}
    executor = executor_from_env(env)
    assert executor == {"name": "GitHub Actions", "type": "github", "url": "https://github.com", "buildOrder": 12,
                        "buildName": "deploy #12", "buildUrl": "https://github.com/owner/homelab/actions/runs/77",
                        "reportName": "owner/homelab main"}
    assert executor_from_env({"GITHUB_RUN_ID": "77"}) is None


def test_readable_names_hosts_pairs_and_services():
    """A Host by its hostname, (host, subject) as host/subject, anything else as its text."""
    class Host:
        hostname = "proxy"

    class Service:
        name = "traefik"

    assert readable(Host()) == "proxy"
    assert readable((Host(), Service())) == "proxy/traefik"
    assert readable(3) == "3" and readable("x") == "x"
