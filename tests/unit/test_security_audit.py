"""The security audit's parsing and judging, on recorded or built tool outputs: ssh-audit's JSON, `sshd -T`,
authorized_keys, APT's periodic settings, Docker's listeners and containers, lynis's report, sslyze's certificate
result, the proxy's headers; the inventory's floors; the host × control table."""

from __future__ import annotations

import datetime as dt
import json
import tarfile
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace

import pytest
from broken_inventory import lab_document, one_line_error, write
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sslyze import ScanCommandAttemptStatusEnum

from plugins.inventory import load_inventory
from plugins.security import host_facts, lynis, ssh_audit, tls
from plugins.security.findings import CONTROLS, finding
from plugins.security.table import table_rows

DEPLOY_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDeclaredKeyOfTheRunnerxxxxxxxxxxxxxxxxxxxx runner"
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAnIntruderKeyxxxxxxxxxxxxxxxxxxxxxxxxxx laptop"

# Shaped as ssh-audit 3.9.0 prints with --json (fields not read here left out).
SSH_AUDIT_JSON = {
    "target": "198.18.0.200:22",
    "kex": [{"algorithm": "curve25519-sha256", "notes": {}},
            {"algorithm": "ecdh-sha2-nistp256", "notes": {"fail": [("using elliptic curves that are suspected "
                                                                   "as being backdoored by the U.S. NSA")]}}],
    "key": [{"algorithm": "ssh-ed25519", "notes": {}}],
    "enc": [{"algorithm": "aes128-ctr", "notes": {}},
            {"algorithm": "3des-cbc", "notes": {"fail": ["using broken & deprecated 3DES cipher"],
                                                "warn": ["using weak cipher mode"]}}],
    "mac": [{"algorithm": "hmac-sha2-256-etm@openssh.com", "notes": {"info": ["available since OpenSSH 6.2"]}}],
}


def test_ssh_audit_failing_algorithms_are_named_with_their_reason():
    """Only the `fail` notes count (a warning or an info is no failure), each named with its kind and reason."""
    failing = ssh_audit.failing_algorithms(ssh_audit.parse_report(json.dumps(SSH_AUDIT_JSON)))
    assert failing == [("key exchange ecdh-sha2-nistp256 (using elliptic curves that are suspected as being "
                       "backdoored by the U.S. NSA)"), "cipher 3des-cbc (using broken & deprecated 3DES cipher)"]
    clean = {k: [e for e in v if not e["notes"].get("fail")] if isinstance(v, list) else v
             for k, v in SSH_AUDIT_JSON.items()}
    assert ssh_audit.failing_algorithms(clean) == []


def test_ssh_audit_without_json_is_no_report():
    """A connection error prints text, not JSON: no report (the finding then quotes the text)."""
    assert ssh_audit.parse_report("(EXCEPTION) [Errno 111] Connection refused") is None
    assert ssh_audit.audit_command("198.18.0.200")[-1] == "198.18.0.200:22"


FACTS = f"""\
@@sshd
port 22
permitrootlogin without-password
passwordauthentication no
kbdinteractiveauthentication no
ciphers aes128-ctr
@@keys
file /root/.ssh/authorized_keys
{DEPLOY_KEY}
file /home/deploy/.ssh/authorized_keys
# the runner
{DEPLOY_KEY}
@@upgrades
package install ok installed
APT::Periodic "";
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
@@listeners
LISTEN 0 4096 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=90,fd=3))
@@dockerd
/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock
@@containers
/traefik|false|/opt/homelab/traefik,
/promtail|false|/var/lib/docker/containers,/run/docker.sock,
"""


def test_the_facts_command_output_splits_into_its_sections():
    """Each `@@name` line opens a section; sshd -T becomes {keyword: value}."""
    facts = host_facts.sections(FACTS)
    assert set(facts) == {"sshd", "keys", "upgrades", "listeners", "dockerd", "containers"}
    assert host_facts.sshd_settings(facts["sshd"])["permitrootlogin"] == "without-password"


def test_sshd_auth_fails_on_passwords_in_its_settings_or_its_offer():
    """PasswordAuthentication yes, or sshd offering keyboard-interactive, fails ssh-auth and says which."""
    settings = host_facts.sshd_settings(host_facts.sections(FACTS)["sshd"])
    assert host_facts.judge_auth("proxy", settings, ("publickey",), "proxy (198.18.0.200)", "").passed
    opened = dict(settings, passwordauthentication="yes")
    found = host_facts.judge_auth("proxy", opened, ("publickey", "password"), "proxy (198.18.0.200)", "")
    assert not found.passed
    assert "passwordauthentication is yes, expected no" in found.message
    assert "sshd offers password" in found.message and found.message.startswith("proxy (198.18.0.200): ssh-auth:")
    assert not host_facts.judge_auth("proxy", {}, ("publickey",), "proxy", "").passed


@pytest.mark.parametrize(("value", "passed"), [("prohibit-password", True), ("without-password", True),
                                               ("no", True), ("yes", False), (None, False)])
def test_root_logs_in_by_key_only(value, passed):
    """PermitRootLogin yes (or unknown) fails root-login."""
    settings = {"permitrootlogin": value} if value else {}
    assert host_facts.judge_root_login("proxy", settings, "proxy", "").passed is passed


def test_only_declared_keys_pass_and_an_extra_key_is_named_by_fingerprint():
    """Every authorized_keys file is read; a key the inventory does not declare fails, named by its fingerprint."""
    keys = host_facts.sections(FACTS)["keys"]
    assert host_facts.judge_keys("proxy", keys, [DEPLOY_KEY], "proxy").passed
    added = keys + "\n" + OTHER_KEY
    found = host_facts.judge_keys("proxy", added, [DEPLOY_KEY], "proxy")
    assert not found.passed and "/home/deploy/.ssh/authorized_keys holds keys" in found.message
    assert "SHA256:" in found.message and "AAAAC3" not in found.message
    assert not host_facts.judge_keys("proxy", keys, [""], "proxy").passed  # no declared key: nothing to trust


def test_unattended_upgrades_need_the_package_and_both_periodic_settings():
    """Installed and daily passes; the package missing or a periodic setting at 0 fails, naming it."""
    upgrades = host_facts.sections(FACTS)["upgrades"]
    assert host_facts.judge_upgrades("proxy", upgrades, "proxy").passed
    missing = upgrades.replace("package install ok installed", "dpkg-query: no packages found matching x")
    assert "package unattended-upgrades is not installed" in host_facts.judge_upgrades("p", missing, "p").message
    off = upgrades.replace('Unattended-Upgrade "1"', 'Unattended-Upgrade "0"')
    assert "APT::Periodic::Unattended-Upgrade is 0" in host_facts.judge_upgrades("p", off, "p").message


def test_docker_fails_on_a_tcp_socket_a_privileged_container_or_an_undeclared_socket_mount():
    """Each of the three is named; the socket mount passes where the container's declaration has it."""
    facts = host_facts.sections(FACTS)
    assert host_facts.judge_docker("proxy", facts, ["promtail"], "proxy").passed
    assert "container promtail mounts the Docker socket" in host_facts.judge_docker("proxy", facts, [], "p").message
    bad = dict(facts, containers=facts["containers"].replace("/traefik|false", "/traefik|true"),
               listeners=facts["listeners"] + '\nLISTEN 0 4096 *:2375 *:* users:(("dockerd",pid=7,fd=9))',
               dockerd=facts["dockerd"] + " -H tcp://0.0.0.0:2375")
    message = host_facts.judge_docker("proxy", bad, ["promtail"], "proxy").message
    assert "container traefik is privileged" in message and "dockerd listens on TCP: *:2375" in message
    assert "tcp:// host" in message


LYNIS_OUTPUT = """\
[+] Initializing program
  Hardening index : 71 [##############      ]
@@report
report_version_major=1
hardening_index=71
warning[]=PKGS-7392|Found one or more vulnerable packages.|-|-|
warning[]=FIRE-4512|iptables module(s) loaded, but no rules active|-|-|
suggestion[]=DEB-0280|Install libpam-tmpdir|-|-|
"""


def test_lynis_report_gives_the_index_and_the_warnings():
    """The report-file's hardening_index and warning[] lines (suggestions are not warnings)."""
    report = lynis.parse_report(LYNIS_OUTPUT)
    assert report.index == 71
    assert report.warnings == ("PKGS-7392: Found one or more vulnerable packages.",
                               "FIRE-4512: iptables module(s) loaded, but no rules active")


@pytest.mark.parametrize(("floor", "passed"), [(70, True), (71, True), (72, False)])
def test_lynis_index_is_held_to_the_floor_and_warnings_are_listed(floor, passed):
    """At or above the floor passes; below fails naming both numbers and the inventory key; warnings always listed."""
    found = lynis.judge_lynis("proxy", LYNIS_OUTPUT, floor, "proxy (198.18.0.200)")
    assert found.passed is passed
    assert "PKGS-7392" in found.message
    if not passed:
        assert f"hardening index 71 below the floor {floor} (inventory: security.lynis_floor)" in found.message


def test_lynis_without_a_report_fails_quoting_its_last_lines():
    """lynis refusing to run (its include files' owner, no sudo) gives no index: a failure, not a pass."""
    found = lynis.judge_lynis("proxy", "sudo: a password is required\n", 0, "proxy")
    assert not found.passed and "sudo: a password is required" in found.message


def test_the_lynis_tree_is_owned_by_root_and_writable_by_no_one_else():
    """lynis refuses include files owned by another user or writable by group or others."""
    with tarfile.open(fileobj=BytesIO(lynis.lynis_tree()), mode="r:gz") as tar:
        members = tar.getmembers()
    names = {m.name for m in members}
    assert {"lynis", "default.prf", "include/consts", "include/functions", "plugins"} <= names
    assert all(m.uid == 0 and m.gid == 0 and not m.mode & 0o022 for m in members)


def test_the_lynis_profile_is_debians_with_the_homelab_settings_last():
    """lynis keeps a key's last value: the homelab's lines come after Debian's, and ignore what Debian ignores and
    the package-owned CA store only."""
    with tarfile.open(fileobj=BytesIO(lynis.lynis_tree()), mode="r:gz") as tar:
        profile = tar.extractfile("default.prf").read().decode()
    assert profile.startswith(lynis.LYNIS_PROFILE.read_text().rstrip("\n"))

    def last(text: str, key: str) -> set[str]:
        lines = [line for line in text.splitlines() if line.startswith(f"{key}=")]
        return set(lines[-1].split("=", 1)[1].split(":")) - {""}

    key = "ssl-certificate-paths-to-ignore"
    debian = last(lynis.LYNIS_PROFILE.read_text(), key)
    assert last(profile, key) == debian | {"/usr/share/ca-certificates"}
    assert last(profile, "ssl-certificate-paths") == last(lynis.LYNIS_PROFILE.read_text(), "ssl-certificate-paths")


def test_the_brief_plugin_runs_before_debians_and_only_turns_the_log_off():
    """lynis runs phase-1 plugins in name order before the tests: the homelab's must come first (Debian's plugin logs
    a line per binary), be enabled by the profile, and set nothing but LOGTEXT (no test, no score)."""
    with tarfile.open(fileobj=BytesIO(lynis.lynis_tree()), mode="r:gz") as tar:
        names = sorted(n for n in tar.getnames() if n.startswith("plugins/plugin_") and n.endswith("_phase1"))
        plugin = tar.extractfile("plugins/plugin_brief_phase1").read().decode()
        profile = tar.extractfile("default.prf").read().decode()
    assert names[0] == "plugins/plugin_brief_phase1" and "plugins/plugin_debian_phase1" in names
    assert "# PLUGIN_NAME=brief" in plugin and "plugin=brief" in profile.splitlines()
    code = [line for line in plugin.splitlines() if line.strip() and not line.startswith("#")]
    assert code == ["LOGTEXT=0"]


@pytest.mark.parametrize(("suite", "weak"), [
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", False), ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", False),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", True), ("TLS_RSA_WITH_AES_256_GCM_SHA384", True),
    ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", True), ("TLS_ECDH_anon_WITH_AES_128_CBC_SHA", True),
])
def test_weak_tls_1_2_suites_are_those_without_forward_secrecy_or_aead(suite, weak):
    """CBC, 3DES, static RSA key exchange and anonymous suites are weak; ECDHE with GCM or ChaCha20 is not."""
    assert tls.weak_suite(suite) is weak


def _certificate(days_left: float, name: str = "*.lab.home.arpa") -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lab")])
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=days_left))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))


def _certificate_attempt(days_left: float, verified: bool = True, name: str = "*.lab.home.arpa"):
    supplied = SimpleNamespace(trust_store=SimpleNamespace(name=tls.SUPPLIED_CA), was_validation_successful=verified,
                               validation_error=None if verified else "unable to get local issuer certificate")
    deployment = SimpleNamespace(received_certificate_chain=[_certificate(days_left, name)],
                                 path_validation_results=[supplied])
    return SimpleNamespace(status=ScanCommandAttemptStatusEnum.COMPLETED, error_reason=None,
                           result=SimpleNamespace(certificate_deployments=[deployment]))


def test_a_certificate_verified_matching_and_far_from_expiry_passes():
    """sslyze's certificate result: the supplied CA verified it, the name matches, 365 days left."""
    assert tls.certificate_problems(_certificate_attempt(365), "grafana.lab.home.arpa", 30) == []


def test_a_certificate_expiring_within_the_days_fails_naming_the_date_and_the_key():
    """10 days left with a floor of 30 fails (and names security.certificate_days); so does an expired one."""
    problems = tls.certificate_problems(_certificate_attempt(10), "grafana.lab.home.arpa", 30)
    assert len(problems) == 1 and "within 30 days (inventory: security.certificate_days)" in problems[0]
    assert tls.certificate_problems(_certificate_attempt(-1), "grafana.lab.home.arpa", 30)


def test_an_unverified_chain_or_a_wrong_name_fails():
    """Not verified by the inventory's CA, or not matching the route: each is its own problem."""
    problems = tls.certificate_problems(_certificate_attempt(365, verified=False, name="*.example.home.arpa"),
                                        "grafana.lab.home.arpa", 30)
    assert "not verified by the inventory's CA (unable to get local issuer certificate)" in problems[0]
    assert "certificate names *.example.home.arpa do not match grafana.lab.home.arpa" in problems[1]


@pytest.mark.parametrize(("pattern", "fqdn", "matches"), [
    ("*.lab.home.arpa", "grafana.lab.home.arpa", True), ("*.lab.home.arpa", "a.b.lab.home.arpa", False),
    ("*.lab.home.arpa", "lab.home.arpa", False), ("Grafana.lab.home.arpa", "grafana.lab.home.arpa", True),
])
def test_a_wildcard_matches_one_label_only(pattern, fqdn, matches):
    """RFC 6125's wildcard: one leftmost label, never the domain itself nor two labels."""
    assert tls.name_matches(pattern, fqdn) is matches


GOOD_HEADERS = {"strict-transport-security": "max-age=31536000; includeSubDomains",
                "x-content-type-options": "nosniff", "x-frame-options": "SAMEORIGIN",
                "referrer-policy": "strict-origin-when-cross-origin"}


def test_security_headers_present_pass_and_each_missing_one_is_named():
    """HSTS of a year and the three others pass; a short HSTS or a missing header is named."""
    assert tls.header_problems(GOOD_HEADERS) == []
    short = dict(GOOD_HEADERS, **{"strict-transport-security": "max-age=300"})
    assert "Strict-Transport-Security is 'max-age=300'" in tls.header_problems(short)[0]
    for header in ("x-content-type-options", "x-frame-options", "referrer-policy"):
        less = {k: v for k, v in GOOD_HEADERS.items() if k != header}
        assert len(tls.header_problems(less)) == 1, header


def test_the_table_has_a_row_per_host_and_a_column_per_control_in_order():
    """Cells fold like the health table's: `FAIL 1/2` when one of a proxy's two routes failed."""
    cells = {("proxy", "tls"): {"a": "pass", "b": "fail"}, ("proxy", "ssh-audit"): {"c": "pass"},
             ("utilities", "ssh-audit"): {"d": "fail"}}
    columns, rows = table_rows(cells)
    assert columns == ["host", "ssh-audit", "tls"]
    assert rows == [["proxy", "pass", "FAIL 1/2"], ["utilities", "FAIL", "-"]]


def test_a_finding_names_host_and_control_and_refuses_an_unknown_control():
    """The message starts `<where>: <control>:`; a control outside CONTROLS is a programming error."""
    found = finding("proxy", "keys", ["x"], "ok", where="proxy (198.18.0.200)")
    assert found.message == "proxy (198.18.0.200): keys: x" and "keys" in CONTROLS
    with pytest.raises(ValueError, match="unknown security control"):
        finding("proxy", "firewall-ish", [], "ok")


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Work in tmp_path, so messages name the file `inv.yml`."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("lynis_floor", 101, "security.lynis_floor: expected a number <= 100"),
    ("lynis_floor", -1, "security.lynis_floor: expected a number >= 0"),
    ("certificate_days", 0, "security.certificate_days: expected a number >= 1"),
])
def test_a_floor_out_of_range_is_refused_at_load_in_one_line(in_tmp, key, value, expected):
    """lynis's index runs 0-100: a floor outside it is refused with the file, the key and the bound."""
    document = lab_document()
    document["security"] = {key: value}
    message = one_line_error(write(in_tmp, document))
    assert expected in message and message.startswith("inv.yml") and "\n" not in message.strip()


def test_the_floors_default_when_the_section_is_absent(in_tmp):
    """No `security:` section: lynis floor 60, certificates valid 30 days at least."""
    document = lab_document()
    document.pop("security", None)
    inventory = load_inventory(write(in_tmp, document))
    assert (inventory.security.lynis_floor, inventory.security.certificate_days) == (60, 30)


def test_every_route_is_audited_on_the_proxy_address_by_its_name():
    """The routes come from the declarations: `<route.host>.<domain>`, connected to on the proxy host."""
    from plugins.security.audit import routes_of, socket_declared

    inventory = load_inventory(Path(__file__).resolve().parents[2] / "inventories" / "lab.yml")
    routes = routes_of(inventory)
    routed = [d for h in inventory.hosts for d in h.declarations if d.route]
    assert len(routes) == len(routed) > 0
    assert {r.address for r in routes} == {inventory.proxy_host.ip}
    assert all(r.fqdn.endswith(".lab.home.arpa") and r.port == 443 for r in routes)
    assert all(socket_declared(h) == [] for h in inventory.hosts)  # no declaration of the lab mounts the socket


def test_an_accepted_exception_names_a_known_control_and_a_reason(in_tmp):
    """`security.accepted`: a control of the suite, a reason of some words; it covers its hosts (all when none)."""
    document = lab_document()
    document["security"] = {"accepted": [{"control": "upgrades", "reason": "no package in the lab base image"},
                                         {"control": "lynis", "hosts": ["proxy"], "reason": "kernel is the node's"}]}
    security = load_inventory(write(in_tmp, document)).security
    assert security.accepted_for("utilities", "upgrades").reason.startswith("no package")
    assert security.accepted_for("proxy", "lynis") and security.accepted_for("utilities", "lynis") is None
    document["security"] = {"accepted": [{"control": "firewall", "reason": "a control the suite does not have"}]}
    message = one_line_error(write(in_tmp, document))
    assert "security.accepted[0].control" in message and "ssh-audit" in message, message
    document["security"] = {"accepted": [{"control": "lynis", "reason": "ok"}]}
    assert "security.accepted[0].reason" in one_line_error(write(in_tmp, document))
