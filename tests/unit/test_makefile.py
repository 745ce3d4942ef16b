"""`make help` lists every target with its one line, and is what a bare `make` does."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _make(*args: str) -> str:
    return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), *args], capture_output=True, text=True,
                          timeout=60, check=True).stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_help_lists_every_phony_target_with_its_line():
    """Each .PHONY target appears once, with the text of its `## ` comment; a bare `make` prints the same."""
    makefile = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", makefile, re.MULTILINE).group(1).split()
    described = dict(re.findall(r"^([a-z][a-z-]*):[^#\n]*## (.*)$", makefile, re.MULTILINE))
    assert set(phony) == set(described), f"targets without a ## line: {sorted(set(phony) - set(described))}"
    shown = _make("help")
    for target in phony:
        assert re.search(rf"^  make {re.escape(target)} +{re.escape(described[target])}$", shown, re.MULTILINE), target
    assert _make() == shown
