"""How a test reads in the report: its title, its parameters and its labels, as people say them.

A deploy stage's test reads `ansible › proxy › the host is configured` (epic deploy, feature the stage,
story the host); a health test reads `health › app-demo › rsync` (epic health, feature the check's
column, story the host). A parameter shows as the host's name or `host/subject`, never as the repr
of a Host object. Read from the `stage` and `check` markers and the health cell; nothing imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

SEPARATOR = " › "
HEALTH_CELL = "health_cell"  # the user property plugins/health/table.py gives a health test: (host, column)


@dataclass(frozen=True)
class Naming:
    """What the report shows for one test: title, labels and readable parameters."""

    title: str
    epic: str
    feature: str
    story: str = ""
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def labels(self) -> dict[str, str]:
        """epic, feature and (when the test is about one host) story."""
        found = {"epic": self.epic, "feature": self.feature, "story": self.story}
        return {name: value for name, value in found.items() if value}


def readable(value: Any) -> str:
    """A parameter as a person names it: a host's hostname, a pair as `host/subject`, a service's name."""
    hostname = getattr(value, "hostname", None)
    if isinstance(hostname, str):
        return hostname
    if isinstance(value, (tuple, list)):
        return "/".join(readable(part) for part in value)
    name = getattr(value, "name", None)
    if isinstance(name, str) and not isinstance(value, type):
        return name
    return str(value)


def sentence(item: pytest.Item) -> str:
    """The test function's name as the sentence it is: test_the_plan_is_computed → the plan is computed."""
    name = getattr(item, "originalname", None) or item.name.split("[", 1)[0]
    return name.removeprefix("test_").replace("_", " ")


def parameters_of(item: pytest.Item) -> dict[str, str]:
    """The test's parameters, each readable."""
    callspec = getattr(item, "callspec", None)
    return {name: readable(value) for name, value in (callspec.params if callspec else {}).items()}


def naming_of(item: pytest.Item) -> Naming | None:
    """The report's naming of a deploy stage's or a health check's test; None for any other test."""
    parameters = parameters_of(item)
    subject = "/".join(parameters.values())
    host = subject.split("/", 1)[0]
    stage = item.get_closest_marker("stage")
    if stage is not None and stage.args:
        feature = str(stage.args[0])
        title = SEPARATOR.join(part for part in (feature, subject, sentence(item)) if part)
        return Naming(title, "deploy", feature, host, parameters)
    cell = dict(item.user_properties).get(HEALTH_CELL)
    check = item.get_closest_marker("check")
    if cell is not None or check is not None:
        cell_host, column = cell if cell else (host, str(check.args[0]) if check.args else sentence(item))
        rest = subject.split("/", 1)[1] if "/" in subject else ""
        title = SEPARATOR.join(part for part in ("health", cell_host or subject, column, rest) if part)
        return Naming(title, "health", column, cell_host or host, parameters)
    return None
