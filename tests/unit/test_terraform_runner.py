"""TerraformRunner itself: explicit environment, caller's process untouched, one-line errors."""

from __future__ import annotations

import os

import pytest

from plugins.tools.terraform import TerraformError, TerraformRunner, diagnostics_line

pytestmark = pytest.mark.unit

CONFIG = """
variable "size" {
  type = number
}

resource "terraform_data" "probe" {
  input = var.size
  provisioner "local-exec" {
    command = "printf '%s' \\"$PROBE_VALUE\\" > probe.txt"
  }
}

output "size" {
  value = terraform_data.probe.output
}
"""


def test_env_reaches_terraform_but_not_the_callers_process(tmp_path):
    """The runner's env is seen by local-exec; os.environ and cwd of the caller stay as they were."""
    (tmp_path / "main.tf").write_text(CONFIG)
    (tmp_path / "vars.tfvars.json").write_text('{"size": 3}')
    before_env, before_cwd = dict(os.environ), os.getcwd()
    runner = TerraformRunner(tmp_path, env={"PROBE_VALUE": "from-runner-env"})
    runner.init()
    plan = runner.plan(tmp_path / "vars.tfvars.json")
    assert plan.summary() == "1 to add, 0 to change, 0 to destroy" and plan.path.exists()
    assert runner.apply(plan) == "Apply complete! Resources: 1 added, 0 changed, 0 destroyed."
    assert (tmp_path / "probe.txt").read_text() == "from-runner-env"
    assert runner.output() == {"size": 3}
    assert dict(os.environ) == before_env and os.getcwd() == before_cwd


def test_failed_plan_comes_back_errored_with_one_line_and_cannot_be_applied(tmp_path):
    """A bad variable value: Terraform still writes a plan marked errored; its error is one line."""
    (tmp_path / "main.tf").write_text(CONFIG)
    (tmp_path / "vars.tfvars.json").write_text('{"size": "big"}')
    runner = TerraformRunner(tmp_path, env={})
    runner.init()
    plan = runner.plan(tmp_path / "vars.tfvars.json")
    assert plan.errored and "\n" not in plan.error
    assert "Invalid value for input variable" in plan.error and "a number is required" in plan.error
    with pytest.raises(TerraformError, match="refusing to apply an errored"):
        runner.apply(plan)


def test_diagnostics_line_masks_secrets_and_keeps_errors_only():
    """Warnings are dropped when errors exist; the address is appended; a registered secret is masked."""
    from plugins.report.redaction import Redactor

    events = [
        {"type": "diagnostic", "diagnostic": {"severity": "warning", "summary": "Deprecated"}},
        {
            "type": "diagnostic",
            "diagnostic": {
                "severity": "error",
                "summary": "Error running command",
                "detail": "Output:\n token=tok-123456",
                "address": "terraform_data.x",
            },
        },
    ]
    line = diagnostics_line(events, Redactor(["tok-123456"]))
    assert line == "Error running command: Output: token=*** (terraform_data.x)"
