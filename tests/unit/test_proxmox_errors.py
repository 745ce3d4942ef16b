"""Proxmox errors read as diagnoses: PVE's errors, transport failures, inventory mistakes."""

from __future__ import annotations

import datetime
import http.server
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from proxmoxer.core import ResourceException

from plugins.inventory import InventoryError, load_inventory
from plugins.proxmox.client import ProxmoxClient
from plugins.proxmox.tasks import ProxmoxError, TaskResult, describe_upid, explain_resource_error, is_success, log_tail

pytestmark = pytest.mark.unit

LAB_FILE = Path(__file__).resolve().parents[2] / "inventories" / "lab.yml"
LAB = load_inventory(LAB_FILE)

SECRET = "0b7e9a52-5c1f-4a43-9e0d-5f2f3c1a9d77"
URL = "https://127.0.0.1:8006"
UPID = "UPID:homelab:0000A1B2:0001C3D4:665F1A2B:vzsnapshot:250:root@pam!lab:"


def explain(exc, action="snapshot CT 250 as 'deploy_1' on node homelab"):
    return explain_resource_error(exc, action=action, url=URL, token_id="root@pam!lab", secret_env="PVE_TOKEN_SECRET")


@pytest.mark.parametrize("errors", [None, {"errors": b""}])
def test_401_names_the_token_the_url_and_the_variable(errors):
    """A 401 (empty body: proxmoxer wraps it as {"errors": b""}) names the token, the URL and the env var."""
    err = explain(ResourceException(401, "Unauthorized", "authentication failure", errors=errors))
    assert str(err) == ("authentication failed for token root@pam!lab on https://127.0.0.1:8006: "
                        "check the secret in $PVE_TOKEN_SECRET")
    assert err.status_code == 401


def test_403_carries_pve_permission_text_and_says_the_token_lacks_privilege():
    """A 403 quotes PVE's permission check (path, privilege) and names the token."""
    err = explain(ResourceException(403, "Forbidden", "Permission check failed (/vms/250, VM.Snapshot)"),
                  action="snapshot CT 250 as 'deploy_1' on node homelab")
    text = str(err)
    assert "Permission check failed (/vms/250, VM.Snapshot)" in text
    assert "token root@pam!lab lacks privilege" in text
    assert text.startswith("snapshot CT 250 as 'deploy_1' on node homelab: permission denied on https://127.0.0.1:8006")


def test_400_lists_the_parameter_errors_on_one_line():
    """A parameter error shows the status, PVE's message and each parameter's complaint, on one line."""
    errors = {"snapname": "invalid format - invalid configuration ID 'Bad Name'\n", "vmid": "value must be >= 100"}
    err = explain(ResourceException(400, "Bad Request", "Parameter verification failed.", errors=errors))
    text = str(err)
    assert "\n" not in text
    assert text == ("snapshot CT 250 as 'deploy_1' on node homelab: PVE answered 400: Parameter verification failed. "
                    "(snapname: invalid format - invalid configuration ID 'Bad Name'; vmid: value must be >= 100)")
    assert err.errors == errors and err.pve_message == "Parameter verification failed."


def test_500_keeps_pve_message():
    """A handler error (missing CT) keeps PVE's own text."""
    err = explain(ResourceException(500, "Internal Server Error",
                                    "Configuration file 'nodes/homelab/lxc/999.conf' does not exist"),
                  action="read status of CT 999 on node homelab")
    assert str(err) == ("read status of CT 999 on node homelab: PVE answered 500: "
                        "Configuration file 'nodes/homelab/lxc/999.conf' does not exist")


def test_501_says_the_url_is_not_a_pve_api():
    """Unknown path (or not a PVE at all) is named as such."""
    err = explain(ResourceException(501, "Not Implemented", "Method 'GET /nodes/homelab/foo' not implemented"),
                  action="list things")
    assert "does not implement this call" in str(err)


def _cfg(**overrides):
    """The lab inventory with its proxmox section changed (the client reads the inventory's model)."""
    values = {"host": "127.0.0.1", "port": 8006, "ca_file": None, **overrides}
    return LAB.model_copy(update={"proxmox": LAB.proxmox.model_copy(update=values)})


@pytest.mark.parametrize("env", [{}, {"PVE_TOKEN_SECRET": ""}])
def test_missing_secret_names_the_variable_and_the_inventory_key(env):
    """An unset or empty secret variable is one line naming it and proxmox.token_secret_env."""
    with pytest.raises(ProxmoxError) as caught:
        ProxmoxClient.from_inventory(_cfg(), env=env)
    text = str(caught.value)
    assert "PVE_TOKEN_SECRET" in text and "proxmox.token_secret_env" in text and "\n" not in text


def test_bad_token_id_is_refused():
    """token_id must be user@realm!name (what PVE's header needs)."""
    with pytest.raises(ProxmoxError, match="user@realm!tokenname"):
        ProxmoxClient.from_inventory(_cfg(token_id="root@pam"), env={"PVE_TOKEN_SECRET": SECRET})


def test_tls_verification_cannot_be_turned_off(tmp_path):
    """verify_tls: false never reaches the client: the inventory refuses it, naming ca_file."""
    bad = tmp_path / "lab.yml"
    bad.write_text(LAB_FILE.read_text().replace("  port: 8006\n", "  port: 8006\n  verify_tls: false\n"))
    with pytest.raises(InventoryError, match="verify_tls"):
        load_inventory(bad)


def test_missing_ca_file_is_named(tmp_path):
    """A ca_file that does not exist is named with its inventory key."""
    with pytest.raises(ProxmoxError, match=r"CA file .*nope.pem \(inventory key proxmox.ca_file\) does not exist"):
        ProxmoxClient.from_inventory(_cfg(ca_file=str(tmp_path / "nope.pem")), env={"PVE_TOKEN_SECRET": SECRET})


def test_the_client_says_its_url_and_never_its_secret(tmp_path):
    """URL and TLS from the inventory's proxmox section; the client's repr never shows the secret."""
    client = ProxmoxClient.from_inventory(_cfg(), env={"PVE_TOKEN_SECRET": SECRET})
    assert client.url == URL and client.verify is True and client.http_timeout >= 60
    assert SECRET not in repr(client) and SECRET not in str(vars(client))


def test_the_timeouts_come_from_the_inventory():
    """proxmox.http_timeout and task_timeout (slow storage: a longer snapshot) reach the client; defaults 60/300."""
    client = ProxmoxClient.from_inventory(_cfg(http_timeout=7.5, task_timeout=42), env={"PVE_TOKEN_SECRET": SECRET})
    assert (client.http_timeout, client.task_timeout) == (7.5, 42)
    default = ProxmoxClient.from_inventory(_cfg(), env={"PVE_TOKEN_SECRET": SECRET})
    assert (default.http_timeout, default.task_timeout) == (60, 300)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_is_a_diagnosis():
    """Nothing listening: the message names the URL and what to check."""
    client = ProxmoxClient.from_inventory(_cfg(port=_free_port()), env={"PVE_TOKEN_SECRET": SECRET})
    with pytest.raises(ProxmoxError, match=r"list nodes: cannot connect to https://127.0.0.1:\d+ \(is the Proxmox API up"):
        client.nodes()


def _self_signed(tmp_path, name):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_untrusted_certificate_is_a_diagnosis_naming_the_ca_file(tmp_path):
    """A server whose certificate the inventory's CA did not sign: TLS failure naming the CA file."""
    trusted, _ = _self_signed(tmp_path, "trusted-ca")
    served_cert, served_key = _self_signed(tmp_path, "other")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(served_cert, served_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        client = ProxmoxClient.from_inventory(_cfg(port=server.server_address[1], ca_file=str(trusted)),
                                              env={"PVE_TOKEN_SECRET": SECRET})
        with pytest.raises(ProxmoxError) as caught:
            client.version()
    finally:
        server.shutdown()
        server.server_close()
    assert f"TLS verification of https://127.0.0.1:{server.server_address[1]} failed against CA file {trusted}" in str(
        caught.value)
    assert SECRET not in str(caught.value)


def test_task_helpers_read_pve_shapes():
    """UPID fields, success statuses and the log tail as PVE sends them."""
    assert describe_upid(UPID) == {"node": "homelab", "type": "vzsnapshot", "id": "250", "user": "root@pam!lab"}
    assert is_success("OK") and is_success("WARNINGS: 2")
    assert not is_success("snapshot name 'deploy_1' already used") and not is_success("")
    log = [{"n": 2, "t": "TASK ERROR: snapshot name 'deploy_1' already used"}, {"n": 1, "t": "starting"}]
    assert log_tail(log) == ["starting", "TASK ERROR: snapshot name 'deploy_1' already used"]
    assert log_tail(None) == []
    result = TaskResult(upid=UPID, node="homelab", exitstatus="WARNINGS: 1", log=["WARN: disk almost full", "TASK OK"])
    assert result.warnings == 1 and result.type == "vzsnapshot"
    assert result.summary() == "task vzsnapshot 250 on homelab: WARNINGS: 1 (WARN: disk almost full)"
