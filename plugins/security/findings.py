"""A finding: one control on one host (and subject: a route), passed or not, why, and the tool's full output."""

from __future__ import annotations

from dataclasses import dataclass

from plugins.inventory.security import CONTROLS  # the table's columns: the inventory names them in `accepted`

__all__ = ["CONTROLS", "Finding", "finding"]


@dataclass(frozen=True)
class Finding:
    """The outcome of one control on one host (subject: a route's name, else None), with the evidence."""

    host: str
    control: str
    passed: bool
    message: str
    output: str = ""  # the tool's full output, attached to the report
    subject: str | None = None
    html: str = ""  # a report the tool renders itself (OpenSCAP's), attached beside the output

    def assert_passed(self) -> None:
        """Fail the test with the finding's diagnosis (no traceback: the message is the diagnosis)."""
        if not self.passed:
            import pytest  # only the suite asserts: the audit itself runs without pytest

            pytest.fail(self.message, pytrace=False)


def finding(host: str, control: str, problems: list[str], ok: str, output: str = "",
            subject: str | None = None, where: str | None = None, html: str = "") -> Finding:
    """A finding that passes when problems is empty: its message is `ok`, else every problem, one per clause."""
    if control not in CONTROLS:
        raise ValueError(f"unknown security control {control!r}; controls: {', '.join(CONTROLS)}")
    prefix = f"{where or host}: {control}"
    if problems:
        return Finding(host, control, False, f"{prefix}: " + "; ".join(problems), output, subject, html)
    return Finding(host, control, True, f"{prefix}: {ok}", output, subject, html)
