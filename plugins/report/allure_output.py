"""What reaches the Allure results: attachments, steps, results of their own, environment, categories.

Harmless when allure is not active. Every text that reaches the report passes through the Redactor
first. plugins/report/plugin.py writes environment.properties and categories.json at session end.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from plugins.report.redaction import REDACTOR, redact

try:
    import allure
    import allure_commons
    from allure_commons.logger import AllureFileLogger
    from allure_commons.model2 import Attachment, Label, Parameter, StatusDetails, TestResult
except ImportError:  # allure-pytest not installed: helpers become no-ops
    allure = None

ENVIRONMENT_KEY = pytest.StashKey[dict]()

# Allure matches categories in order, first match wins; its (Java) regexes must match the whole
# message, which allure-pytest starts with the exception's class name.
INFRASTRUCTURE_PATTERN = (
    r"(?s).*(ProxmoxError|TaskFailed|TaskTimeout|InventoryError|FencedConnection|ConnectionError|"
    r"ConnectTimeout|ReadTimeout|SSLError|TimeoutError|authentication failed|permission denied|"
    r"not found on https?://|cannot connect to|did not answer within|GitHub answered).*"
)
CATEGORIES = [
    {
        "name": "Infrastructure failures",
        "description": "Proxmox, network, TLS, credentials or inventory: the environment, not the code under test",
        "matchedStatuses": ["failed", "broken"],
        "messageRegex": INFRASTRUCTURE_PATTERN,
    },
    {
        "name": "Product defects",
        "description": "An assertion about the deployed homelab failed",
        "matchedStatuses": ["failed"],
    },
    {
        "name": "Test defects",
        "description": "The test or a fixture raised an unexpected error",
        "matchedStatuses": ["broken"],
    },
]


def attach_text(name: str, text: Any) -> None:
    """Attach redacted text to the current Allure test or step (no-op without allure, or outside a test)."""
    if allure is not None and _in_a_test():
        allure.attach(redact(text), name=redact(name), attachment_type=allure.attachment_type.TEXT)


def attach_html(name: str, html: str) -> None:
    """Attach a redacted HTML page (a tool's own report) to the current Allure test (no-op without allure)."""
    if allure is not None and _in_a_test():
        allure.attach(redact(html), name=redact(name), attachment_type=allure.attachment_type.HTML)


def attach_json(name: str, obj: Any) -> None:
    """Attach a redacted JSON document to the current Allure test or step (no-op without allure, or outside a test)."""
    if allure is None or not _in_a_test():
        return
    data = REDACTOR.redact_obj(obj)
    allure.attach(json.dumps(data, indent=2, sort_keys=True, default=str), name=redact(name),
                  attachment_type=allure.attachment_type.JSON)


def _in_a_test() -> bool:
    """Whether allure-pytest has a test or step open to attach to (none at session start or finish)."""
    logger = _allure_logger()
    if logger is None:
        return False
    try:
        return logger._last_executable() is not None  # allure has no public "is a test open"
    except (KeyError, StopIteration):  # a thread of its own with nothing open
        return False


def _allure_logger() -> Any:
    """allure-pytest's reporter of this session, or None when allure is not writing results."""
    if allure is None:
        return None
    for plugin in allure_commons.plugin_manager.get_plugins():
        logger = getattr(plugin, "allure_logger", None)
        if logger is not None:
            return logger
    return None


def _open_test() -> Any:
    """The test result allure-pytest has open in this thread, or None."""
    logger = _allure_logger()
    if logger is None:
        return None
    try:
        return logger.get_test(None)
    except (KeyError, StopIteration):
        return None


def name_test(title: str, parameters: Mapping[str, str], labels: Mapping[str, str]) -> None:
    """Give the open Allure test its title, its parameters' readable values and labels (redacted; no-op without one)."""
    test = _open_test()
    if test is None:
        return
    test.name = redact(title)
    shown = {name: redact(value) for name, value in parameters.items()}
    for parameter in test.parameters:
        if parameter.name in shown:
            parameter.value = shown.pop(parameter.name)
    test.parameters += [Parameter(name=name, value=value) for name, value in shown.items()]
    present = {(label.name, label.value) for label in test.labels}
    test.labels += [Label(name=name, value=redact(value)) for name, value in labels.items()
                    if (name, value) not in present]


EXTENSIONS = {"text/plain": "txt", "text/csv": "csv"}


def write_result(target: str | Path, *, name: str, full_name: str, status: str, message: str,
                 labels: Mapping[str, str], attachments: Mapping[str, str | tuple[str, str]], started: float,
                 stopped: float) -> Path:
    """Write one Allure test result of its own, with its attachments, for what no running test can carry.

    The end of a run (the rollback, the notification) and the health summary have no running test to
    attach to: each gets its own result in the results directory, as allure-pytest would write it. An
    attachment is a text, or (text, mime type) for another type than text/plain. Everything is redacted.
    """
    writer = AllureFileLogger(target, clean=False)
    files = []
    for title, body in attachments.items():
        text, mime = (body, "text/plain") if isinstance(body, str) else body
        source = f"{uuid.uuid4()}-attachment.{EXTENSIONS.get(mime, 'txt')}"
        writer.report_attached_data(body=redact(text), file_name=source)
        files.append(Attachment(name=redact(title), source=source, type=mime))
    result = TestResult(
        uuid=str(uuid.uuid4()), historyId=hashlib.md5(full_name.encode(), usedforsecurity=False).hexdigest(),
        testCaseId=hashlib.md5(full_name.encode(), usedforsecurity=False).hexdigest(), fullName=full_name,
        name=redact(name), status=status, stage="finished", start=int(started * 1000), stop=int(stopped * 1000),
        statusDetails=StatusDetails(message=redact(message)) if message else None,
        labels=[Label(name=key, value=redact(value)) for key, value in _with_epic(labels).items()],
        attachments=files,
    )
    writer.report_result(result)
    return Path(target)


@contextlib.contextmanager
def step(title: str) -> Iterator[None]:
    """An Allure step with a redacted title (a plain block without allure)."""
    if allure is None:
        yield
        return
    with allure.step(redact(title)):
        yield


def set_environment(config: pytest.Config, **properties: Any) -> None:
    """Record properties (environment, node, run id, …) for environment.properties; values redacted."""
    config.stash.setdefault(ENVIRONMENT_KEY, {}).update(
        {key: redact(value) for key, value in properties.items() if value is not None}
    )


def write_environment(alluredir: str | Path, properties: Mapping[str, Any]) -> Path:
    """Write environment.properties (key=value lines, redacted) into the alluredir."""
    path = Path(alluredir) / "environment.properties"
    path.parent.mkdir(parents=True, exist_ok=True)
    # `make health` after `make deploy` adds to the deploy's results: keep what the deploy knew (its run id,
    # the Proxmox and Terraform versions), this session's values first.
    merged = {**_read_properties(path), **{_property_key(key): _property_value(redact(value))
                                          for key, value in properties.items()}}
    lines = [f"{key}={value}" for key, value in sorted(merged.items())]
    path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    return path


def write_executor(alluredir: str | Path, executor: Mapping[str, Any]) -> Path:
    """Write executor.json (who ran the tests: the CI's name, build and its link) into the alluredir."""
    path = Path(alluredir) / "executor.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(REDACTOR.redact_obj(dict(executor)), indent=2) + "\n", encoding="utf-8")
    return path


def write_categories(alluredir: str | Path) -> Path:
    """Write categories.json (infrastructure failures vs product and test defects) into the alluredir."""
    path = Path(alluredir) / "categories.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(CATEGORIES, indent=2) + "\n", encoding="utf-8")
    return path


def alluredir(config: pytest.Config) -> Path | None:
    """The --alluredir of this session, or None when allure-pytest is not writing results."""
    value = getattr(config.option, "allure_report_dir", None)
    return Path(value) if value else None


def _with_epic(labels: Mapping[str, str]) -> dict[str, str]:
    """The labels, with the suite as epic when none is given (the report's tree groups by epic)."""
    found = dict(labels)
    if "epic" not in found and found.get("suite"):
        found["epic"] = found["suite"]
    return found


def _read_properties(path: Path) -> dict[str, str]:
    """The key=value lines of an existing environment.properties (already escaped), or nothing."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _property_key(key: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in str(key))


def _property_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "")
