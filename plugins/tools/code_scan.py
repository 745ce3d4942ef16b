"""What make lint's code scans found, read from their reports: detect-secrets (against the audited baseline),
checkov (its JSON) and bandit (its JSON), plus the rule every one of them shares: an accepted finding says why.

scripts/lint.py runs the tools; this module only reads what they wrote, so the unit tests can feed it reports.
No function here returns a secret's value: detect-secrets reports hold only hashes, and lines are never quoted.
"""

from __future__ import annotations

import io
import json
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

# detect-secrets' baseline marks an audited finding with is_secret: false (a false positive) or true (a real one).
NOT_AUDITED = "not audited"
MARKED_REAL = "audited as a real secret: remove it from the repository (and rotate it), do not baseline it"
# checkov's inline skip without `:reason` gets this text as its comment.
CHECKOV_NO_COMMENT = "No comment provided"
NOSEC = re.compile(r"#\s*nosec\b(?P<rest>.*)")
NOSEC_WITH_REASON = re.compile(r"^\s*:?\s*B\d{3}(\s*,\s*B\d{3})*\s*#\s*\S")


@dataclass(frozen=True)
class Finding:
    """One thing a scan found that is neither fixed nor accepted with its reason: where, which rule, what."""

    where: str
    rule: str
    what: str

    def line(self) -> str:
        """`file:line: RULE what`, the shape of every linter's output."""
        return f"{self.where}: {self.rule} {self.what}"


def unaudited_secrets(baseline: dict) -> list[Finding]:
    """The baseline's results that are not audited as false positives (new ones, or ones marked real)."""
    found = []
    for path, results in sorted(baseline.get("results", {}).items()):
        for result in results:
            verdict = result.get("is_secret")
            if verdict is False:
                continue
            found.append(Finding(f"{path}:{result.get('line_number', '?')}", result.get("type", "secret"),
                                 MARKED_REAL if verdict is True else NOT_AUDITED))
    return found


def baseline_count(baseline: dict) -> int:
    """How many findings the baseline holds."""
    return sum(len(results) for results in baseline.get("results", {}).values())


def checkov_reports(text: str) -> list[dict]:
    """checkov's -o json output: one document per directory, each an object or a list of per-framework objects."""
    decoder, reports, at = json.JSONDecoder(), [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return reports
        document, at = decoder.raw_decode(text, at)
        reports.extend(document if isinstance(document, list) else [document])


def _checkov_where(check: dict, root: Path) -> str:
    path = check.get("file_abs_path") or check.get("file_path", "?")
    try:
        path = str(Path(path).relative_to(root))
    except ValueError:
        pass
    first, last = (check.get("file_line_range") or [0, 0])[:2]
    return f"{path}:{first}-{last}"


def checkov_findings(reports: list[dict], root: Path) -> list[Finding]:
    """Failed checks, skips without a reason and files checkov could not parse, across every framework."""
    found = []
    for report in reports:
        results = report.get("results", {})
        for check in results.get("failed_checks", []):
            found.append(Finding(_checkov_where(check, root), check["check_id"], check.get("check_name", "failed")))
        for check in results.get("skipped_checks", []):
            reason = (check.get("check_result") or {}).get("suppress_comment", "").strip()
            if not reason or reason == CHECKOV_NO_COMMENT:
                found.append(Finding(_checkov_where(check, root), check["check_id"],
                                     "skipped without a reason (write `checkov:skip=ID:why`)"))
        for path in results.get("parsing_errors", []):
            found.append(Finding(str(path), "parse", "checkov could not parse this file: it was not scanned"))
    return found


def checkov_counts(reports: list[dict]) -> dict[str, int]:
    """passed / failed / skipped checks, summed over the frameworks."""
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for report in reports:
        summary = report.get("summary", report)
        for key in counts:
            counts[key] += int(summary.get(key, 0))
    return counts


def bandit_findings(report: dict) -> list[Finding]:
    """bandit's -f json results and the files it could not read."""
    found = [Finding(f"{r['filename']}:{r['line_number']}", r["test_id"],
                     f"{r['issue_text']} (severity {r['issue_severity'].lower()})") for r in report.get("results", [])]
    found += [Finding(e.get("filename", "?"), "error", e.get("reason", "not scanned")) for e in report.get("errors", [])]
    return found


def skips_without_reason(config_text: str, key: str) -> list[str]:
    """The entries of a YAML block list (`key:` then `- ID`) with no `# reason` on their line; an inline list
    (`key: [A, B]`) that is not empty counts as all its entries without one."""
    missing, inside = [], False
    for line in config_text.splitlines():
        stripped = line.strip()
        if re.match(rf"{re.escape(key)}\s*:", stripped):
            inline = stripped.split(":", 1)[1].split("#", 1)[0].strip()
            if inline.startswith("[") and inline.strip("[] "):
                missing += [item.strip() for item in inline.strip("[]").split(",") if item.strip()]
            inside = not inline
            continue
        if inside and stripped.startswith("- "):
            entry, _, comment = stripped[2:].partition("#")
            if not comment.strip():
                missing.append(entry.strip())
        elif inside and stripped and not stripped.startswith("#"):
            inside = False
    return missing


def inline_checkov_skips_without_reason(text: str) -> list[int]:
    """Line numbers of `checkov:skip=ID` with no `:reason` after the ID."""
    return [number for number, line in enumerate(text.splitlines(), 1)
            for match in re.finditer(r"checkov:skip=([A-Z0-9_]+)(:(\S.*))?", line) if not match.group(3)]


def nosec_comments(source: str) -> dict[int, bool]:
    """Each Python comment `# nosec` by line number: True when it names its rule and why (`# nosec B108 # why`)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return {}
    found = {}
    for token in tokens:
        match = NOSEC.search(token.string) if token.type == tokenize.COMMENT else None
        if match:
            found[token.start[0]] = bool(NOSEC_WITH_REASON.match(match.group("rest")))
    return found


def nosec_without_reason(source: str) -> list[int]:
    """Line numbers of `# nosec` comments that do not name their rule and why."""
    return [line for line, explained in nosec_comments(source).items() if not explained]
