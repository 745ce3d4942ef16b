"""ansible/ is ansible-lint clean (profile production, ansible/.ansible-lint). Slow (ansible-lint over every role and playbook):
deselect with `-k "not lint"` when iterating."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from plugins.tools.playbooks import ANSIBLE_DIR

pytestmark = pytest.mark.unit

VENV_BIN = Path(sys.executable).parent


@pytest.mark.skipif(shutil.which("ansible-lint", path=str(VENV_BIN)) is None, reason="ansible-lint not installed")
def test_roles_and_playbooks_are_ansible_lint_clean():
    """ansible-lint (profile production, ansible/.ansible-lint) reports nothing."""
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}
    done = subprocess.run(
        [str(VENV_BIN / "ansible-lint"), "--offline"],
        check=False,
        cwd=ANSIBLE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
