"""Image builds against a flaky mirror: apt and pip retry transient fetch errors, a failure reads in one screen.

The retries are the builder's, not the recipes': the apt configuration is put into the working container
only while a step runs (and taken out before the commit), pip's come from the environment. Neither is
in a recipe's text, so no cached image's hash changes (lab/images/recipe.py: recipe_hash).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

APT_CONF = "etc/apt/apt.conf.d/99lab-build-retries"
# apt retries a failed fetch with growing pauses (Acquire::Retries::Delay is on by default since apt 2.3).
APT_RETRIES = 'Acquire::Retries "5";\nAcquire::http::Timeout "30";\nAcquire::https::Timeout "30";\n'
PIP_ENV = {"PIP_RETRIES": "10", "PIP_TIMEOUT": "60"}
TAIL_LINES = 12
TRANSIENT = re.compile(r"Failed to fetch|Temporary failure|Could not resolve|Connection (timed out|refused|reset)|"
                       r"Unable to connect|Hash Sum mismatch|Mirror sync in progress|\b50[234]\b|Read timed out|"
                       r"ReadTimeoutError|ConnectionError|Undetermined Error", re.IGNORECASE)
# buildah 1.28 follows a failed `run` with a Go panic and its goroutine dump: noise after the tool's message.
GO_NOISE = re.compile(r"^(panic: |goroutine \d+ |\s+/|\S+\(0x|\S+\.go:\d+|created by |\[signal |exit status \d+$)")


@contextlib.contextmanager
def apt_retries(rootfs: Path) -> Iterator[None]:
    """apt in the working container retries transient fetch errors while a step runs; gone afterwards."""
    conf = rootfs / APT_CONF
    if not conf.parent.is_dir():  # not a Debian rootfs (FROM scratch): nothing uses apt
        yield
        return
    conf.write_text(APT_RETRIES)
    try:
        yield
    finally:
        conf.unlink(missing_ok=True)


def env_args() -> list[str]:
    """`buildah run` arguments giving pip its retries."""
    return [arg for key, value in PIP_ENV.items() for arg in ("--env", f"{key}={value}")]


def tool_tail(output: str, lines: int = TAIL_LINES) -> str:
    """The tool's own last lines: buildah's Go panic and goroutine dump cut off, blank lines dropped."""
    kept = []
    for line in output.splitlines():
        if GO_NOISE.match(line):
            if line.startswith("panic: "):
                kept.append(f"(buildah: {line[:160]} — its Go trace omitted)")
            continue
        if line.strip():
            kept.append(line)
    return "\n".join(kept[-lines:])


def what_to_do(output: str, recipe_file: str) -> str:
    """One line: run again when the mirror failed, otherwise look at the recipe's step."""
    if TRANSIENT.search(output):
        return ("what to do: a download failed after its retries (the mirror or the network): run the same command "
                "again; images already built stay cached")
    return f"what to do: the step itself failed: read the lines above and fix the step in {recipe_file}"
