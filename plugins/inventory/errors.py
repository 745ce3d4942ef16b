"""The one error an inventory raises: every problem as (key path, what was expected and found)."""

from __future__ import annotations

Problem = tuple[str, str]


class InventoryError(ValueError):
    """An inventory that cannot be used; str() is one line: `file: key.path: expected …, found …`."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        super().__init__("; ".join(self.lines()))

    def lines(self) -> list[str]:
        """One line per problem, each naming the file (and the key or line)."""
        return [f"{self.source}: {path}: {message}" if path else f"{self.source}: {message}"
                for path, message in self.problems]
