"""OpenSCAP on a host without installing it there: this machine's `oscap` with the libraries it links, Debian's
SCAP Security Guide content (ssg-debian) and the homelab's CPE dictionary go over SSH as a tar, run as root from a
temporary directory, and are removed. The profile is ANSSI's (DAT-NT28, the name BP-028 had when ssg-debian
0.1.65 was built) at its intermediary level; each failing rule must be in openscap-accepted.yml, with its reason.

Why the tree travels like lynis's (plugins/security/lynis.py): the hosts have no internet, a package there would
be state the audit leaves behind, and `oscap-chroot` needs the host's root filesystem, which a runner does not
have. The libraries are this machine's: the hosts run the same Debian release as the runner (the C library
itself is the host's own, never sent).

Why Debian 11's benchmark: ssg-debian 0.1.65, the newest Debian 12 ships, has benchmarks for Debian 10 and 11
only. Its one platform (cpe:/o:debian:debian_linux:11) is met on a Debian 12 host by the homelab's CPE dictionary
(openscap/debian12-cpe-dictionary.xml, given to `oscap xccdf eval --cpe`): the vendor content is not edited.
"""

from __future__ import annotations

import functools
import io
import re
import shlex
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from plugins.security.findings import Finding, finding

OSCAP_PROGRAM = Path("/usr/bin/oscap")
DATASTREAM = Path("/usr/share/xml/scap/ssg/content/ssg-debian11-ds.xml")  # ssg-debian (scripts/install.sh)
# oscap's own data: the XSL that renders the HTML report, its CPE dictionary, and the XML schemas it validates the
# homelab's CPE files with. Of OVAL's schemas (nearly all the package's size, one set per OVAL version) only the
# version the homelab's OVAL file declares: the datastream is Debian's, sent unmodified, so the run skips
# validating it (--skip-validation), which is what would need the others.
OSCAP_SHARE = Path("/usr/share/openscap")
OSCAP_DATA = {"xsl": "OSCAP_XSLT_PATH", "cpe": "OSCAP_CPE_PATH", "schemas": "OSCAP_SCHEMA_PATH"}
OVAL_SCHEMAS = "schemas/oval/5.11.2"  # debian12-cpe-oval.xml's schema_version
# ANSSI's levels: minimal, intermediary (average), reinforced (restrictive), high. Intermediary is what ANSSI asks
# of most systems; reinforced and high add multi-user and hostile-environment measures (separate partitions, a
# mandatory access control, kernel settings) an unprivileged container cannot hold: docs/concepts/security.md.
PROFILE = "xccdf_org.ssgproject.content_profile_anssi_np_nt28_average"
RULE_PREFIX = "xccdf_org.ssgproject.content_rule_"
HERE = Path(__file__).parent
CPE_FILES = (HERE / "openscap" / "debian12-cpe-dictionary.xml", HERE / "openscap" / "debian12-cpe-oval.xml")
ACCEPTED_FILE = HERE / "openscap-accepted.yml"
# The C library's parts stay the host's own: sending them would pin the host to this machine's exact build.
HOST_LIBRARIES = re.compile(r"^(libc|libm|libresolv|libpthread|libdl|librt|ld-linux[-\w]*)\.so")
FAILING = ("fail", "error", "unknown")
REPORT_MARK = "@@report"

RUN_SCRIPT = f"""\
set -e
d=$(mktemp -d /tmp/openscap-audit.XXXXXX)
trap 'rm -rf "$d"' EXIT
tar -xf - -C "$d" --no-same-owner
cd "$d"
LD_LIBRARY_PATH="$d/lib" {" ".join(f'{env}="$d/{name}"' for name, env in OSCAP_DATA.items())} \\
  ./oscap xccdf eval --skip-validation --profile {PROFILE} --cpe {CPE_FILES[0].name} \\
  --report "$d/report.html" {DATASTREAM.name} 2>&1 || true
echo {REPORT_MARK}
cat "$d/report.html" 2>/dev/null || true
"""


class AcceptedError(ValueError):
    """openscap-accepted.yml is not a mapping of rule ids to reasons (one line: file, key, what was expected)."""


@dataclass(frozen=True)
class RuleResult:
    """One rule of the profile on one host: its short id (without the SSG prefix), title and result."""

    rule: str
    title: str
    result: str


def linked_libraries(program: Path = OSCAP_PROGRAM) -> list[Path]:
    """The shared libraries `program` loads (ldd's closure), the C library's own parts left out."""
    listing = subprocess.run(["ldd", str(program)], capture_output=True, text=True, check=True).stdout
    found = []
    for line in listing.splitlines():
        match = re.match(r"\s*(\S+) => (/\S+)", line)
        if match and not HOST_LIBRARIES.match(match.group(1)):
            found.append(Path(match.group(2)))
    return found


@functools.cache  # one tree for every host of the audit, built once
def oscap_tree() -> bytes:
    """oscap, its libraries under lib/, the datastream and the homelab's CPE files, as a plain tar (the libraries
    hardly compress: gzip would cost more CPU than the bytes it saves on a LAN)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(OSCAP_PROGRAM, arcname="oscap")
        for library in linked_libraries():
            tar.add(library.resolve(), arcname=f"lib/{library.name}")
        for part in (DATASTREAM, *CPE_FILES):
            tar.add(part, arcname=part.name)
        for name in OSCAP_DATA:
            tar.add(OSCAP_SHARE / name, arcname=name, filter=_without_other_oval_schemas)
    return buffer.getvalue()


def _without_other_oval_schemas(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Keep every member but OVAL's schemas of other versions than the one the homelab's OVAL file declares."""
    parts = info.name.split("/")
    if parts[:2] == ["schemas", "oval"] and len(parts) > 2 and "/".join(parts[:3]) != OVAL_SCHEMAS:
        return None
    return info


def remote_command() -> str:
    """The command run on the host (as the deploy user): sudo sh with the run script."""
    return f"sudo -n sh -c {shlex.quote(RUN_SCRIPT)}"


def split_output(output: str) -> tuple[str, str]:
    """(oscap's own output, the HTML report) of the run script's output."""
    text, _, report = output.partition(REPORT_MARK + "\n")
    return text, report


def parse_results(text: str) -> list[RuleResult]:
    """Each rule's result from `oscap xccdf eval`'s listing (Title / Rule / Ident / Result lines)."""
    results, title, rule = [], "", None
    for key, value in _fields(text):
        if key == "Title":
            title, rule = value.strip(), None
        elif key == "Rule":
            rule = value.strip().removeprefix(RULE_PREFIX)
        elif key == "Result" and rule:
            results.append(RuleResult(rule, title, value.strip()))
            rule = None
    return results


def _fields(text: str) -> list[tuple[str, str]]:
    """(key, value) pairs of the listing: `Key<TAB>value`, or, when oscap thinks its terminal narrow (COLUMNS),
    `Key` alone and the value on the next line after a tab."""
    pairs: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line.startswith("\t") and pairs and not pairs[-1][1]:
            pairs[-1] = (pairs[-1][0], line.strip())
        else:
            key, _, value = line.partition("\t")
            pairs.append((key.strip(), value.strip()))
    return pairs


def load_accepted(path: Path = ACCEPTED_FILE) -> dict[str, str]:
    """{rule id: why its failure is accepted} from openscap-accepted.yml; AcceptedError (one line) if malformed."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise AcceptedError(f"{path}: unreadable ({type(error).__name__}): expected a YAML mapping "
                            "of rule ids to reasons") from None
    if not isinstance(data, dict):
        raise AcceptedError(f"{path}: expected a mapping of rule ids to reasons, got {type(data).__name__}")
    for rule, reason in data.items():
        if not isinstance(rule, str) or not re.fullmatch(r"[a-z0-9_-]+", rule):
            raise AcceptedError(f"{path}: {rule!r}: expected a rule id without its prefix (e.g. partition_for_tmp)")
        if not isinstance(reason, str) or len(reason.strip()) < 10:
            raise AcceptedError(f"{path}: {rule}: expected the reason the rule is accepted (10 characters at least)")
    return dict(data)


def judge_openscap(host: str, output: str, accepted: dict[str, str], where: str) -> Finding:
    """openscap: every rule of the profile passes, is not applicable, or fails and is in the accepted list."""
    text, report = split_output(output)
    results = parse_results(text)
    if not results:
        tail = " ".join(text.strip().splitlines()[-3:])[-300:]
        return finding(host, "openscap", [f"oscap gave no rule result ({tail})"], "", text, where=where, html=report)
    failed = [r for r in results if r.result in FAILING]
    refused = [r for r in failed if r.rule not in accepted]
    counted = {state: sum(r.result == state for r in results) for state in ("pass", "notapplicable")}
    summary = (f"ANSSI BP-028 intermediary: {counted['pass']} pass, {len(failed) - len(refused)} failed and "
               f"accepted, {counted['notapplicable']} not applicable, of {len(results)} rules")
    # An exception the host does not need is shown (it may be lifted), never a failure: the list is every host's.
    unneeded = sorted(r.rule for r in results if r.rule in accepted and r.result not in FAILING)
    if unneeded:
        summary += f"; accepted but not failing here: {', '.join(unneeded)}"
    problems = [f"{r.rule} {r.result} ({r.title}; not in plugins/security/openscap-accepted.yml)" for r in refused]
    if problems:
        problems.append(summary)
    return finding(host, "openscap", problems, summary, text, where=where, html=report)
