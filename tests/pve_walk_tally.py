"""The emulator's schema walk (tests/unit/test_pve_schema_conformance.py) summed up in one line at the end of a run.

A plugin of tests/conftest.py, so that it runs where pytest-xdist's controller gathers the reports.
"""

CONFORMANCE = "tests/unit/test_pve_schema_conformance.py"
_tally: dict[str, int] = {}


def pytest_runtest_logreport(report):
    """Add up what the emulator's schema walk checked (reports come back from every xdist worker)."""
    if not report.nodeid.startswith(CONFORMANCE) or report.when != "call" and report.passed:
        return
    if report.failed:
        _tally["failures"] = _tally.get("failures", 0) + 1
    for key, value in report.user_properties:
        if key == "pve_served_methods":
            _tally[key] = value
        elif key.startswith("pve_"):
            _tally[key] = _tally.get(key, 0) + value


def pytest_terminal_summary(terminalreporter):
    """Print the walk's one line: methods served, checks made, failures."""
    if "pve_served_methods" in _tally:
        terminalreporter.write_line(
            f"lab/pve schema conformance: {_tally['pve_served_methods']} served methods walked; "
            f"{_tally.get('pve_wrong_values', 0)} wrong values refused, {_tally.get('pve_answers', 0)} answers "
            f"matched returns; {_tally.get('failures', 0)} failures")
