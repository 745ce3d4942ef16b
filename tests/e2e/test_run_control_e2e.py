"""The run itself under stress, end to end: two deploys at once, a CI cancel, a SIGKILL and its recovery.

Each deploy is the Makefile's own command in its own process group, as a CI job runs it. Signals go to
the whole group, as a terminal's Ctrl-C or a CI cancel does.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lab_driving import ansible_running, hand_over, wait_for

from lab import scenarios
from plugins.deploy.run_lock import RunLock, read_record
from plugins.inventory import load_inventory

INVENTORY = load_inventory(scenarios.LAB_INVENTORY)
APP = INVENTORY.host("app-demo")
RUNNER = INVENTORY.runner_host
SENTINEL = "/opt/app-demo/src/README.md"


def changed_app(tmp_path: Path) -> Path:
    """A copy of the app with one changed file: a deploy that really changes something, so a rollback undoes it."""
    source = tmp_path / "app-demo"
    subprocess.run(["cp", "-a", str(scenarios.ROOT / "app-demo"), str(source)], check=True)
    (source / "README.md").write_text(f"changed by {tmp_path.name}\n")
    return source


def finish(proc: subprocess.Popen, output: Path, timeout: float = 600) -> str:
    """Wait for a started deploy; give its output."""
    proc.wait(timeout=timeout)
    return output.read_text()


def test_a_second_deploy_started_seconds_later_is_refused_naming_the_first(request, lab_status, tmp_path):
    """Two deploys a few seconds apart: the second stops before any side effect, naming the first's run. The
    first is the Makefile's plain deploy, so it needs no deployed lab before it (a deploy of its own would only
    run twice) and leaves one to the module's next tests."""
    started = time.monotonic()
    first = scenarios.start_suite("deploy", output=tmp_path / "first.log")
    try:
        lock = RunLock(INVENTORY.environment)
        wait_for(lambda: (read_record(lock.path) or None) is not None, "the first deploy's lock")
        holder = read_record(lock.path)
        second = scenarios.run_suite("deploy")
        assert second.rc != 0, second.tail()
        assert f"another deploy of 'lab' is running: run {holder.run_id} (pid {first.pid} on" in second.output
        assert second.result is None, "the refused deploy wrote a result"
    finally:
        out = finish(first, tmp_path / "first.log")
    assert first.returncode == 0, out[-3000:]
    result = scenarios.latest_result()
    assert result and result["run_id"] == holder.run_id, f"latest result is not the first deploy's: {result}"
    hand_over(request, scenarios.DeployRun(first.returncode, time.monotonic() - started, out, result))


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_ci_cancel_during_ansible_still_rolls_back(deployed, tmp_path, number):
    """SIGINT or SIGTERM while Ansible runs: the rollback runs, the app is as before, the exit status fails."""
    before = scenarios.ssh_root(APP.ip, f"cat {SENTINEL}").stdout
    output = tmp_path / "deploy.log"
    proc = scenarios.start_suite("deploy", "--ansible-var", f"app_demo_src={changed_app(tmp_path)}/", output=output)
    try:
        wait_for(lambda: ansible_running(proc.pid), "ansible-playbook of the deploy")
        os.killpg(proc.pid, number)
    finally:
        out = finish(proc, output)
    assert proc.returncode != 0, out[-3000:]
    result = scenarios.latest_result()
    assert result and result["status"] == "failed" and result["rollback"] and result["rollback"]["ok"], out[-3000:]
    # the stage the signal cut says so, with the time it ran, in result.json and the terminal's table
    name = signal.Signals(number).name
    cut = result["stages"]["ansible"]
    assert result["interrupted"] == name and cut["outcome"] == f"interrupted ({name})" and cut["seconds"] > 0, cut
    assert re.search(rf"^ansible +interrupted \({name}\) +[1-9]\d*\.\d |^ansible +interrupted \({name}\) +0\.[1-9] ",
                     out.partition("end of the deploy run")[2], re.MULTILINE), out[-3000:]
    assert scenarios.ssh_root(APP.ip, f"cat {SENTINEL}").stdout == before, "the app's files were not restored"
    assert not RunLock(INVENTORY.environment).path.exists(), "the lock outlived the run"


def test_a_sigkilled_deploy_is_found_by_the_next_and_recover_rolls_it_back(deployed, tmp_path):
    """SIGKILL during Ansible: the next deploy refuses, naming the recovery; `plugins.deploy.recover rollback` restores."""
    before = scenarios.ssh_root(APP.ip, f"cat {SENTINEL}").stdout
    output = tmp_path / "deploy.log"
    proc = scenarios.start_suite("deploy", "--ansible-var", f"app_demo_src={changed_app(tmp_path)}/", output=output)
    wait_for(lambda: ansible_running(proc.pid), "ansible-playbook of the deploy")
    os.killpg(proc.pid, signal.SIGKILL)
    finish(proc, output)
    wait_for(lambda: not ansible_running(proc.pid), "the killed deploy's processes to end", timeout=30)

    blocked = scenarios.run_suite("deploy")
    assert blocked.rc != 0 and "did not finish" in blocked.output, blocked.tail()
    assert "python -m plugins.deploy.recover rollback --inventory" in blocked.output, blocked.tail()

    recover = subprocess.run([sys.executable, "-m", "plugins.deploy.recover", "rollback", "--inventory",
                              str(scenarios.LAB_INVENTORY)], cwd=scenarios.ROOT, env=scenarios.suite_env(),
                             capture_output=True, text=True, timeout=600, check=False)
    assert recover.returncode == 0, recover.stdout + recover.stderr
    assert "rollback succeeded" in recover.stdout and "rolled back ci-runner" not in recover.stdout
    # the records are files of the restored snapshots: the recovery, with no session, judges by them too
    assert "judged by the checks of release " in recover.stdout, recover.stdout
    assert scenarios.ssh_root(APP.ip, f"cat {SENTINEL}").stdout == before, "the app's files were not restored"
    again = scenarios.run_suite("deploy")
    assert again.rc == 0, again.tail()
