"""One remote command per host: the probes' commands in one script, its output split back per probe.

Identical commands (docker's container list, the host's one dpkg-query) run once and feed every probe
that reads them.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from plugins.health.probes import Probe
from plugins.health.results import FAIL, CheckResult, result, where

if TYPE_CHECKING:
    from plugins.inventory import Host


def probe_script(commands: list[str], nonce: str) -> str:
    """One shell script running each command as a shell function, its output framed by markers with its exit code.

    A command is a function's body: it ends with `return`, never `exit`. A function runs in the login shell itself,
    where a subshell per command was a fork each, the largest part of the script's CPU on a host after the
    programs it runs (docs/reference/figures.md).
    """
    parts = []
    for index, command in enumerate(commands):
        parts.append(f"echo '@@{nonce} begin {index}'; probe_{index}() {{\n{command}\n}}; probe_{index} </dev/null 2>&1; "
                     f"rc=$?; echo; echo \"@@{nonce} end {index} $rc\"")
    return "\n".join(parts)


def as_script(command: str) -> str:
    """A probe's command as a script of its own (ssh's command line): its body called as a function."""
    return f"probe() {{\n{command}\n}}; probe"


# One pattern for every nonce (compiled once, not once per host): a frame counts only with this run's nonce.
_FRAME = re.compile(r"@@(\w+) begin (\d+)\n(.*?)\n?\n@@\1 end \2 (\d+)", re.DOTALL)


def parse_script_output(text: str, count: int, nonce: str) -> list[tuple[int, str]]:
    """Split the script's output back into (exit code, output) per command; missing ones get 255."""
    found: dict[int, tuple[int, str]] = {}
    for match in _FRAME.finditer(text):
        if match.group(1) == nonce:
            found[int(match.group(2))] = (int(match.group(4)), match.group(3))
    return [found.get(index, (255, "no output from the host")) for index in range(count)]


def run_probes(host: Host, conn, probes: list[Probe], first_run: Callable[[str], str | None] | None = None,
               on_no_output: Callable[[], None] | None = None) -> list[CheckResult]:
    """Run these probes on one host in ONE remote command (identical commands run once); judge each.

    first_run, if given, may run the script itself (e.g. as the SSH master's first session) and give its
    stdout, or None to let conn run it. on_no_output, if given, is called when no command's output came back
    at all (the session itself failed), and the script is run once more through a fresh conn().
    """
    commands = list(dict.fromkeys(p.command for p in probes))
    if not commands:
        return []
    nonce = secrets.token_hex(6)
    script = probe_script(commands, nonce)
    try:
        stdout = first_run(script) if first_run else None
        if stdout is None:
            stdout = conn().run(script).stdout if callable(conn) else conn.run(script).stdout
        outcomes = parse_script_output(stdout, len(commands), nonce)
        if on_no_output is not None and f"@@{nonce} begin" not in (stdout or ""):
            on_no_output()
            stdout = conn().run(script).stdout if callable(conn) else conn.run(script).stdout
            outcomes = parse_script_output(stdout, len(commands), nonce)
    except RuntimeError as exc:  # testinfra raises when ssh itself fails (exit 255)
        error = getattr(exc.args[0], "stderr", "") if exc.args else ""
        text = " ".join(str(error).split())[-200:] or "ssh failed"
        return [result(host, p.check, FAIL, f"{where(host)}: cannot run the check over ssh: {text}", p.subject)
                for p in probes]
    by_command = dict(zip(commands, outcomes, strict=True))
    return [p.judge(host, *by_command[p.command]) for p in probes]
