"""plugins/tools/playbooks.py on real ansible-playbook runs against localhost (connection local, no mocks)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from plugins.report.redaction import MASK
from plugins.tools.playbooks import (
    BOOTSTRAP_PLAYBOOK,
    PLAYBOOKS_DIR,
    PlaybookResult,
    playbook_path,
    playbooks_for,
    redact_vars,
    run_playbook,
    secret_values,
    ssh_args,
)

pytestmark = pytest.mark.unit

LOCAL = {
    "all": {
        "hosts": {
            "localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        }
    }
}

MIXED_PLAY = """\
- name: A play with ok, changed, skipped and ignored tasks
  hosts: all
  gather_facts: false
  tasks:
    - name: Report something
      ansible.builtin.debug:
        msg: "hello from {{ inventory_hostname }}"
    - name: Write the marker file
      ansible.builtin.copy:
        dest: "{{ marker }}"
        content: "marker\\n"
        mode: "0644"
    - name: Skip this one
      ansible.builtin.debug:
        msg: never
      when: false
    - name: Fail but carry on
      ansible.builtin.command: "false"
      changed_when: false
      ignore_errors: true
"""

FAILING_PLAY = """\
- name: A play that fails
  hosts: all
  gather_facts: false
  tasks:
    - name: Run a command that fails
      ansible.builtin.command:
        argv: [sh, -c, "echo disk full >&2; exit 3"]
      changed_when: false
    - name: Never reached
      ansible.builtin.debug:
        msg: unreachable code
"""

SECRET_PLAY = """\
- name: A play that prints a secret by mistake
  hosts: all
  gather_facts: false
  tasks:
    - name: Print the token
      ansible.builtin.debug:
        msg: "token={{ api_token }} user={{ api_user }}"
"""


def write_play(tmp_path: Path, text: str, name: str = "play.yml") -> Path:
    """Write a playbook into the test's temp dir."""
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def private_key(tmp_path: Path) -> Path:
    """A stand-in private key file (local connections never read it)."""
    key = tmp_path / "deploy_ed25519"
    key.write_text(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key-body-0123456789\n-----END OPENSSH PRIVATE KEY-----\n"
    )
    key.chmod(0o600)
    return key


@pytest.fixture(scope="module")
def mixed_runs(tmp_path_factory) -> tuple[PlaybookResult, PlaybookResult, list[dict], Path]:
    """The mixed play run twice (first run and rerun), with the events the handler saw."""
    tmp = tmp_path_factory.mktemp("mixed")
    key = tmp / "key"
    key.write_text("unused\n")
    play = write_play(tmp, MIXED_PLAY)
    marker = tmp / "marker.txt"
    seen: list[dict] = []
    first = run_playbook(play, LOCAL, private_key=key, extravars={"marker": str(marker)}, event_handler=seen.append)
    second = run_playbook(play, LOCAL, private_key=key, extravars={"marker": str(marker)})
    return first, second, seen, marker


def test_a_successful_run_counts_ok_changed_skipped_per_host(mixed_runs):
    """Stats per host come from the recap: ok, changed, skipped, ignored."""
    first, _, _, marker = mixed_runs
    assert first.ok, first.recap()
    assert (first.rc, first.status) == (0, "successful")
    stats = first.stats["localhost"]
    assert (stats.ok, stats.changed, stats.skipped, stats.ignored, stats.failures, stats.dark) == (3, 1, 1, 1, 0, 0)
    assert first.changed_total == 1
    assert first.changed_hosts() == {"localhost": 1}
    assert first.changed_tasks() == [("localhost", "Write the marker file")]
    assert marker.read_text() == "marker\n"


def test_an_ignored_error_is_not_a_failure(mixed_runs):
    """A task with ignore_errors fails without making the run or failures() fail."""
    first, *_ = mixed_runs
    assert first.failures() == []


def test_a_rerun_of_an_idempotent_play_changes_nothing(mixed_runs):
    """The second run of the same play reports changed=0."""
    _, second, _, _ = mixed_runs
    assert second.ok and second.changed_total == 0, second.recap()


def test_summary_is_one_line_with_totals(mixed_runs):
    """summary() names the playbook, status, rc and totals on one line."""
    first, *_ = mixed_runs
    line = first.summary()
    assert "\n" not in line
    assert line.startswith("play.yml: successful rc=0 in ")
    assert "1 host(s), ok=3 changed=1 failed=0 unreachable=0 skipped=1" in line


def test_recap_lists_every_host(mixed_runs):
    """recap() has the summary then a line per host."""
    first, *_ = mixed_runs
    lines = first.recap().splitlines()
    assert lines[0] == first.summary()
    assert lines[1].split() == [
        "localhost",
        "ok=3",
        "changed=1",
        "unreachable=0",
        "failed=0",
        "skipped=1",
        "rescued=0",
        "ignored=1",
    ]


def test_the_event_handler_sees_every_task_event(mixed_runs):
    """The caller's handler gets the run's events, tasks included, in order."""
    first, _, seen, _ = mixed_runs
    assert [e.get("uuid") for e in seen] == [e.get("uuid") for e in first.events]
    tasks = [e["event_data"]["task"] for e in seen if e.get("event") == "runner_on_ok"]
    assert tasks[:2] == ["Report something", "Write the marker file"]
    assert seen[-1]["event"] == "playbook_on_stats"


def test_a_failed_task_is_named_with_its_host_and_message(tmp_path, private_key):
    """failures() gives (host, task, message) with the command's stderr; rc and status say failed."""
    result = run_playbook(write_play(tmp_path, FAILING_PLAY), LOCAL, private_key=private_key)
    assert not result.ok
    assert result.rc != 0 and result.status == "failed"
    assert result.stats["localhost"].failures == 1
    [failure] = result.failures()
    assert (failure.host, failure.task) == ("localhost", "Run a command that fails")
    assert "non-zero return code" in failure.message
    assert "rc=3" in failure.message and "disk full" in failure.message
    assert "localhost | Run a command that fails | non-zero return code" in result.recap()
    assert result.as_dict()["failures"][0]["task"] == "Run a command that fails"


def test_an_unreachable_host_counts_as_dark(tmp_path, private_key):
    """A host whose SSH port is closed is reported unreachable (dark), as a failure."""
    inventory = {"all": {"hosts": {"nowhere": {"ansible_host": "127.0.0.1", "ansible_port": 1}}}}
    play = write_play(
        tmp_path,
        "- name: Ping\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Ping the host\n      ansible.builtin.ping:\n",
    )
    result = run_playbook(play, inventory, private_key=private_key, extravars={"ansible_user": "nobody"})
    assert not result.ok
    assert result.stats["nowhere"].dark == 1
    [failure] = result.failures()
    assert failure.host == "nowhere" and failure.task == "Ping the host"
    assert "unreachable=1" in result.summary()


def test_a_broken_playbook_is_reported_from_ansible_output(tmp_path, private_key):
    """A playbook that never starts (syntax error) still names why in failures()."""
    play = write_play(
        tmp_path, "- name: Broken\n  hosts: all\n  tasks:\n    - name: x\n      no_such_module_here: {}\n"
    )
    result = run_playbook(play, LOCAL, private_key=private_key)
    assert not result.ok and result.stats == {}
    [failure] = result.failures()
    assert failure.task == "ansible-playbook"
    assert "no_such_module_here" in failure.message


def test_check_mode_reports_changes_without_making_them(tmp_path, private_key):
    """check=True runs --check --diff semantics: changed counted, nothing written."""
    marker = tmp_path / "never.txt"
    result = run_playbook(
        write_play(tmp_path, MIXED_PLAY),
        LOCAL,
        private_key=private_key,
        extravars={"marker": str(marker)},
        check=True,
        diff=True,
    )
    assert result.ok, result.recap()
    assert result.check and "(check)" in result.summary()
    assert result.stats["localhost"].changed == 1
    assert not marker.exists()


def test_limit_restricts_the_hosts(tmp_path, private_key):
    """limit= runs the play on the named hosts only."""
    inventory = {
        "all": {
            "hosts": {
                name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
                for name in ("one", "two")
            }
        }
    }
    play = write_play(
        tmp_path,
        "- name: Noop\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Say hello\n      ansible.builtin.debug:\n        msg: hi\n",
    )
    result = run_playbook(play, inventory, private_key=private_key, limit="two")
    assert result.ok and sorted(result.stats) == ["two"]


def test_secret_extravars_never_appear_in_stdout_events_or_recap(tmp_path, private_key):
    """Values of extravars named like secrets are masked everywhere the result or the handler exposes."""
    token = "tok-4f7c1e9a2b"
    seen: list[dict] = []
    result = run_playbook(
        write_play(tmp_path, SECRET_PLAY),
        LOCAL,
        private_key=private_key,
        extravars={"api_token": token, "api_user": "alice"},
        event_handler=seen.append,
    )
    assert result.ok, result.recap()
    texts = [result.stdout, repr(result.events), repr(seen), result.recap(), repr(result.as_dict())]
    assert not [t for t in texts if token in t]
    assert f"token={MASK} user=alice" in result.stdout
    assert result.extravars == {"api_token": MASK, "api_user": "alice"}


def test_secret_values_are_found_by_name_at_any_depth():
    """A secret word (plugins/report/redaction.py) in a variable's name, or a parent's, makes its values secret."""
    found = secret_values(
        {
            "github": {"token": "ghp-value-1"},
            "db_password": "pw-value-2",
            "secrets": {"a": "inner-value-3", "b": ["list-value-4"]},
            "plain": "visible",
            "ssh_private_key": "",
        }
    )
    assert sorted(found) == ["ghp-value-1", "inner-value-3", "list-value-4", "pw-value-2"]


def test_redact_vars_masks_by_name_only():
    """redact_vars keeps ordinary values and masks the secret-named ones."""
    assert redact_vars(
        {
            "app_demo_port": "8080",
            "github_runner_private_key": "x" * 40,
            "nested": {"api_token": "abcd", "port": 80},
        }
    ) == {
        "app_demo_port": "8080",
        "github_runner_private_key": MASK,
        "nested": {"api_token": MASK, "port": 80},
    }


def test_playbooks_run_bootstrap_first_then_inventory_order():
    """playbooks_for puts bootstrap first and keeps the roles' order, each once."""
    paths = playbooks_for(["proxy", "utilities", "github_runner", "monitoring", "app_demo", "proxy"])
    assert [p.stem for p in paths] == [
        BOOTSTRAP_PLAYBOOK,
        "proxy",
        "utilities",
        "github_runner",
        "monitoring",
        "app_demo",
    ]
    assert all(p.parent == PLAYBOOKS_DIR for p in paths)


def test_a_role_without_playbook_is_refused():
    """playbooks_for names the roles that have no playbook."""
    with pytest.raises(FileNotFoundError, match="no playbook for role.*traefik"):
        playbooks_for(["proxy", "traefik"])


def test_playbook_names_and_paths_resolve(tmp_path):
    """A bare name maps into ansible/playbooks; a path stays a path."""
    assert playbook_path("proxy") == PLAYBOOKS_DIR / "proxy.yml"
    assert playbook_path("proxy.yml") == PLAYBOOKS_DIR / "proxy.yml"
    assert playbook_path(tmp_path / "x.yml") == (tmp_path / "x.yml").resolve()


def test_ssh_arguments_check_host_keys():
    """ansible.cfg's ssh_args pin host keys (accept-new) and reuse connections; never disable checking."""
    args = ssh_args()
    assert "StrictHostKeyChecking=accept-new" in args
    assert "ControlPersist" in args
    assert "StrictHostKeyChecking=no" not in args and "/dev/null" not in args


def test_an_interrupt_stops_the_run_and_reaches_the_caller(tmp_path, private_key):
    """Ctrl-C (or a CI timeout's SIGTERM) cancels the child, then reaches the caller; handlers are restored."""
    play = write_play(
        tmp_path,
        "- name: Slow\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Sleep a while\n      ansible.builtin.command: sleep 20\n      changed_when: false\n",
    )
    # Python's own Ctrl-C handler, as in a fresh process: in the full `make test` session something earlier
    # leaves another one installed (not found yet: every per-test leak is undone by tests/conftest.py)
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    before = signal.getsignal(signal.SIGINT)
    timer = threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_playbook(play, LOCAL, private_key=private_key)
    finally:
        timer.cancel()
        restored = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, outer)
    assert time.monotonic() - started < 40
    assert restored is before
