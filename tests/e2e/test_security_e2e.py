"""`make security` on the deployed lab: five controls broken at once, each on its own host, fail exactly those five
(host, control) cells, each named; one deploy repairs them all, and then the whole suite passes.

The breaks are the ones an owner's hand or a bad change makes: password logins switched back on (app-demo), a
broken cipher added to sshd (monitoring), a certificate about to expire on the proxy's routes, /etc/shadow made
readable by everyone (ci-runner: OpenSCAP's ANSSI profile), and a service port opened to the LAN in the inventory's
firewall data, applied as the deploy's firewall stage applies it (utilities' Vaultwarden, 8080). Breaking them together on different hosts proves what one break at a time proved (each fails
its own cell and no other) with one broken run and one repairing deploy instead of one of each per break.

lynis is left out of the broken run (`-k "not lynis"`): no break touches it, and it is the suite's slowest control.
The run after the repairing deploy is the whole suite, lynis included: it is the "passes after a deploy" proof.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lab import orchestrate, scenarios
from plugins.inventory import load_inventory
from plugins.proxmox.client import ProxmoxClient
from plugins.proxmox.firewall import changes, converge, read_state
from plugins.ssh.known_hosts import forget
from plugins.stack import ansible_inventory
from plugins.stack.firewall import MARK, desired_state

pytestmark = pytest.mark.usefixtures("deployed", "fresh_host_keys")

FAST = ("-k", "not lynis")
INVENTORY = load_inventory(scenarios.LAB_INVENTORY)
OPEN_VAULTWARDEN = {"host": "utilities", "zone": "lan", "ports": [8080], "comment": "e2e: Vaultwarden to the LAN"}


@pytest.fixture(scope="module")
def fresh_host_keys():
    """Forget the lab hosts' keys pinned for root's e2e SSH: a lab brought up again re-created them."""
    known = Path(orchestrate.status()["deploy_key"]).parent / scenarios.E2E_KNOWN_HOSTS
    forget(known, [host.ip for host in INVENTORY.hosts])


def failed_cells(output: str) -> set[tuple[str, str]]:
    """The (host, control) cells the run's security summary shows as FAIL."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if "security summary (host × control)" in line), None)
    assert start is not None, "no security summary in the output:\n" + "\n".join(lines[-30:])
    columns = lines[start + 1].split()
    cells = set()
    for line in lines[start + 3:]:
        if not line.strip() or line.startswith(("FAIL n/m", "=")):
            break
        row = re.split(r"\s{2,}", line.strip())
        cells |= {(row[0], columns[i]) for i, value in enumerate(row) if i and value.startswith("FAIL")}
    return cells


def failed_exposures(output: str) -> set[str]:
    """The (source-host) ids of the failed exposure tests (they are not cells of the table: pytest's -ra lines)."""
    return set(re.findall(r"FAILED \S*test_exposure\.py::\S+\[([\w-]+)\]", output))


def host_ip(name: str) -> str:
    """A lab host's address from the inventory."""
    return INVENTORY.host(name).ip


def root(name: str, command: str) -> None:
    """Run a command as root on a lab host; fail the test with its output if it fails."""
    done = scenarios.ssh_root(host_ip(name), command)
    assert done.returncode == 0, f"{name}: {command}: {done.stdout}{done.stderr}"


def expiring_certificate(days: int) -> tuple[bytes, bytes]:
    """A *.<domain> certificate signed by the lab's CA (the one the inventory verifies with), valid `days` more."""
    ca_dir = Path(INVENTORY.stack.tls.ca_file).parent
    ca = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca-key.pem").read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    domain = INVENTORY.stack.domain
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"*.{domain}")]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(f"*.{domain}"), x509.DNSName(domain)]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def apply_firewall(inventory_path: Path, *, dry_run: bool = False) -> list[str]:
    """Apply an inventory's firewall as the deploy's firewall stage does (through PVE's API); give the changes (with
    dry_run: what would change)."""
    inventory = load_inventory(inventory_path)
    client = ProxmoxClient.from_inventory(inventory, env=scenarios.suite_env())
    cts = {h.vmid: h.node for h in inventory.hosts}
    current, wanted = read_state(client.api_call, cts), desired_state(inventory)
    if dry_run:
        return changes(current, wanted, MARK)
    return converge(client.api_call, current, wanted, MARK, cts)


def allow_password_login(tmp_path: Path) -> Path | None:
    """Switch sshd's password logins back on in the bootstrap's drop-in."""
    root("app-demo", "sed -i 's/^PasswordAuthentication no/PasswordAuthentication yes/' "
                     "/etc/ssh/sshd_config.d/00-bootstrap.conf && systemctl restart ssh")
    return None


def add_weak_cipher(tmp_path: Path) -> Path | None:
    """Put 3DES-CBC first in the hardening's cipher list."""
    root("monitoring", "sed -i 's/^Ciphers /Ciphers 3des-cbc,/' /etc/ssh/sshd_config.d/01-hardening.conf "
                       "&& systemctl restart ssh")
    return None


def put_expiring_certificate(tmp_path: Path) -> Path | None:
    """Replace the proxy's certificate with one expiring in 10 days and restart Traefik on it."""
    proxy = INVENTORY.proxy_host.hostname
    config_dir = ansible_inventory(INVENTORY)["all"]["hosts"][proxy]["proxy_config_dir"]
    cert, key = expiring_certificate(days=10)
    root(proxy, f"printf '%s' '{cert.decode()}' > {config_dir}/tls/cert.pem && "
                f"printf '%s' '{key.decode()}' > {config_dir}/tls/key.pem && docker restart traefik >/dev/null")
    return None


def expose_shadow(tmp_path: Path) -> Path | None:
    """Make /etc/shadow readable by everyone, as a careless chmod would (the hardening role keeps it 0640)."""
    root("ci-runner", "chmod 0644 /etc/shadow")
    return None


def open_service_port_to_the_lan(tmp_path: Path) -> Path | None:
    """Add a rule opening Vaultwarden's port to the LAN to a copy of the inventory and apply its firewall; give the
    copy (the suite then judges against the data as changed)."""
    document = yaml.safe_load(scenarios.LAB_INVENTORY.read_text())
    document["firewall"]["rules"] = [OPEN_VAULTWARDEN]
    opened = tmp_path / "lab-opened.yml"
    opened.write_text(yaml.safe_dump(document, sort_keys=False))
    changed = apply_firewall(opened)
    assert changed == ["security group hl-201: 6 rule(s)"], changed
    return opened


@dataclass(frozen=True)
class Break:
    """One control broken on one host: the cell it must fail and words its message must hold."""

    host: str
    control: str
    apply: Callable[[Path], Path | None]
    words: str


# The certificate first: Traefik's restart is then long over when the exposure probes ask the proxy's 80/443.
BREAKS = (
    Break("proxy", "tls", put_expiring_certificate, "within 30 days"),
    Break("app-demo", "ssh-auth", allow_password_login, "passwordauthentication is yes, expected no"),
    Break("monitoring", "ssh-audit", add_weak_cipher, "failing cipher 3des-cbc"),
    Break("ci-runner", "openscap", expose_shadow, "file_permissions_etc_shadow fail"),
    Break("utilities", "exposure", open_service_port_to_the_lan, "service port 8080 answers from the LAN"),
)
TABLE_BREAKS = [b for b in BREAKS if b.control != "exposure"]  # exposure is per (source, host), not a table cell


def test_five_broken_controls_fail_exactly_their_hosts_and_controls_until_a_deploy(tmp_path):
    """Each break fails its own (host, control) and nothing else fails, each named; one deploy repairs them all and
    leaves the firewall converged."""
    assert apply_firewall(scenarios.LAB_INVENTORY, dry_run=True) == [], "the deploy left the firewall unconverged"
    inventory = scenarios.LAB_INVENTORY
    try:
        for broken_control in BREAKS:
            inventory = broken_control.apply(tmp_path) or inventory
        broken = scenarios.run_suite("security", *FAST, inventory=inventory)
    finally:
        deploy = scenarios.run_suite("deploy")  # the breaks are repaired even when one failed to apply
    assert broken.rc != 0, broken.tail(40)
    assert failed_cells(broken.output) == {(b.host, b.control) for b in TABLE_BREAKS}, broken.tail(80)
    exposed = failed_exposures(broken.output)
    # From the LAN point, and from any container on the LAN but the proxy's: only the opened host fails.
    assert "lan-utilities" in exposed and {case.split("-", 1)[1] for case in exposed} == {"utilities"}, \
        broken.tail(80)
    for b in TABLE_BREAKS:
        assert re.search(rf"{re.escape(b.host)} [^\n]*: {re.escape(b.control)}: [^\n]*{re.escape(b.words)}",
                         broken.output), f"{b.host} {b.control}: no message naming it\n{broken.tail(80)}"
    assert f"exposure (lan): utilities: {BREAKS[-1].words}" in broken.output, broken.tail(80)
    assert deploy.rc == 0, deploy.tail(60)
    assert apply_firewall(scenarios.LAB_INVENTORY, dry_run=True) == [], "the repairing deploy left the firewall open"


def test_security_passes_after_a_deploy():
    """Every control of every host and route passes on the deployed lab, lynis included, the LAN point used."""
    run = scenarios.run_suite("security")
    assert run.rc == 0, run.tail(60)
    assert failed_cells(run.output) == set(), run.tail(40)
    skipped_exposure = [line for line in run.output.splitlines() if line.startswith("SKIPPED") and "exposure" in line]
    assert not skipped_exposure, "\n".join(skipped_exposure)  # the LAN point was made and probed from
