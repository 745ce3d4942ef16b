"""Aligned text tables for the terminal and the report's attachments."""

from __future__ import annotations

from collections.abc import Sequence


def render(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Render an aligned text table: the header, a rule, one line per row."""
    widths = [max(len(str(r[i])) for r in [columns, *rows]) for i in range(len(columns))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in [columns, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
