"""The inventory: shipped files load, derivations are right, every bad input is one clear line."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from plugins.inventory import Inventory, InventoryError, load_inventory, schema_text
from plugins.stack import ansible_inventory
from plugins.tools.terraform import backend_config_args

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventories" / "lab.yml"
HOMELAB = ROOT / "inventories" / "homelab.yml"


@pytest.fixture(scope="module")
def lab() -> Inventory:
    """The shipped lab inventory."""
    return load_inventory(LAB)


@pytest.fixture(scope="module")
def homelab() -> Inventory:
    """The shipped homelab inventory (rendered only, never contacted)."""
    return load_inventory(HOMELAB)


def lab_document() -> dict:
    """A fresh copy of the lab inventory as plain data, to break in a test."""
    return yaml.safe_load(LAB.read_text())


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Path:
    """Work in tmp_path, so messages name the file `inv.yml` as a user in its directory would see it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(tmp_path: Path, content: str | dict) -> Path:
    """Write an inventory into tmp_path and give its path."""
    path = tmp_path / "inv.yml"
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
    return path


# --- the shipped inventories -------------------------------------------------------------------


@pytest.mark.parametrize("path", [LAB, HOMELAB], ids=["lab", "homelab"])
def test_shipped_inventory_loads(path):
    """Both shipped inventories validate."""
    inventory = load_inventory(path)
    assert [h.vmid for h in inventory.hosts] == [200, 201, 210, 240, 250]
    assert inventory.proxmox.node == "homelab"
    assert inventory.runner_host.hostname == "ci-runner"


def test_vmid_240_lives_at_202_in_both(lab, homelab):
    """Nothing derives an address from a VMID: monitoring (240) is at .202 in both inventories."""
    assert lab.host("monitoring").ip == "198.18.0.202"
    assert homelab.host(240).ip.rsplit(".", 1)[1] == "202"  # the owner's LAN stays in homelab.yml
    assert lab.terraform_vars()["containers"]["monitoring"]["ip"] == "198.18.0.202"
    assert ansible_inventory(lab)["all"]["hosts"]["monitoring"]["ansible_host"] == "198.18.0.202"


def test_lab_stays_inside_the_lab_range(lab):
    """Every address of the lab inventory may be contacted (198.18.0.0/15 or loopback)."""
    from tests.netfence import is_allowed

    addresses = [lab.proxmox.host, lab.proxmox.gateway, *(h.ip for h in lab.hosts)]
    addresses += [s.connect_to or s.url_host for _, s in lab.endpoints]  # a route is reached at the proxy
    assert all(is_allowed(a) for a in addresses), addresses


def test_owner_lan_appears_only_in_homelab(lab, homelab):
    """The owner's LAN is in homelab.yml and nowhere in the lab inventory (and the fence refuses it)."""
    from tests.netfence import is_allowed

    owner_lan = homelab.proxmox.gateway.rsplit(".", 1)[0] + "."
    assert owner_lan not in LAB.read_text()
    assert all(h.ip.startswith(owner_lan) and not is_allowed(h.ip) for h in homelab.hosts)


def test_rollback_set_never_holds_the_runner(lab, homelab):
    """The runner defaults out of the rollback set; every other host is in it (incident #7)."""
    for inventory in (lab, homelab):
        assert [h.hostname for h in inventory.rollback_set] == ["proxy", "utilities", "monitoring", "app-demo"]


def test_runner_rollback_defaults_to_false(tmp_path):
    """Without an explicit `rollback`, the runner is false and the others true."""
    document = lab_document()
    del document["hosts"][2]["rollback"]
    inventory = load_inventory(write(tmp_path, document))
    assert inventory.host("ci-runner").rollback is False
    assert inventory.host("proxy").rollback is True
    assert inventory.is_runner(inventory.host("ci-runner"))


def test_off_inventory_runner(tmp_path):
    """runner.host null: no runner host, every host in the rollback set, tfvars runner null."""
    document = lab_document()
    document["runner"]["host"] = None
    del document["hosts"][2]["rollback"]
    inventory = load_inventory(write(tmp_path, document))
    assert inventory.runner_host is None
    assert len(inventory.rollback_set) == 5
    assert inventory.terraform_vars()["runner"] is None
    assert "runner" not in ansible_inventory(inventory)["all"]["children"]


def test_helpers(lab):
    """Lookups by name, vmid and role; services in order; the API URL; key locations."""
    assert lab.host("app-demo").vmid == 250
    assert lab.host(201).hostname == "utilities"
    assert [h.hostname for h in lab.hosts_with_role("monitoring")] == ["monitoring"]
    assert [s.name for _, s in lab.endpoints] == [
        "traefik-entrypoint", "traefik-ping", "node-exporter", "promtail", "vaultwarden",
        "vaultwarden-admin-locked", "vaultwarden-via-traefik", "snipeit", "snipeit-login", "snipeit-via-traefik",
        "netbox", "netbox-via-traefik", "node-exporter", "promtail", "node-exporter", "promtail", "prometheus", "prometheus-via-traefik",
        "grafana", "grafana-via-traefik", "loki", "uptime-kuma", "uptime-kuma-via-traefik", "zabbix-web",
        "zabbix-web-via-traefik", "node-exporter", "promtail", "app-demo-backend", "app-demo-backend-via-traefik",
        "app-demo-frontend", "app-demo-frontend-via-traefik", "node-exporter", "promtail"]
    assert all(s in h.endpoints for h, s in lab.endpoints)
    assert len(lab.protected_hosts) == 5
    assert lab.proxmox_url == "https://127.0.0.1:8006"
    assert lab.proxmox.tls_verify == "/var/lib/homelab-lab/pve/ca.pem"
    assert lab.where("proxmox.node").endswith("lab.yml: proxmox.node")
    assert all(h.node == "homelab" for h in lab.hosts)
    with pytest.raises(LookupError, match="no host 'nope'.*proxy \\(200\\)"):
        lab.host("nope")


def test_terraform_vars(lab, tmp_path):
    """tfvars: the runner apart from containers, tags sorted, the key read from <deploy_key>.pub."""
    tfvars = lab.terraform_vars()
    assert set(tfvars) == {
        "node", "ostemplate", "bridge", "gateway", "prefix_length", "ssh_public_keys", "containers", "runner",
    }
    assert list(tfvars["containers"]) == ["proxy", "utilities", "monitoring", "app-demo"]
    assert tfvars["runner"] == {
        "vmid": 210, "hostname": "ci-runner", "node": "homelab", "storage": "local", "ip": "198.18.0.210",
        "prefix_length": 24,
        "memory": 1024, "cores": 1, "tags": ["github_runner"], "protected": True,
    }
    assert tfvars["containers"]["app-demo"]["vmid"] == 250
    json.dumps(tfvars)  # JSON-able

    document = lab_document()
    key = tmp_path / "deploy_ed25519"
    (tmp_path / "deploy_ed25519.pub").write_text("ssh-ed25519 AAAAC3Nz deploy@lab\n")
    document["runner"]["deploy_key"] = str(key)
    document["hosts"][0]["roles"] = ["zeta", "alpha"]
    inventory = load_inventory(write(tmp_path, document))
    assert inventory.terraform_vars()["ssh_public_keys"] == "ssh-ed25519 AAAAC3Nz deploy@lab"
    assert inventory.terraform_vars()["containers"]["proxy"]["tags"] == ["alpha", "zeta"]


def test_ansible_inventory(lab):
    """Ansible inventory: all.hosts with ansible_host and host vars, a group per role, group runner."""
    document = ansible_inventory(lab)["all"]
    proxy = document["hosts"]["proxy"]
    assert {key: proxy[key] for key in ("ansible_host", "vmid", "protected", "rollback", "packages", "containers",
                                        "host_roles")} == {
        "ansible_host": "198.18.0.200", "vmid": 200, "protected": True, "rollback": True,
        "packages": ["rsync", "python3"], "containers": ["traefik", "node-exporter", "promtail"],
        "host_roles": ["proxy"],
    }
    assert [s["container"] for s in proxy["stack_services"]] == ["traefik", "node-exporter", "promtail"]
    assert proxy["proxy_config_dir"] == "/opt/homelab/traefik"
    assert document["children"]["runner"] == {"hosts": {"ci-runner": {}}}
    assert document["children"]["app_demo"] == {"hosts": {"app-demo": {}}}
    assert set(document["children"]) == {"proxy", "utilities", "github_runner", "monitoring", "app_demo", "runner"}
    assert document["vars"]["ansible_ssh_private_key_file"] == "/var/lib/homelab-lab/keys/deploy_ed25519"
    yaml.safe_load(yaml.safe_dump(ansible_inventory(lab)))


def test_host_roles_follow_the_inventorys_order_of_roles(lab):
    """host_roles (what site.yml applies) lists a host's roles in the order roles first appear in the inventory."""
    document = lab.model_copy(deep=True)
    last = document.hosts[-1]
    last.roles = ["app_demo", "proxy"]  # proxy appears first in the inventory (first host)
    hosts = ansible_inventory(document)["all"]["hosts"]
    assert hosts[last.hostname]["host_roles"] == ["proxy", "app_demo"]
    assert all(role in document.roles for h in hosts.values() for role in h["host_roles"])


def test_state_backend_config_carries_skip_flags(homelab):
    """The OVH backend skips STS/IAM calls (incident #3) and names its endpoint."""
    config = homelab.state_backend.backend_config()
    assert config["endpoints"] == {"s3": "https://s3.gra.io.cloud.ovh.net"}
    assert config["skip_requesting_account_id"] and config["skip_credentials_validation"]
    assert "max_retries" not in backend_config_args(config), "the homelab keeps Terraform's own retries"


def test_the_labs_backend_gives_up_on_a_store_that_is_down_after_three_attempts():
    """The lab's store is on loopback: a store that is down is not asked Terraform's five times with backoff."""
    lab = load_inventory(ROOT / "inventories" / "lab.yml")
    assert "max_retries=3" in backend_config_args(lab.state_backend.backend_config())


def test_schema_is_up_to_date():
    """inventories/schema.json is what the model generates (`python -m plugins.inventory schema`)."""
    shipped = (ROOT / "inventories" / "schema.json").read_text()
    assert shipped == schema_text(), "inventories/schema.json is stale: run python -m plugins.inventory schema"


# --- bad inputs: one line naming file, key, expected and found --------------------------------


def _set(*path_and_value):
    *path, value = path_and_value

    def mutate(document):
        target = document
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return mutate


BAD = [
    ("duplicate-vmid", _set("hosts", 1, "vmid", 200),
     ["hosts[utilities].vmid", "200 is already the vmid of hosts[proxy]", "unique"]),
    ("duplicate-ip", _set("hosts", 1, "ip", "198.18.0.200"),
     ["hosts[utilities].ip", "'198.18.0.200' is already the ip of hosts[proxy]"]),
    ("duplicate-hostname", _set("hosts", 1, "hostname", "proxy"),
     ["hosts[1].hostname", "'proxy' is already the hostname of hosts[0]"]),
    ("runner-in-rollback-set", _set("hosts", 2, "rollback", True),
     ["hosts[ci-runner].rollback", "rollback set", "expected false", "found true"]),
    ("runner-unknown", _set("runner", "host", "ci-runnr"),
     ["runner.host", "'ci-runnr' is not a host", "expected one of: proxy"]),
    ("not-an-address", _set("hosts", 2, "ip", "198.18.0.300"),
     ["hosts[ci-runner].ip", "'198.18.0.300' is not an IPv4 address"]),
    ("misspelt-top-level-key", _set("hostz", []),
     ["hostz", "unknown key 'hostz'", "did you mean 'hosts'", "expected one of"]),
    ("misspelt-host-key", _set("hosts", 0, "protectd", True),
     ["hosts[proxy].protectd", "unknown key", "did you mean 'protected'"]),
    ("service-not-declared", _set("hosts", 4, "services", ["app-demo-backendd"]),
     ["hosts[app-demo].services[0]", "'app-demo-backendd' is not declared in services/", "expected one of"]),
    ("service-on-two-hosts", _set("hosts", 1, "services", ["vaultwarden", "grafana"]),
     ["hosts[monitoring].services[1]", "grafana already runs on hosts[utilities]"]),
    ("routes-without-traefik", _set("hosts", 0, "services", []), ["hosts", "no host runs traefik"]),
    ("secret-source-both", _set("stack", "secrets", "grafana_admin_password", {"env": "A", "vault": "b"}),
     ["stack.secrets.grafana_admin_password", "exactly one of env"]),
    ("bad-token-id", _set("proxmox", "token_id", "root@pam"),
     ["proxmox.token_id", "expected user@realm!name", "'root@pam'"]),
    ("vmid-0", _set("hosts", 0, "vmid", 0),
     ["hosts[proxy].vmid", "expected a VMID 100-999999999", "found 0"]),
    ("gateway-outside-subnet", _set("proxmox", "gateway", "198.18.5.1"),
     ["proxmox.gateway", "198.18.5.1 is outside every host's subnet", "198.18.0.0/24"]),
    ("one-host-outside-subnet", _set("hosts", 4, "ip", "198.18.1.250"),
     ["hosts[app-demo].ip", "not in the gateway 198.18.0.1's subnet", "198.18.0.0/24"]),
    ("empty-role", _set("hosts", 0, "roles", [""]),
     ["hosts[proxy].roles[0]", "'' is not a usable role name", "expected"]),
    ("hostname-not-a-label", _set("hosts", 0, "hostname", "-proxy"),
     ["hostname", "'-proxy' is not an RFC 1123 label"]),
    ("missing-key", lambda d: d["hosts"][0].pop("ip"), ["hosts[proxy].ip", "required key is missing"]),
    ("tls-off", _set("proxmox", "verify_tls", False), ["proxmox.verify_tls", "cannot be turned off", "ca_file"]),
    ("bool-as-string", _set("hosts", 0, "protected", "yes"),
     ["hosts[proxy].protected", "expected true or false", "found 'yes'"]),
    ("no-hosts", _set("hosts", []), ["hosts", "expected at least 1 item(s)", "found []"]),
    ("section-not-a-mapping", _set("proxmox", "127.0.0.1"), ["proxmox", "expected a mapping", "found '127.0.0.1'"]),
]


def assert_one_line_error(path, expected):
    """Loading path raises InventoryError: one line, starting with the file name, with every fragment."""
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path.name}: ")
    for fragment in expected:
        assert fragment in message, message


@pytest.mark.parametrize(("mutate", "expected"), [(m, e) for _, m, e in BAD], ids=[i for i, _, _ in BAD])
def test_bad_inventory_is_one_line(in_tmp, mutate, expected):
    """A broken inventory raises InventoryError: one line, the file, the key, what was expected and found."""
    document = lab_document()
    mutate(document)
    path = write(in_tmp, document)
    assert_one_line_error(path, expected)


DECLARATIONS_IN_AN_INVENTORY = [
    ("secret-without-source", lambda d: d["stack"]["secrets"].pop("grafana_admin_password"),
     ("services/grafana.yml: environment.GF_SECURITY_ADMIN_PASSWORD: secret grafana_admin_password is not in "
      "stack.secrets of inv.yml (expected a secret stack.secrets names, or "
      "stack.secrets.grafana_admin_password: {env: VAR} or {vault: var} added there)")),
    ("published-port-twice", lambda d: (d["hosts"][3].update(services=["grafana", "app-demo-postgres",
                                                                        "app-demo-backend"]),
                                        d["hosts"][4].update(services=[])),
     ("services/app-demo-backend.yml: ports[0].published: published port 3000 is also services/grafana.yml's "
      "(ports[0].published); inv.yml runs both on monitoring (expected a unique published port per host)")),
]


@pytest.mark.parametrize(("mutate", "expected"), [(m, e) for _, m, e in DECLARATIONS_IN_AN_INVENTORY],
                         ids=[i for i, _, _ in DECLARATIONS_IN_AN_INVENTORY])
def test_a_declaration_the_inventory_cannot_run_names_the_declaration_and_the_inventory(in_tmp, mutate, expected):
    """A secret stack.secrets does not source, two declarations publishing one port on a host: the line starts
    with the declaration's file and key, and names the inventory (and the other declaration)."""
    document = lab_document()
    mutate(document)
    path = write(in_tmp, document)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path.name)
    # run from tmp_path, the repository's catalog is shown by its absolute path
    assert [line.replace(f"{ROOT}/", "") for line in caught.value.lines()] == [expected]


BAD_FILES = [
    ("empty-file", "", ["file is empty", "expected a mapping"]),
    ("comments-only", "# nothing yet\n", ["file is empty"]),
    ("top-level-list", "- vmid: 200\n", ["top level is a list", "expected a mapping"]),
    ("top-level-scalar", "lab\n", ["top level is a str", "expected a mapping"]),
    ("invalid-yaml", "environment: lab\nproxmox: {host: [\n", ["line 3", "invalid YAML"]),
    ("tab-indent", "environment: lab\nproxmox:\n\thost: x\n", ["line 3", "invalid YAML"]),
    ("duplicate-yaml-key", "environment: lab\nenvironment: prod\n", ["line 2", "duplicate key 'environment'"]),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in BAD_FILES], ids=[i for i, _, _ in BAD_FILES])
def test_unreadable_inventory_is_one_line(in_tmp, text, expected):
    """Empty, non-mapping and invalid YAML files are one line naming the file (and the line)."""
    path = write(in_tmp, text)
    assert_one_line_error(path, expected)


def test_missing_file_is_one_line(tmp_path):
    """A missing file names itself and says a YAML file was expected."""
    with pytest.raises(InventoryError, match=r"nope\.yml: no such inventory file \(expected a YAML file"):
        load_inventory(tmp_path / "nope.yml")


def test_relative_path_is_shown_as_given(monkeypatch, tmp_path):
    """Messages name the file relative to the working directory, like `inventories/lab.yml: …`."""
    (tmp_path / "inventories").mkdir()
    document = lab_document()
    document["hosts"][2]["ip"] = "198.18.0.300"
    (tmp_path / "inventories" / "lab.yml").write_text(yaml.safe_dump(document))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InventoryError) as caught:
        load_inventory("inventories/lab.yml")
    assert str(caught.value) == "inventories/lab.yml: hosts[ci-runner].ip: '198.18.0.300' is not an IPv4 address"


@pytest.mark.parametrize("key", ["token_secret_env", "token_secret"])
def test_secret_is_never_shown(tmp_path, key):
    """A secret pasted where a variable name belongs, or under a made-up key, stays out of the message."""
    document = lab_document()
    document["proxmox"][key] = "9f8e-very-secret-value"
    with pytest.raises(InventoryError) as caught:
        load_inventory(write(tmp_path, document))
    assert "9f8e" not in str(caught.value)
    assert f"proxmox.{key}" in str(caught.value)


def test_all_problems_on_one_line(tmp_path):
    """Several field errors come together, still on one line."""
    document = lab_document()
    document["hosts"][0]["vmid"] = 0
    document["hosts"][1]["ip"] = "nope"
    with pytest.raises(InventoryError) as caught:
        load_inventory(write(tmp_path, document))
    assert len(caught.value.problems) == 2
    assert "\n" not in str(caught.value)


def test_model_accepts_python_data_too():
    """The model validates plain data (not only files) with the same rules."""
    document = copy.deepcopy(lab_document())
    document["hosts"][1]["vmid"] = 200
    with pytest.raises(ValueError, match="already the vmid"):
        Inventory.model_validate(document)


# --- pytest integration ------------------------------------------------------------------------


def run_pytest(tmp_path: Path, inventory: Path, conftest: str = "") -> subprocess.CompletedProcess:
    """Run a tiny pytest session with the inventory plugin in a subprocess."""
    (tmp_path / "conftest.py").write_text(conftest)
    (tmp_path / "test_uses_inventory.py").write_text(
        "def test_it(inventory):\n    assert inventory.host('proxy').vmid == 200\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "plugins.inventory.plugin", "--inventory", str(inventory),
         "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_fixture_gives_the_inventory_even_when_registered_twice(tmp_path):
    """`inventory` fixture works; a conftest registering the plugin and the option again is harmless."""
    conftest = (
        'pytest_plugins = ["plugins.inventory.plugin"]\n'
        "def pytest_addoption(parser):\n"
        "    try:\n        parser.addoption('--inventory')\n"
        "    except ValueError:\n        pass\n"
    )
    result = run_pytest(tmp_path, LAB, conftest)
    assert result.returncode == 0, result.stdout + result.stderr


def test_bad_inventory_stops_the_session_with_one_line(tmp_path):
    """A bad --inventory ends the session (exit 4) with the one-line message, no traceback."""
    document = lab_document()
    document["hosts"][0]["vmid"] = 0
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(document))
    result = run_pytest(tmp_path, bad)
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert "hosts[proxy].vmid: expected a VMID 100-999999999, found 0" in output
    assert "Traceback" not in output
