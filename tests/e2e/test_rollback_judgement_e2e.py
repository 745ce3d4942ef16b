"""A rollback is judged by the checks of the release it restores, end to end on the lab.

Each failed deploy here changes services/vaultwarden.yml as a user would (put back after the run): a check
whose accepted code the running Vaultwarden never answers; a health path moved together with an image that
does not serve it. Their rollbacks succeed, judged by the checks the previous deploy recorded on the host (in
the snapshot), and the next deploy runs. A restored service that is really down still makes the rollback
INCOMPLETE: the lock refuses the next deploy and the recover command is named. The module shares one
deployed lab (the `deployed` fixture) and runs in file order.
"""

from __future__ import annotations

import json
import subprocess
import sys

from lab import scenarios
from plugins.deploy.release import RECORD_PATH
from plugins.inventory import load_inventory

INVENTORY = load_inventory(scenarios.LAB_INVENTORY)
UTILITIES = INVENTORY.host("utilities")
CHECK_418 = ("path: /alive, accepted: [200]", "path: /alive, accepted: [418]")
MOVED_PATH = ("path: /alive,", "path: /healthz,")
BROKEN_IMAGE = ("image: vaultwarden/server:1.32.7", "image: redis:7.0")  # runs, and serves no HTTP at all
# The failed deploys' health wait: they change Vaultwarden's declaration alone, whose check can never pass (a code it
# never answers, a path its image does not serve), and leave every other service as it answers already; a longer
# wait only delays the same failure. The rollbacks still wait the declared deadlines (max_health_wait caps no rollback).
FAILING_WAIT = 8


def recorded_release(host=UTILITIES) -> dict:
    """The release record the host keeps (what its next snapshot will hold)."""
    done = scenarios.ssh_root(host.ip, f"cat {RECORD_PATH}")
    assert done.returncode == 0, f"no release record on {host.hostname}: {done.stderr.strip()}"
    return json.loads(done.stdout)


def closing(run: scenarios.DeployRun) -> str:
    """The run's closing section: after its failures, before pytest's short summary (which quotes them)."""
    return run.output.partition("end of the deploy run")[2].partition("short test summary info")[0]


def test_a_successful_deploy_records_its_release_next_to_its_result_and_on_the_hosts(deployed):
    """The deploy before this module's tests recorded what it deployed: on each host, and next to result.json."""
    run_id = deployed.result["run_id"]
    assert deployed.result["release"]["release"] == run_id, deployed.result["release"]
    local = json.loads((scenarios.ROOT / "reports" / "deploy" / run_id / "release.json").read_text())
    on_host = recorded_release()
    assert on_host["release"] == local["release"] == run_id and on_host["commit"] == local["commit"]
    assert on_host["inventory_digest"] == local["inventory_digest"]
    assert on_host["hosts"]["utilities"] == local["hosts"]["utilities"]
    vaultwarden = next(s for s in on_host["hosts"]["utilities"]["services"] if s["name"] == "vaultwarden")
    assert vaultwarden["url"].endswith(":8080/alive") and vaultwarden["accepted"] == [200]


def test_a_failed_deploy_that_changed_a_check_rolls_back_ok_and_the_next_deploy_runs(deployed, tmp_path):
    """Vaultwarden's check changed to accept only 418: health fails, the rollback judges the restored Vaultwarden
    by the checks it was deployed with (200), succeeds and says so; the lock is free and the next deploy runs."""
    release = recorded_release()["release"]
    with scenarios.changed_declaration("vaultwarden", CHECK_418):
        run = scenarios.run_suite("deploy", inventory=scenarios.short_deadlines_variant(tmp_path, FAILING_WAIT))
    assert run.rc != 0, f"a deploy whose check cannot pass exited 0:\n{run.tail()}"
    assert "accepted 418" in run.output.partition("end of the deploy run")[0], run.tail(80)
    rollback = run.result["rollback"]
    assert rollback and rollback["ok"], f"rollback not OK:\n{run.tail(60)}"
    assert rollback["judged_by"]["utilities"]["release"] == release, rollback["judged_by"]
    end = closing(run)
    assert f"judged by the checks of release {release}" in end and "accepted 418" not in end, end
    markdown = (scenarios.ROOT / "reports" / "deploy-result.md").read_text()
    assert f"judged by the checks of release {release}" in markdown, markdown

    again = scenarios.run_suite("deploy")
    assert again.rc == 0, f"the deploy after the rollback did not run or failed:\n{again.tail()}"
    assert again.result["stages"]["health"]["outcome"] == "passed", again.result["stages"]


def test_a_moved_health_path_with_a_broken_image_rolls_back_ok(deployed, tmp_path):
    """/alive moved to /healthz with an image that serves neither: the restored Vaultwarden is asked /alive, as
    its release recorded, and the rollback succeeds."""
    release = recorded_release()["release"]
    with scenarios.changed_declaration("vaultwarden", MOVED_PATH, BROKEN_IMAGE):
        run = scenarios.run_suite("deploy", inventory=scenarios.short_deadlines_variant(tmp_path, FAILING_WAIT))
    assert run.rc != 0, f"a deploy of a broken image exited 0:\n{run.tail()}"
    rollback = run.result["rollback"]
    assert rollback and rollback["ok"], f"rollback not OK:\n{run.tail(60)}"
    assert rollback["judged_by"]["utilities"]["release"] == release, rollback["judged_by"]
    assert "/healthz" not in closing(run), closing(run)
    image = scenarios.ssh_root(UTILITIES.ip, "docker inspect -f '{{.Config.Image}}' vaultwarden").stdout.strip()
    assert image.endswith("vaultwarden/server:1.32.7"), f"vaultwarden runs {image} after the rollback"


def test_a_restored_service_that_is_really_down_is_incomplete_keeps_the_lock_and_names_recover(deployed, tmp_path):
    """Vaultwarden stopped (and kept stopped across restarts) before a failing deploy: its snapshot brings it back
    down, its own release's checks fail, the rollback is INCOMPLETE, the next deploy refuses, recover is named."""
    release = recorded_release()["release"]
    stop = scenarios.ssh_root(UTILITIES.ip, "docker update --restart=no vaultwarden && docker stop vaultwarden")
    assert stop.returncode == 0, stop.stderr
    inventory = scenarios.short_deadlines_variant(tmp_path, FAILING_WAIT)
    try:
        with scenarios.changed_declaration("vaultwarden", CHECK_418):
            run = scenarios.run_suite("deploy", inventory=inventory)
        assert run.rc != 0, run.tail()
        rollback = run.result["rollback"]
        assert rollback and not rollback["ok"], f"the rollback of a really down service was OK:\n{run.tail(60)}"
        assert list(rollback["unhealthy"]) == ["utilities"] and "vaultwarden" in rollback["unhealthy"]["utilities"]
        assert "accepted 418" not in rollback["unhealthy"]["utilities"], rollback["unhealthy"]
        assert rollback["judged_by"]["utilities"]["release"] == release
        command = f"python -m plugins.deploy.recover rollback --inventory {inventory}"
        assert rollback["recovery"] == command, rollback
        end = closing(run)
        assert "rollback INCOMPLETE" in end and f"run `{command}`" in end, end
        refused = scenarios.run_suite("deploy")
        assert refused.rc != 0 and "did not finish" in refused.output and command in refused.output, refused.tail()
        assert refused.result is None, "the refused deploy wrote a result"
    finally:
        forget = subprocess.run([sys.executable, "-m", "plugins.deploy.recover", "forget", "--inventory",
                                 str(scenarios.LAB_INVENTORY)], cwd=scenarios.ROOT, env=scenarios.suite_env(),
                                capture_output=True, text=True, timeout=60, check=False)
        restored = scenarios.run_suite("deploy")  # starts Vaultwarden again, with its declared restart policy
    assert forget.returncode == 0, forget.stdout + forget.stderr
    assert restored.rc == 0, f"the deploy after `recover forget` failed:\n{restored.tail()}"
