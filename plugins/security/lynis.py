"""lynis on a host without installing it there: this machine's lynis tree goes over SSH as a tar, runs from a
temporary directory as root, and is removed; its report gives the hardening index and the warnings.

Why not install it on the hosts: they have no internet, and a package there would be state the audit leaves
behind. The tree is Debian's (`lynis` package on the runner: scripts/install.sh).
"""

from __future__ import annotations

import functools
import io
import re
import shlex
import tarfile
from dataclasses import dataclass
from pathlib import Path

from plugins.security.findings import Finding, finding

LYNIS_PROGRAM = Path("/usr/sbin/lynis")
LYNIS_SHARE = Path("/usr/share/lynis")  # include/, db/ (plugins/ ship in /etc/lynis/plugins: not needed)
LYNIS_PROFILE = Path("/etc/lynis/default.prf")
LYNIS_PLUGINS = Path("/etc/lynis/plugins")  # lynis stops ("can't find plugin directory") without one
HOMELAB_PROFILE = Path(__file__).with_name("lynis-homelab.prf")  # appended to Debian's profile: why, in the file
HOMELAB_PLUGIN = Path(__file__).with_name("lynis-plugin_brief_phase1")  # lynis's log off: why, in the file
REPORT_MARK = "@@report"

# lynis refuses include files not owned by root or the caller: the tar carries uid 0, extracted as root.
RUN_SCRIPT = f"""\
set -e
d=$(mktemp -d /tmp/lynis-audit.XXXXXX)
# lynis removes its PID file on a normal exit only: a fatal one would leave it and block the next audit.
trap 'rm -rf "$d"; rm -f /var/run/lynis.pid' EXIT
tar -xzf - -C "$d" --no-same-permissions
cd "$d"
./lynis audit system --quick --no-colors --logfile "$d/lynis.log" --report-file "$d/report.dat" \\
  --profile "$d/default.prf" --plugindir "$d/plugins" 2>&1 || true
echo {REPORT_MARK}
cat "$d/report.dat"
"""


@dataclass(frozen=True)
class LynisReport:
    """What a lynis run says of a host: its hardening index (None if it gave none) and its warnings."""

    index: int | None
    warnings: tuple[str, ...]


@functools.cache  # one tree for every host of the audit, built and gzipped once
def lynis_tree() -> bytes:
    """The lynis program, its include/ and db/ trees and its profile, as a gzipped tar owned by root."""
    buffer = io.BytesIO()

    def as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode = info.mode & 0o750  # lynis refuses group- or world-writable include files
        return info

    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(LYNIS_PROGRAM, arcname="lynis", filter=as_root)
        profile = audit_profile()
        info = as_root(tar.gettarinfo(LYNIS_PROFILE, arcname="default.prf"))
        info.size = len(profile)
        tar.addfile(info, io.BytesIO(profile))
        for part in ("include", "db"):
            tar.add(LYNIS_SHARE / part, arcname=part, filter=as_root)
        tar.add(LYNIS_PLUGINS, arcname="plugins", filter=as_root)
        tar.add(HOMELAB_PLUGIN, arcname="plugins/plugin_brief_phase1", filter=as_root)
    return buffer.getvalue()


def audit_profile() -> bytes:
    """Debian's lynis profile with the homelab's settings after it (a later line wins)."""
    return LYNIS_PROFILE.read_bytes().rstrip(b"\n") + b"\n\n" + HOMELAB_PROFILE.read_bytes()


def remote_command() -> str:
    """The command run on the host (as the deploy user): sudo sh with the run script."""
    return f"sudo -n sh -c {shlex.quote(RUN_SCRIPT)}"


def parse_report(text: str) -> LynisReport:
    """The hardening index and the warnings (`ID: text`) of lynis's report-file (the part after the mark)."""
    report = text.split(REPORT_MARK, 1)[-1]
    index = re.search(r"^hardening_index=(\d+)\s*$", report, re.MULTILINE)
    warnings = []
    for line in report.splitlines():
        if line.startswith("warning[]="):
            fields = line.split("=", 1)[1].split("|")
            warnings.append(f"{fields[0]}: {fields[1]}" if len(fields) > 1 else fields[0])
    return LynisReport(int(index.group(1)) if index else None, tuple(warnings))


def judge_lynis(host: str, output: str, floor: int, where: str) -> Finding:
    """lynis: the hardening index is at or above the inventory's floor; the warnings are listed either way."""
    report = parse_report(output)
    listed = f"; warnings: {' | '.join(report.warnings)}" if report.warnings else "; no warning"
    if report.index is None:
        tail = " ".join(output.strip().splitlines()[-3:])[-300:]
        return finding(host, "lynis", [f"lynis gave no hardening index ({tail})"], "", output, where=where)
    problems = [] if report.index >= floor else [
        f"hardening index {report.index} below the floor {floor} (inventory: security.lynis_floor){listed}"]
    return finding(host, "lynis", problems, f"hardening index {report.index} (floor {floor}){listed}", output,
                   where=where)
