"""`make security` on the deployed lab: it passes after a deploy; one control broken on one host fails exactly that
host and control, named; the next deploy repairs it and the control passes again.

The breaks are the ones an owner's hand or a bad change makes: password logins switched back on (app-demo), a
broken cipher added to sshd (utilities), a certificate about to expire on the proxy. lynis is left out of the
break runs (`-k "not lynis"`): no break touches it, and it is the suite's slowest control.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lab import orchestrate, scenarios
from plugins.inventory import load_inventory
from plugins.ssh.known_hosts import forget
from plugins.stack import ansible_inventory

pytestmark = pytest.mark.usefixtures("deployed", "fresh_host_keys")

FAST = ("-k", "not lynis")
INVENTORY = load_inventory(scenarios.LAB_INVENTORY)


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


def host_ip(name: str) -> str:
    """A lab host's address from the inventory."""
    return INVENTORY.host(name).ip


def root(name: str, command: str) -> None:
    """Run a command as root on a lab host; fail the test with its output if it fails."""
    done = scenarios.ssh_root(host_ip(name), command)
    assert done.returncode == 0, f"{name}: {command}: {done.stdout}{done.stderr}"


def expiring_certificate(directory: Path, days: int) -> tuple[bytes, bytes]:
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


def put_expiring_certificate(tmp_path: Path) -> None:
    """Replace the proxy's certificate with one expiring in 10 days and restart Traefik on it."""
    proxy = INVENTORY.proxy_host.hostname
    config_dir = ansible_inventory(INVENTORY)["all"]["hosts"][proxy]["proxy_config_dir"]
    cert, key = expiring_certificate(tmp_path, days=10)
    root(proxy, f"printf '%s' '{cert.decode()}' > {config_dir}/tls/cert.pem && "
                f"printf '%s' '{key.decode()}' > {config_dir}/tls/key.pem && docker restart traefik >/dev/null")


BREAKS = {
    "password-login": ("app-demo", "ssh-auth",
                       lambda tmp: root("app-demo", "sed -i 's/^PasswordAuthentication no/PasswordAuthentication yes/' "
                                        "/etc/ssh/sshd_config.d/00-bootstrap.conf && systemctl restart ssh"),
                       "passwordauthentication is yes, expected no"),
    "weak-cipher": ("utilities", "ssh-audit",
                    lambda tmp: root("utilities", "sed -i 's/^Ciphers /Ciphers 3des-cbc,/' "
                                     "/etc/ssh/sshd_config.d/01-hardening.conf && systemctl restart ssh"),
                    "failing cipher 3des-cbc"),
    "expiring-certificate": ("proxy", "tls", put_expiring_certificate, "within 30 days"),
}


def test_security_passes_after_a_deploy():
    """Every control of every host and route passes on the freshly deployed lab (lynis included)."""
    run = scenarios.run_suite("security")
    assert run.rc == 0, run.tail(60)
    assert failed_cells(run.output) == set(), run.tail(40)


@pytest.mark.parametrize("name", list(BREAKS))
def test_one_broken_control_fails_exactly_its_host_and_control_until_a_deploy(name, tmp_path):
    """The break fails one cell of the table, and the message names the host and the control; a deploy repairs it."""
    host, control, apply, words = BREAKS[name]
    apply(tmp_path)
    broken = scenarios.run_suite("security", *FAST)
    assert broken.rc != 0, broken.tail(40)
    assert failed_cells(broken.output) == {(host, control)}, broken.tail(60)
    assert re.search(rf"{re.escape(host)} [^\n]*: {re.escape(control)}: [^\n]*{re.escape(words)}", broken.output), \
        broken.tail(60)
    deploy = scenarios.run_suite("deploy")
    assert deploy.rc == 0, deploy.tail(60)
    repaired = scenarios.run_suite("security", *FAST)
    assert repaired.rc == 0 and failed_cells(repaired.output) == set(), repaired.tail(60)
