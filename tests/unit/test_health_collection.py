"""Collection of suites/health from the owner's inventory: readable ids, host-by-host order, selection.

`--collect-only` opens no connection (the checks start only when tests run), so the owner's LAN
inventory is safe to use here.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from plugins.health.registry import CHECKS

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = "inventories/homelab.yml"


def _columns_of_tests() -> dict[str, int]:
    """{test function: its check's place in the registry} from each suites/health test's check(...) marker."""
    place = {check.name: index for index, check in enumerate(CHECKS)}
    found = {}
    for path in (ROOT / "suites" / "health").glob("test_*.py"):
        for node in ast.parse(path.read_text()).body:
            for decorator in getattr(node, "decorator_list", []):
                if isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "pytest.mark.check":
                    found[node.name] = place[ast.literal_eval(decorator.args[0])]
    return found


COLUMN_OF = _columns_of_tests()


def collect(*args: str, path: str = "suites/health") -> list[str]:
    """The node ids (file::test[id]) `pytest PATH --collect-only` lists, in run order."""
    done = subprocess.run([sys.executable, "-m", "pytest", path, "--collect-only", "-q",
                           "-p", "no:cacheprovider", f"--inventory={INVENTORY}", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode in (0, 5), done.stdout[-2000:] + done.stderr[-2000:]
    assert "warnings summary" not in done.stdout, done.stdout[-2000:]
    return [line for line in done.stdout.splitlines() if "::" in line]


def ids_of(node_ids: list[str]) -> list[str]:
    """`suites/health/test_rsync.py::test_rsync[proxy]` -> `test_rsync[proxy]`."""
    return [node_id.split("::", 1)[1] for node_id in node_ids]


def host_of(test_id: str) -> str:
    """`test_http[proxy/traefik-ping]` -> `proxy`; '' for a test of no host (the restic repository's check)."""
    return test_id.split("[", 1)[1].rstrip("]").split("/", 1)[0] if "[" in test_id else ""


@pytest.fixture(scope="module")
def every_test() -> list[str]:
    """Every health test for the owner's inventory, in run order."""
    return ids_of(collect())


def test_tests_run_host_by_host_in_inventory_order_and_table_column_order(every_test):
    hosts = [host_of(t) for t in every_test if "[" in t]
    runs = [h for i, h in enumerate(hosts) if i == 0 or hosts[i - 1] != h]
    assert runs == ["proxy", "utilities", "ci-runner", "monitoring", "app-demo"], runs  # each host once
    for host in runs:
        columns = [COLUMN_OF[t.split("[")[0]] for t in every_test if "[" in t and host_of(t) == host
                   and t.split("[")[0] in COLUMN_OF]
        assert columns == sorted(columns), (host, columns)
        # the host's backup watch (suites/health/test_backups.py) follows its checks
        assert [t for t in every_test if "[" in t and host_of(t) == host][-1].startswith(
            "test_newest_backup_is_younger_than_the_schedule_allows["), host
    assert every_test[-1] == "test_last_restic_check_of_the_offsite_copy_passed"
    assert every_test[:3] == ["test_ssh[proxy]", "test_sshd_refuses_passwords[proxy]", "test_keys[proxy]"]


def test_hosts_and_roles_select_without_changing_the_ids(every_test):
    app_demo = ids_of(collect("--hosts=app-demo"))
    assert app_demo and {host_of(t) for t in app_demo} == {"app-demo", ""}
    assert app_demo[:-1] == [t for t in every_test if "[" in t and host_of(t) == "app-demo"]
    assert "test_rsync[app-demo]" in app_demo
    assert {host_of(t) for t in ids_of(collect("--roles=proxy,monitoring"))} == {"proxy", "monitoring", ""}


def test_both_suites_collect_together_with_the_deploy_stages_first(every_test):
    both = [t for t in collect(path="suites") if not t.startswith("suites/security/")]  # the audit: its own order
    files = [t.split("::")[0] for t in both]
    first_health = files.index("suites/health/test_ssh.py")
    # The health suite sorts its own tests host by host; the others keep their order ahead of them: the deploy's
    # stages first, then the security suite's tests.
    suites = [f.split("/")[1] for f in files[:first_health]]
    assert suites and suites[0] == "deploy" and set(suites) <= {"deploy", "security"}, set(suites)
    assert suites == sorted(suites, key=["deploy", "security"].index)
    assert ids_of(both[first_health:]) == every_test
