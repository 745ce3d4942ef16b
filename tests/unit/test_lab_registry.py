"""The lab registry's config, certificate and process, and how lab hosts are pointed at it."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509

from lab import hosts, procs
from lab.pve import ca as lab_ca
from lab.registry import Registry, mirror_files

pytestmark = pytest.mark.unit


def test_lab_registry_listens_on_the_bridge_with_tls():
    """The lab's instance: 198.18.0.1:5000 over https, storage under LAB_DIR/registry."""
    reg = Registry.lab()
    assert reg.url == "https://198.18.0.1:5000" and ipaddress.ip_address(reg.host) in ipaddress.ip_network("198.18.0.0/15")
    cfg = json.loads(reg.config_text())
    assert cfg["http"]["addr"] == "198.18.0.1:5000"
    assert cfg["http"]["tls"]["certificate"].startswith(str(reg.state_dir))
    assert cfg["storage"]["filesystem"]["rootdirectory"].endswith("/registry")


def test_certificate_carries_the_registry_ip_and_is_signed_by_the_lab_ca(tmp_path):
    """ensure_server_cert issues for the given IP SAN, reuses a matching cert, reissues on a SAN change."""
    ca_file, cert, _ = lab_ca.ensure_server_cert(tmp_path / "ca", tmp_path / "r.pem", tmp_path / "r.key",
                                                 ips=("198.18.0.1",), dns=())
    parsed = x509.load_pem_x509_certificate(Path(cert).read_bytes())
    san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("198.18.0.1")]
    ca = x509.load_pem_x509_certificate(Path(ca_file).read_bytes())
    assert parsed.issuer == ca.subject
    parsed.verify_directly_issued_by(ca)
    before = Path(cert).read_bytes()
    lab_ca.ensure_server_cert(tmp_path / "ca", tmp_path / "r.pem", tmp_path / "r.key", ips=("198.18.0.1",), dns=())
    assert Path(cert).read_bytes() == before
    lab_ca.ensure_server_cert(tmp_path / "ca", tmp_path / "r.pem", tmp_path / "r.key", ips=("127.0.0.1",), dns=())
    assert Path(cert).read_bytes() != before
    # the emulator's own cert still comes from the same CA with its old SANs
    lab_ca.ensure_ca(tmp_path / "ca")
    pve = x509.load_pem_x509_certificate((tmp_path / "ca" / lab_ca.CERT_FILE).read_bytes())
    assert pve.issuer == ca.subject
    assert pve.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == ["localhost"]


def test_host_daemon_json_keeps_its_networks_and_mirrors_docker_hub_to_the_lab():
    """registry-mirrors is added next to bip / default-address-pools (all inside 198.18.0.0/15)."""
    cfg = json.loads(hosts.daemon_json(250))
    assert cfg["registry-mirrors"] == ["https://198.18.0.1:5000"]
    assert cfg["bip"] == "198.18.150.1/24" and cfg["default-address-pools"][0]["base"] == "198.19.0.0/16"


def test_mirror_files_put_the_lab_ca_where_dockerd_looks_for_it(tmp_path):
    """certs.d/<host:port>/ca.crt holds the CA that signs the registry (made when missing)."""
    reg = Registry("198.18.0.1", 5000, tmp_path / "s", tmp_path / "conf", tmp_path / "ca")
    files = mirror_files(reg)
    assert list(files) == ["etc/docker/certs.d/198.18.0.1:5000/ca.crt"]
    assert files["etc/docker/certs.d/198.18.0.1:5000/ca.crt"] == (tmp_path / "ca" / "ca.pem").read_text()


def test_a_program_service_is_started_tracked_and_stopped_by_pid(tmp_path):
    """A non-Python service (the registry's kind) is recognised by its command line and stopped by PID."""
    svc = procs.Service("sleeper", "sleep", ("30",), program="/bin/sleep")
    assert svc.argv == ["/bin/sleep", "30"]
    assert svc.runs_in("/bin/sleep 30 ") and not svc.runs_in(f"{sys.executable} -m sleep")
    assert not svc.runs_in("/bin/sleep 31 "), "same program, other arguments: not this service"
    pid = procs.start(tmp_path / "run", tmp_path / "log", svc)
    deadline = time.monotonic() + 5
    while not procs._cmdline(pid).startswith("/bin/sleep") and time.monotonic() < deadline:
        time.sleep(0.01)  # between fork and exec the child still shows Python's command line
    try:
        assert procs.start(tmp_path / "run", tmp_path / "log", svc) == pid
        assert procs.running_pid(tmp_path / "run", svc) == pid
    finally:
        assert procs.stop(tmp_path / "run", svc, timeout=5)
    deadline = time.monotonic() + 5
    while procs._cmdline(pid).startswith("/bin/sleep") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert procs.running_pid(tmp_path / "run", svc) is None


@pytest.mark.skipif(not Path("/usr/bin/docker-registry").exists(), reason="docker-registry not installed")
def test_registry_serves_v2_over_verified_tls_on_loopback(tmp_path):
    """A real docker-registry on 127.0.0.1 (never the lab's address): /v2/ answers, catalog empty, stopped by PID."""
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    reg = Registry("127.0.0.1", port, tmp_path / "storage", tmp_path / "conf", tmp_path / "ca")
    pid = None
    try:
        pid = reg.start(tmp_path / "run", tmp_path / "log", timeout=60)
        assert reg.catalog() == [] and reg.manifest("library/traefik", "v3.7") is None
        out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", f"{reg.url}/v2/"],
                             check=False, capture_output=True, text=True, timeout=10)
        assert out.stdout != "200", "curl without the lab CA must refuse the certificate"
    finally:
        assert reg.stop(tmp_path / "run"), "the registry's PID was not found to stop"
    # the process itself is gone (or a zombie: its sockets closed); the port is not asked, since another
    # process on a busy machine (a cold lab up beside these tests) may be given the freed ephemeral port
    assert procs._is_zombie(pid) and reg.pid(tmp_path / "run") is None


def test_a_service_that_renames_itself_is_still_known_by_its_marker(tmp_path):
    """verdaccio retitles its process: the PID is still recognised (environment marker) and stopped."""
    svc = procs.Service("renamer", "bash", ("-c", "exec -a renamed-service /bin/sleep 30"), program="/bin/bash")
    other = procs.Service("someone-else", "bash", svc.args, program="/bin/bash")
    pid = procs.start(tmp_path / "run", tmp_path / "log", svc)
    deadline = time.monotonic() + 5
    while not procs._cmdline(pid).startswith("renamed-service") and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        assert not svc.runs_in(procs._cmdline(pid))
        assert procs.running_pid(tmp_path / "run", svc) == pid
        (tmp_path / "run" / "someone-else.pid").write_text(f"{pid}\n")
        assert procs.running_pid(tmp_path / "run", other) is None, "another service's PID file must not match"
    finally:
        assert procs.stop(tmp_path / "run", svc, timeout=5)
