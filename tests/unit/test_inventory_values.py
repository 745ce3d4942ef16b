"""The inventory's values: secrets never echoed, paths absolute and not pasted keys, names on their real
grammar, addresses that can be hosts, bounds where a value makes no sense."""

from __future__ import annotations

import pytest
from broken_inventory import lab_document, one_line_error, write

from plugins.inventory import load_inventory

pytestmark = pytest.mark.unit

SECRET = "3f2b1c4d-9e8f-4a7b-8c6d-5e4f3a2b1c0d"  # the shape of a PVE token secret
KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"
PEM = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}\n-----END OPENSSH PRIVATE KEY-----\n"


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Work in tmp_path, so messages name the file `inv.yml`."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def broken(in_tmp, *path_and_value) -> str:
    """The one-line error of the lab inventory with one key set to a value (a path of keys and indexes)."""
    *path, value = path_and_value
    document = lab_document()
    target = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return one_line_error(write(in_tmp, document))


def service_url(url: str) -> tuple:
    """The (path…, value) that sets an http(s) URL of the inventory: the state store's endpoint."""
    return ("state_backend", "endpoint", url)


# --- secrets: the value never reaches the message -------------------------------------------------

SECRETS = [
    ("secret-after-token-id", ("proxmox", "token_id", f"root@pam!lab={SECRET}"), SECRET, "proxmox.token_id"),
    ("secret-after-a-space", ("proxmox", "token_id", f"root@pam!lab {SECRET}"), SECRET, "followed by more"),
    ("pve-header-as-token-id", ("proxmox", "token_id", f"PVEAPIToken=root@pam!lab={SECRET}"), SECRET,
     "proxmox.token_id"),
    ("secret-as-token-id", ("proxmox", "token_id", SECRET), SECRET, "is not a Proxmox API token id"),
    ("secret-as-env-name", ("proxmox", "token_secret_env", SECRET), SECRET, "found a value (not shown)"),
    ("credentials-in-endpoint",
     ("state_backend", "endpoint", "http://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI@127.0.0.1:9000"),
     "wJalrXUtnFEMI", "a URL with credentials (user:password@) is refused"),
    ("password-only-in-url", service_url("http://:hunter2pass@198.18.0.250:8080/health"), "hunter2pass",
     "a URL with credentials"),
    ("user-only-in-url", service_url("http://admin@198.18.0.250:8080/health"), "admin@", "a URL with credentials"),
    ("token-in-query", service_url("http://198.18.0.250:8080/health?token=s3cr3tvalue"), "s3cr3tvalue",
     "a credential in its query"),
    ("api-key-in-query", service_url("http://198.18.0.250:8080/health?api_key=s3cr3tvalue"), "s3cr3tvalue",
     "a credential in its query"),
    ("private-key-as-deploy-key", ("runner", "deploy_key", PEM), KEY_BODY, "found key or certificate material"),
    ("public-key-as-deploy-key", ("runner", "deploy_key", f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{KEY_BODY[:20]}"),
     KEY_BODY[:20], "found key or certificate material"),
    ("key-body-as-deploy-key", ("runner", "deploy_key", KEY_BODY), KEY_BODY, "found key or certificate material"),
    ("certificate-as-ca-file", ("proxmox", "ca_file", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"),
     "MIIB", "proxmox.ca_file"),
    ("secret-under-made-up-key", ("proxmox", "password", "hunter2pass"), "hunter2pass", "unknown key 'password'"),
    ("secret-as-a-key-name", ("proxmox", SECRET, "x"), SECRET, "a name not shown"),
    ("secret-as-hostname", ("hosts", 0, "hostname", KEY_BODY), KEY_BODY, "hosts[0].hostname"),
    ("secret-as-bucket", ("state_backend", "bucket", KEY_BODY), KEY_BODY, "state_backend.bucket"),
    ("secret-in-a-list", ("hosts", 0, "packages", ["rsync", KEY_BODY]), KEY_BODY, "packages[1]"),
    ("secret-as-wrong-type", ("hosts", 0, "vmid", SECRET), SECRET, "expected an integer"),
    # values whose field grammar they pass: refused for their shape alone
    ("uuid-as-package", ("hosts", 0, "packages", ["rsync", SECRET]), SECRET,
     "hosts[proxy].packages[1]: a value shaped like a secret"),
    ("uuid-as-hostname", ("hosts", 0, "hostname", SECRET), SECRET, "hosts[0].hostname: a value shaped like a secret"),
    ("github-token-as-branch", ("github", "branch", "ghp_" + "a1B2" * 9), "a1B2a1B2", "github.branch: a value shaped"),
    ("secret-in-an-anchor-holder", ("x-secrets", {"pve": SECRET}), SECRET, "x-secrets.pve: a value shaped like"),
]


@pytest.mark.parametrize(("change", "secret", "expected"), [(c, s, e) for _, c, s, e in SECRETS],
                         ids=[i for i, _, _, _ in SECRETS])
def test_a_secret_is_never_echoed(in_tmp, change, secret, expected):
    """A secret pasted where it does not belong is refused, and the message never holds it."""
    message = broken(in_tmp, *change)
    assert secret not in message, message
    assert expected in message, message


# --- paths on the runner ------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "expected"), [
    (("runner", "deploy_key", "keys/deploy_ed25519"), "'keys/deploy_ed25519' is not an absolute path"),
    (("runner", "deploy_key", "~/.ssh/deploy_ed25519"), "starts with ~ (expected an absolute path"),
    (("proxmox", "ca_file", "ca.pem"), "proxmox.ca_file: 'ca.pem' is not an absolute path"),
    (("stack", "tls", "ca_file", "certs/ca.pem"), "stack.tls.ca_file: 'certs/ca.pem' is not an absolute"),
    (("runner", "deploy_key", "my key file"), "runner.deploy_key: a value (not shown) is not an absolute path"),
])
def test_paths_must_be_absolute(in_tmp, change, expected):
    """CA files and the deploy key are absolute paths (ssh, requests and Ansible read them from anywhere)."""
    assert expected in broken(in_tmp, *change)


def test_an_absolute_path_with_unusual_characters_is_a_path(in_tmp):
    """Spaces and accents are fine in an absolute path: structure does not look for the file."""
    document = lab_document()
    document["runner"]["deploy_key"] = "/home/ops/clés ssh/deploy_ed25519"
    assert load_inventory(write(in_tmp, document)).runner.deploy_key == "/home/ops/clés ssh/deploy_ed25519"


# --- names that reach a shell, apt, Docker or Proxmox ---------------------------------------------

GRAMMARS = [
    ("package-with-shell", ("hosts", 0, "packages", ["rsync", "rsync; reboot"]), "packages[1]",
     "is not a Debian package name"),
    ("package-uppercase", ("hosts", 0, "packages", ["Rsync"]), "packages[0]", "is not a Debian package name"),
    ("package-one-letter", ("hosts", 0, "packages", ["r"]), "packages[0]", "2 or more"),
    ("package-option", ("hosts", 0, "packages", ["-y"]), "packages[0]", "starting with a letter or digit"),
    ("service-with-space", ("hosts", 0, "services", ["my proxy"]), "services[0]", "is not an RFC 1123 label"),
    ("service-with-subshell", ("hosts", 0, "services", ["$(id)"]), "services[0]", "is not an RFC 1123 label"),
    ("service-twice", ("hosts", 0, "services", ["traefik", "traefik"]), "services[1]", "traefik is listed twice"),
    ("deploy-user-uppercase", ("runner", "deploy_user", "Deploy"), "runner.deploy_user", "Linux user name"),
    ("deploy-user-digit-first", ("runner", "deploy_user", "0day"), "runner.deploy_user", "Linux user name"),
    ("bridge-too-long", ("proxmox", "bridge", "vmbr0-far-too-long"), "proxmox.bridge", "Linux interface name"),
    ("bridge-slash", ("proxmox", "bridge", "vmbr/0"), "proxmox.bridge", "Linux interface name"),
    ("ostemplate-no-storage", ("proxmox", "ostemplate", "debian-12.tar.zst"), "proxmox.ostemplate",
     "<storage>:vztmpl/"),
    ("ostemplate-iso", ("proxmox", "ostemplate", "local:iso/debian.iso"), "proxmox.ostemplate", "template volume"),
    ("api-host-with-shell", ("proxmox", "host", "pve; curl x"), "proxmox.host", "not a host name or IP address"),
    ("api-host-underscore", ("proxmox", "host", "pve_host"), "proxmox.host", "not a host name"),
    ("bucket-uppercase", ("state_backend", "bucket", "Homelab_State"), "state_backend.bucket", "S3 bucket name"),
    ("key-with-space", ("state_backend", "key", "lab/terraform state"), "state_backend.key", "S3 object key"),
    ("region-with-space", ("state_backend", "region", "us east"), "state_backend.region", "region name"),
    ("branch-with-space", ("github", "branch", "main branch"), "github.branch", "git branch name"),
    ("branch-dotdot", ("github", "branch", "a..b"), "github.branch", "git branch name"),
    ("runner-label-space", ("github", "runs_on", "self hosted"), "github.runs_on", "GitHub runner label"),
    ("url-port-too-big", service_url("http://198.18.0.250:70000/health"), "state_backend.endpoint", "invalid port"),
    ("url-port-zero", service_url("http://198.18.0.250:0/health"), "state_backend.endpoint", "invalid port"),
    ("url-host-bad", service_url("http://bad_host:8080/health"), "state_backend.endpoint", "does not name a host"),
    ("url-port-not-a-number", service_url("http://198.18.0.250:80a/health"), "'http://198.18.0.250:80a/health'",
     "has an invalid port"),
]


@pytest.mark.parametrize(("change", "key", "expected"), [(c, k, e) for _, c, k, e in GRAMMARS],
                         ids=[i for i, _, _, _ in GRAMMARS])
def test_names_follow_the_grammar_of_what_receives_them(in_tmp, change, key, expected):
    """A name that would reach apt, Docker, a shell or Proxmox malformed is refused at validation."""
    message = broken(in_tmp, *change)
    assert key in message and expected in message, message


@pytest.mark.parametrize(("change", "expected"), [
    (("hosts", 0, "packages", ["python3.11", "g++", "libc6-dev"]), ["python3.11", "g++", "libc6-dev"]),
])
def test_real_names_pass(in_tmp, change, expected):
    """Names the real tools accept are accepted."""
    *path, value = change
    document = lab_document()
    document[path[0]][path[1]][path[2]] = value
    assert getattr(load_inventory(write(in_tmp, document)).hosts[0], path[2]) == expected


# --- addresses ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "expected"), [
    (("hosts", 1, "ip", "198.18.0.0"), "hosts[utilities].ip: 198.18.0.0 is the network address of 198.18.0.0/24"),
    (("hosts", 1, "ip", "198.18.0.255"), "hosts[utilities].ip: 198.18.0.255 is the broadcast address"),
    (("proxmox", "gateway", "198.18.0.255"), "proxmox.gateway: 198.18.0.255 is the broadcast address"),
    (("proxmox", "gateway", "198.18.0.0"), "proxmox.gateway: 198.18.0.0 is the network address"),
])
def test_network_and_broadcast_addresses_are_not_hosts(in_tmp, change, expected):
    """The subnet's network and broadcast addresses name no host, and no gateway."""
    message = broken(in_tmp, *change)
    assert expected in message and "expected a host address, 198.18.0.1-198.18.0.254" in message, message


def test_a_31_bit_subnet_has_no_network_or_broadcast_address(in_tmp):
    """RFC 3021: in a /31 both addresses are hosts (the check leaves them alone)."""
    document = lab_document()
    document["proxmox"].update(prefix_length=31, gateway="198.18.0.200")
    document["hosts"] = [dict(document["hosts"][0], ip="198.18.0.201", services=[])]
    document["runner"]["host"] = None
    assert load_inventory(write(in_tmp, document)).hosts[0].ip == "198.18.0.201"


# --- bounds ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "expected"), [
    (("deploy", "snapshot_retention", 1000), "deploy.snapshot_retention: expected a number <= 100"),
    (("hosts", 0, "memory", 4 * 1024 ** 3), "hosts[proxy].memory: expected a number <= 1048576"),
    (("github", "environment", "e" * 300), "github.environment: expected at most 255 characters"),
])
def test_values_past_any_sense_are_refused(in_tmp, change, expected):
    """A deadline of 30 years, 1000 snapshots, a 4 PiB container: a typo, refused with the bound."""
    assert expected in broken(in_tmp, *change)
