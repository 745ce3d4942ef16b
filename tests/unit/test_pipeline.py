"""The deploy pipeline declared once: suites/deploy agrees with it, and the gating reads it.

Deploy-like suites run in a subprocess through the project's own plugins (the root conftest's list), with
stages that only record and fail on purpose: no lab, no root. A failure skips the later stages, an
`always` stage still runs, --plan-only skips what is not part of a plan, a sequential stage stops at its
first failure, and the order is the pipeline's whatever the files are called.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from deploy_suite import ROOT, deploy_like

from plugins.deploy.pipeline import PIPELINE, STAGES

pytestmark = pytest.mark.unit

STAGE_FILE = re.compile(r"^test_(\d{2})_([a-z_]+)\.py$")


def _stage_marks(path: Path) -> list[tuple[tuple, dict]]:
    """The (args, kwargs) of every pytest.mark.stage(...) in a module's source."""
    marks = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "stage"
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "mark"):
            marks.append((tuple(ast.literal_eval(a) for a in node.args),
                          {k.arg: ast.literal_eval(k.value) for k in node.keywords}))
    return marks


def test_every_stage_file_is_a_declared_stage_in_the_declared_order():
    """suites/deploy/test_<nn>_<stage>.py: one file per stage, each marked with its own name only, numbers in order."""
    files = sorted((ROOT / "suites" / "deploy").glob("test_*.py"))
    found = []
    for path in files:
        match = STAGE_FILE.match(path.name)
        assert match, f"{path.name}: a stage file is named test_<nn>_<stage>.py"
        number, name = int(match.group(1)), match.group(2)
        assert name in STAGES, f"{path.name}: no stage '{name}' in plugins/deploy/pipeline.py ({', '.join(STAGES)})"
        assert _stage_marks(path) == [((name,), {})], \
            f"{path.name}: expected pytestmark = pytest.mark.stage({name!r}) and no other stage mark"
        assert "mark.order" not in path.read_text(), f"{path.name}: the order is the pipeline's, not pytest.mark.order"
        found.append((number, name))
    assert [name for _, name in sorted(found)] == [stage.name for stage in PIPELINE], \
        f"the file numbers order the stages as {[n for _, n in sorted(found)]}; plugins/deploy/pipeline.py says " \
        f"{[s.name for s in PIPELINE]}"


def test_the_gating_flags_are_the_pipelines():
    """What the runbook promises: the plan guard before the snapshot, notify always, nothing live under --plan-only."""
    names = [stage.name for stage in PIPELINE]
    assert names.index("plan") < names.index("start") < names.index("snapshot") < names.index("terraform")
    assert names.index("terraform") < names.index("firewall") < names.index("health")  # the CTs exist, then checked
    assert [s.name for s in PIPELINE if s.always] == ["notify"]
    assert {s.name for s in PIPELINE if not s.plan_only} == {"start", "snapshot", "terraform", "health", "notify"}
    assert [STAGES[name].order for name in names] == list(range(len(PIPELINE)))


def _stage_module(stage: str, *tests: str) -> str:
    """A stage module: each test writes that it ran (reports/ran), and fails when its name says so."""
    body = [f'import pytest\n\npytestmark = pytest.mark.stage("{stage}")\n']
    for test in tests:
        action = "assert False, 'broken on purpose'" if test.startswith("fails") else "pass"
        body.append(f"\ndef test_{test}(deployment):\n"
                    f"    with (deployment.reports_dir / 'ran').open('a') as ran:\n"
                    f"        ran.write('{stage}.{test}\\n')\n"
                    f"    {action}\n")
    return "".join(body)


@pytest.fixture
def pipeline(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A deploy-like suite, its stage modules written by each test (_write)."""
    return deploy_like(pytester, monkeypatch)


def _write(suite: pytest.Pytester, **stages: tuple[str, ...]) -> None:
    """One module per stage, named so that the file order is the reverse of the pipeline's."""
    for index, (stage, tests) in enumerate(stages.items()):
        (suite.path / f"test_{len(stages) - index:02d}_{stage}.py").write_text(_stage_module(stage, *tests))


def _run(suite: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, list[str]]:
    """Run the suite; give the result and the tests that ran, in order (stage.test)."""
    run = suite.runpytest_subprocess("--inventory", "lab.yml", "--run-id", "unit3", "-p", "no:cacheprovider",
                                     "-rA", *args)
    ran_file = suite.path / "reports" / "ran"
    return run, ran_file.read_text().split() if ran_file.exists() else []


def test_the_stages_run_in_the_pipelines_order_whatever_their_files_are_called(pipeline):
    """Files named in reverse: the stages still run preflight → … → notify."""
    _write(pipeline, preflight=("checks",), plan=("plans",), start=("starts",), snapshot=("snapshots",),
           terraform=("applies",), firewall=("filters",), ha=("registers",), ansible=("configures",),
           health=("answers",), notify=("reports",))
    run, ran = _run(pipeline)
    assert run.ret == pytest.ExitCode.OK, run.stdout.str()
    assert [entry.split(".")[0] for entry in ran] == [stage.name for stage in PIPELINE]


def test_a_failure_skips_the_later_stages_but_an_always_stage_still_runs(pipeline):
    """plan fails: snapshot, terraform, ansible and health are skipped naming it; notify runs; the run fails."""
    _write(pipeline, preflight=("checks",), plan=("fails_to_plan",), snapshot=("snapshots",),
           terraform=("applies",), ansible=("configures",), health=("answers",), notify=("reports",))
    run, ran = _run(pipeline)
    out = run.stdout.str()
    assert run.ret == pytest.ExitCode.TESTS_FAILED, out
    assert ran == ["preflight.checks", "plan.fails_to_plan", "notify.reports"], out
    summary = out[out.index("short test summary info"):]  # the stage lines and the table say it too
    assert summary.count("stage 'plan' failed earlier") == 4, out
    assert "broken on purpose" in out


def test_a_sequential_stage_stops_at_its_first_failure_and_a_non_sequential_one_goes_on(pipeline):
    """plan (sequential): the test after its failure is skipped; preflight (not sequential) reports every problem."""
    _write(pipeline, preflight=("fails_first", "still_checked"), plan=("fails_to_plan", "guard"))
    run, ran = _run(pipeline)
    out = run.stdout.str()
    assert ran == ["preflight.fails_first", "preflight.still_checked"], out
    assert "stage 'preflight' failed earlier: 'plan' is not run" in out

    _write(pipeline, plan=("fails_to_plan", "guard"))
    for stale in pipeline.path.glob("test_*_preflight.py"):
        stale.unlink()
    (pipeline.path / "reports" / "ran").unlink()
    run, ran = _run(pipeline)
    assert ran == ["plan.fails_to_plan"], run.stdout.str()
    assert "an earlier step of stage 'plan' failed: broken on purpose" in run.stdout.str()


def test_plan_only_skips_what_would_change_or_check_live_state(pipeline):
    """--plan-only: preflight, plan and ansible (check mode) run; snapshot, terraform, health and notify do not."""
    _write(pipeline, preflight=("checks",), plan=("plans",), snapshot=("snapshots",), terraform=("applies",),
           ansible=("configures",), health=("answers",), notify=("reports",))
    run, ran = _run(pipeline, "--plan-only")
    out = run.stdout.str()
    assert run.ret == pytest.ExitCode.OK, out
    assert ran == ["preflight.checks", "plan.plans", "ansible.configures"], out
    for stage in ("snapshot", "terraform", "health", "notify"):
        assert f"--plan-only: stage '{stage}' is not part of a plan" in out, out


@pytest.mark.parametrize(("mark", "says"), [
    ('pytest.mark.stage("snapshot", plan_only=True)', "its flags are declared in plugins/deploy/pipeline.py"),
    ('pytest.mark.stage("deploy_everything")', "no deploy stage 'deploy_everything' in plugins/deploy/pipeline.py"),
    ('[pytest.mark.order(3), pytest.mark.stage("snapshot")]', "a stage's order is its place in"),
])
def test_a_stage_declared_a_second_time_in_its_module_is_refused(pipeline, mark, says):
    """Flags, names and order come from the pipeline: a module that says otherwise stops the run at collection."""
    (pipeline.path / "test_10_snapshot.py").write_text(f"import pytest\n\npytestmark = {mark}\n\n\n"
                                                       "def test_snapshots():\n    pass\n")
    run, ran = _run(pipeline)
    assert run.ret == pytest.ExitCode.USAGE_ERROR and not ran, run.stdout.str() + run.stderr.str()
    assert says in run.stderr.str(), run.stderr.str()
