"""The one error an inventory raises: every problem as (key path, what was expected and found[, its file])."""

from __future__ import annotations

# (key path, message) in the file the error is about, or (key path, message, file) for a problem that lives in
# another file: a service declaration (services/<name>.yml) the inventory runs.
Problem = tuple[str, str] | tuple[str, str, str]


class InventoryError(ValueError):
    """An inventory that cannot be used; str() is one line: `file: key.path: expected …, found …`."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        super().__init__("; ".join(self.lines()))

    def lines(self) -> list[str]:
        """One line per problem, each naming its file (and the key or line)."""
        return [problem_line(self.source, problem) for problem in self.problems]


def problem_line(source: str, problem: Problem) -> str:
    """`file: key.path: message` for one problem (its own file when it names one, else source)."""
    path, message, *elsewhere = problem
    where = elsewhere[0] if elsewhere else source
    return f"{where}: {path}: {message}" if path else f"{where}: {message}"
