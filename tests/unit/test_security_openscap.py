"""OpenSCAP's control: oscap's listing parsed, failing rules judged against the accepted list, the list itself
checked (each rule in the profile, each with its reason), the tree sent to the hosts, and the homelab's CPE
dictionary making Debian 11's benchmark apply to this Debian 12 machine (a real oscap run, read-only)."""

from __future__ import annotations

import re
import subprocess
import tarfile
from io import BytesIO
from pathlib import Path

import pytest

from plugins.security import openscap

# Shaped as `oscap xccdf eval` 1.3.7 prints each rule (tab-separated), then the run script's report mark.
LISTING = """\
--- Starting Evaluation ---

Title\tVerify Permissions on shadow File
Rule\txccdf_org.ssgproject.content_rule_file_permissions_etc_shadow
Ident\tCCE-83487-3
Result\tpass

Title\tEnsure /tmp Located On Separate Partition
Rule\txccdf_org.ssgproject.content_rule_partition_for_tmp
Result\tfail

Title\tEnable Kernel Parameter to Enforce ASLR
Rule\txccdf_org.ssgproject.content_rule_sysctl_kernel_randomize_va_space
Result\tnotapplicable

Title\tVerify Permissions on System.map Files
Rule\txccdf_org.ssgproject.content_rule_file_permissions_systemmap
Result\terror
@@report
<html><body>the report</body></html>
"""
ACCEPTED = {"partition_for_tmp": "the container's root is one volume on the node's storage",
            "file_permissions_systemmap": "no kernel image in a container"}


def test_the_listing_gives_each_rule_its_title_and_result_without_the_prefix():
    text, report = openscap.split_output(LISTING)
    results = openscap.parse_results(text)
    assert [(r.rule, r.result) for r in results] == [
        ("file_permissions_etc_shadow", "pass"), ("partition_for_tmp", "fail"),
        ("sysctl_kernel_randomize_va_space", "notapplicable"), ("file_permissions_systemmap", "error")]
    assert results[1].title == "Ensure /tmp Located On Separate Partition"
    assert report.strip() == "<html><body>the report</body></html>"


def test_the_narrow_terminal_layout_parses_alike():
    """oscap puts each value on its own line when it thinks its terminal narrow (COLUMNS): same results."""
    narrow = "Title\n\tEnsure /tmp Located On Separate Partition\nRule\n\txccdf_org.ssgproject.content_rule_partition_for_tmp" \
             "\nResult\n\tfail\n"
    assert openscap.parse_results(narrow) == [openscap.RuleResult(
        "partition_for_tmp", "Ensure /tmp Located On Separate Partition", "fail")]


def test_failed_rules_all_accepted_pass_with_the_counts_and_the_html_report():
    found = openscap.judge_openscap("proxy", LISTING, ACCEPTED, "proxy (198.18.0.200)")
    assert found.passed, found.message
    assert found.message == ("proxy (198.18.0.200): openscap: ANSSI BP-028 intermediary: 1 pass, 2 failed and "
                             "accepted, 1 not applicable, of 4 rules")
    assert "the report" in found.html and "@@report" not in found.output


def test_an_accepted_rule_that_does_not_fail_here_is_named_not_failed():
    """The list is every host's: an exception one host does not need is shown, so that it can be lifted."""
    accepted = {**ACCEPTED, "file_permissions_etc_shadow": "a reason long enough"}
    found = openscap.judge_openscap("proxy", LISTING, accepted, "proxy")
    assert found.passed and found.message.endswith("; accepted but not failing here: file_permissions_etc_shadow")


@pytest.mark.parametrize("missing", ["partition_for_tmp", "file_permissions_systemmap"])
def test_a_failed_or_errored_rule_not_accepted_fails_naming_it(missing):
    """fail and error both count: a rule oscap could not evaluate is not a pass."""
    accepted = {rule: why for rule, why in ACCEPTED.items() if rule != missing}
    found = openscap.judge_openscap("proxy", LISTING, accepted, "proxy")
    assert not found.passed
    assert f"{missing} " in found.message and "not in plugins/security/openscap-accepted.yml" in found.message
    other = next(rule for rule in ACCEPTED if rule != missing)
    assert f"{other} " not in found.message  # the accepted one is counted, not named


def test_no_rule_result_fails_quoting_the_last_lines():
    """oscap refusing to run (a missing library, no sudo) gives no result: a failure, not a pass."""
    found = openscap.judge_openscap("proxy", "./oscap: error while loading shared libraries: libxml2.so.2\n", {}, "proxy")
    assert not found.passed and "oscap gave no rule result (./oscap: error while loading" in found.message


@pytest.mark.parametrize(("content", "expected"), [
    ("- partition_for_tmp\n", "expected a mapping of rule ids to reasons, got list"),
    ("xccdf_org.ssgproject.content_rule_partition_for_tmp: a long enough reason\n",
     "expected a rule id without its prefix"),
    ("partition_for_tmp: short\n", "partition_for_tmp: expected the reason the rule is accepted"),
    ("partition_for_tmp: [a, b]\n", "partition_for_tmp: expected the reason the rule is accepted"),
    ("partition_for_tmp: 'unclosed\n", "unreadable (ScannerError)"),
])
def test_a_malformed_accepted_list_is_refused_in_one_line(tmp_path, content, expected):
    path = tmp_path / "accepted.yml"
    path.write_text(content)
    with pytest.raises(openscap.AcceptedError) as raised:
        openscap.load_accepted(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message


def profile_rules() -> set[str]:
    """The rules ANSSI's intermediary profile selects in the datastream (short ids), read from its Profile element."""
    text = openscap.DATASTREAM.read_text()
    start = text.index(f'Profile id="{openscap.PROFILE}"')
    profile = text[start:text.index("Profile>", start)]
    return set(re.findall(rf'idref="{openscap.RULE_PREFIX}([\w-]+)" selected="true"', profile))


@pytest.mark.skipif(not openscap.DATASTREAM.exists(), reason="ssg-debian is not installed (scripts/install.sh)")
def test_every_accepted_rule_is_in_the_profile_and_has_its_reason():
    """A typo or a rule of another profile would accept nothing: each id is one the profile selects."""
    accepted = openscap.load_accepted()
    selected = profile_rules()
    assert accepted and selected
    assert sorted(set(accepted) - selected) == []


@pytest.mark.skipif(not openscap.OSCAP_PROGRAM.exists(), reason="openscap-scanner is not installed")
def test_the_tree_holds_oscap_its_libraries_and_the_content_but_not_the_c_library():
    with tarfile.open(fileobj=BytesIO(openscap.oscap_tree())) as tar:
        names = set(tar.getnames())
    assert {"oscap", "lib/libopenscap.so.25", openscap.DATASTREAM.name,
            *(p.name for p in openscap.CPE_FILES)} <= names
    assert not [n for n in names if Path(n).name.startswith(("libc.so", "ld-linux"))]
    assert {"xsl", "cpe", "schemas/cpe/2.3/cpe-dictionary_2.3.xsd", "schemas/common/xml.xsd"} <= names
    assert {n.split("/")[2] for n in names if n.startswith("schemas/oval/")} == {"5.11.2"}


@pytest.mark.skipif(not (openscap.OSCAP_PROGRAM.exists() and Path("/etc/debian_version").read_text().startswith("12.")),
                    reason="needs oscap on Debian 12")
def test_the_homelab_cpe_dictionary_makes_the_debian_11_benchmark_apply_to_debian_12():
    """Without it every rule is notapplicable on Debian 12 (the benchmark's platform is Debian 11); with it oscap
    evaluates them. Read-only: oscap reads this machine's files and writes its results nowhere."""
    def results(*cpe: str) -> set[str]:
        run = subprocess.run(["oscap", "xccdf", "eval", "--profile", openscap.PROFILE, *cpe, str(openscap.DATASTREAM)],
                             capture_output=True, text=True, check=False)
        return {r.result for r in openscap.parse_results(run.stdout)}

    assert results() == {"notapplicable"}
    assert "pass" in results("--cpe", str(openscap.CPE_FILES[0]))
