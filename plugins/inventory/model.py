"""Typed inventory model: one validated object per environment, read by every layer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, PrivateAttr, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from plugins.inventory.backup_policy import BackupPolicy, StorageId
from plugins.inventory.catalog import Catalog, repository_catalog
from plugins.inventory.checks import FunctionalCheck, Service, derive_checks
from plugins.inventory.cluster import HaPolicy, Node
from plugins.inventory.declaration import MAX_DEADLINE, Declaration, SecretName
from plugins.inventory.errors import problem_line
from plugins.inventory.fields import (
    AbsolutePath,
    BranchName,
    BridgeName,
    DebianPackage,
    EnvVarName,
    Flag,
    Hostname,
    HttpUrl,
    IPv4,
    Label,
    OsTemplate,
    Region,
    RoleName,
    RunnerLabel,
    S3Bucket,
    S3Key,
    TlsOn,
    TokenId,
    UnixUser,
)
from plugins.inventory.firewall import Firewall
from plugins.inventory.rules import check_rules
from plugins.inventory.secret_source import SecretSource
from plugins.inventory.section import Strict
from plugins.inventory.security import Security
from plugins.inventory.stack_needs import PROXY_SERVICE

# Upper bounds past which a value is a typo, not a choice (a deadline of 30 years, a 4 PiB container); a
# deadline's (MAX_DEADLINE, an hour: a longer health wait already means the service is broken) is declaration.py's.
MAX_RETENTION = 100  # deploy snapshots kept per container
MAX_MEMORY = 1024 * 1024  # MiB: 1 TiB
EXTENSION_PREFIX = "x-"


class Proxmox(Strict):
    """The Proxmox VE API the suite talks to, and the container defaults it creates."""

    host: Hostname = Field(description="API host name or address")
    port: Annotated[int, Field(strict=True, ge=1, le=65535)] = 8006
    node: Label = Field(description="default node of every host (the owner's is 'homelab', not 'pve')")
    token_id: TokenId = Field(description="user@realm!name")
    token_secret_env: EnvVarName = Field(
        description="NAME of the environment variable holding the token secret (never the secret)"
    )
    ca_file: AbsolutePath | None = Field(
        None, description="absolute path of the CA bundle that signs the API certificate"
    )
    verify_tls: TlsOn = Field(True, description="always true; use ca_file for a private CA")
    ostemplate: OsTemplate = Field(description="<storage>:vztmpl/<file>.tar.zst")
    bridge: BridgeName
    gateway: IPv4
    prefix_length: Annotated[int, Field(strict=True, ge=1, le=32)]
    http_timeout: Annotated[float, Field(strict=True, gt=0, le=3600, allow_inf_nan=False)] = Field(
        60, description="seconds one API call may take before the suite gives up on it")
    task_timeout: Annotated[float, Field(strict=True, gt=0, le=MAX_DEADLINE, allow_inf_nan=False)] = Field(
        300, description="seconds a task (snapshot, rollback, create) may run before the suite gives up on it")
    shared_storages: list[StorageId] = Field(
        [], description="storages every node of the cluster sees (PVE's `shared 1`): where HA-managed hosts live")

    @property
    def tls_verify(self) -> str | bool:
        """Value for requests' `verify`: the CA file, or True for the system CAs."""
        return self.ca_file or True


class StateBackend(Strict):
    """Terraform S3 backend (AWS or an S3-compatible store such as OVH)."""

    bucket: S3Bucket
    key: S3Key
    region: Region
    endpoint: HttpUrl | None = None
    sts_endpoint: HttpUrl | None = None
    iam_endpoint: HttpUrl | None = None
    use_path_style: Flag = False
    use_lockfile: Flag = True
    skip_credentials_validation: Flag = False
    skip_requesting_account_id: Flag = False
    skip_region_validation: Flag = False
    skip_metadata_api_check: Flag = False
    skip_s3_checksum: Flag = False
    max_retries: Annotated[int, Field(strict=True, ge=1, le=25)] | None = Field(
        None, description="attempts of one S3 request before Terraform gives up, with backoff between them "
        "(unset: Terraform's 5)")

    def backend_config(self) -> dict:
        """Terraform `backend "s3"` settings (endpoints nested as Terraform >= 1.6 expects)."""
        config = self.model_dump(exclude={"endpoint", "sts_endpoint", "iam_endpoint"})
        endpoints = {
            "s3": self.endpoint,
            "sts": self.sts_endpoint,
            "iam": self.iam_endpoint,
        }
        endpoints = {name: url for name, url in endpoints.items() if url}
        if endpoints:
            config["endpoints"] = endpoints
        return config


class Runner(Strict):
    """The machine the suite runs on, and the key it deploys with."""

    host: Label | None = Field(description="hostname of the inventory host the suite runs on, or null")
    deploy_key: AbsolutePath = Field(
        description="absolute path of the private deploy key on the runner (its public half is <path>.pub)"
    )
    deploy_user: UnixUser = "deploy"


class Github(Strict):
    """Where the deploy workflow runs (incidents #1, #15, #16)."""

    branch: BranchName = "main"
    runs_on: RunnerLabel = "self-hosted-proxmox"
    environment: Annotated[str, Field(strict=True, min_length=1, max_length=255)] = "production"


class Deploy(Strict):
    """Deploy stage settings."""

    snapshot_retention: Annotated[int, Field(strict=True, ge=1, le=MAX_RETENTION)] = 3
    node_down: Literal["refuse", "proceed"] = Field(
        "refuse", description="a cluster node down at preflight (the cluster still quorate): refuse the run, or "
        "proceed on the nodes that are up (the down node's hosts are named; HA ones are the HA manager's to recover)")
    max_health_wait: Annotated[float, Field(strict=True, gt=0, le=MAX_DEADLINE, allow_inf_nan=False)] | None = Field(
        None, description="seconds: a cap on every service's deadline and the hosts' wait in the deploy's health "
        "checks (a test's short wait); the rollback still waits each service's declared deadline, so a slow starter "
        "comes back")


class Host(Strict):
    """One LXC container of the homelab."""

    vmid: Annotated[int, Field(strict=True, ge=100, le=999_999_999)]
    hostname: Label
    ip: IPv4
    node: Label | None = Field(None, description="the node it should run on (one of nodes:); default: proxmox.node")
    storage: StorageId = Field("local", description="the storage of its root file system")
    ha: HaPolicy | None = Field(None, description="managed by the HA manager (its storage must be shared); "
                                "absent: not HA-managed")
    roles: list[RoleName] = Field([])
    protected: Flag = Field(False, description="the plan guard refuses to delete or replace it")
    rollback: Flag | None = Field(None, description="in the rollback set; default true, false for the runner")
    packages: list[DebianPackage] = Field([])
    memory: Annotated[int, Field(strict=True, ge=16, le=MAX_MEMORY)] = Field(512, description="MiB")
    cores: Annotated[int, Field(strict=True, ge=1, le=512)] = 1
    services: list[Label] = Field([], description="the services/<name>.yml declarations this host runs")

    _declarations: list[Declaration] = PrivateAttr(default_factory=list)
    _endpoints: list[Service] = PrivateAttr(default_factory=list)
    _probes: list[FunctionalCheck] = PrivateAttr(default_factory=list)

    @property
    def declarations(self) -> list[Declaration]:
        """The declarations of the services this host runs, each after the ones it depends on."""
        return self._declarations

    @property
    def containers(self) -> list[str]:
        """Docker containers expected running on the host: its services' containers."""
        return [decl.container for decl in self._declarations]

    @property
    def endpoints(self) -> list[Service]:
        """HTTP checks the host's services owe: each acceptance directly, each route through the proxy."""
        return self._endpoints

    @property
    def probes(self) -> list[FunctionalCheck]:
        """Functional probes the host's services owe: each directly, and through the proxy where routed."""
        return self._probes


class Tls(Strict):
    """The proxy's certificate: files on the runner, copied to the proxy host; the CA the checks verify with."""

    cert_file: AbsolutePath
    key_file: AbsolutePath
    ca_file: AbsolutePath | None = Field(None, description="CA that signs cert_file; none: the system CAs")


class Vault(Strict):
    """The Ansible Vault file holding the `{vault: …}` secrets, and the variable naming its password file."""

    file: Annotated[str, Field(strict=True, pattern=r"^/?[A-Za-z0-9_][A-Za-z0-9._-]*(?:/[A-Za-z0-9_][A-Za-z0-9._-]*)*$")] \
        = Field(description="the encrypted vars file: absolute, or relative to the repository")
    password_file_env: EnvVarName = Field(
        "ANSIBLE_VAULT_PASSWORD_FILE", description="NAME of the env var holding the password file's path (CI writes it)")


class Stack(Strict):
    """The environment's values for the catalog's services: domain, TLS, where each secret comes from."""

    domain: Hostname = Field(description="routes are <route.host>.<domain>")
    tls: Tls
    secrets: dict[SecretName, SecretSource] = Field({})
    vault: Vault | None = Field(None, description="where the vault secrets are (required when one secret is vault)")


class Inventory(Strict):
    """One environment: the single source of truth for every layer."""

    # Top-level `x-…` keys are ignored: the place for YAML anchors that hosts merge with `<<: *name`,
    # as Docker Compose's `x-` extension fields are.
    model_config = ConfigDict(json_schema_extra={"patternProperties": {"^x-": {}}})

    environment: Label
    proxmox: Proxmox
    state_backend: StateBackend
    runner: Runner
    github: Github = Github()
    deploy: Deploy = Deploy()
    stack: Stack | None = None
    backup: BackupPolicy | None = None
    firewall: Firewall | None = Field(None, description="who may reach what (plugins/inventory/firewall.py)")
    security: Security = Security()
    nodes: list[Node] = Field([], description="the cluster's nodes; absent: PVE's standalone node, proxmox.node")
    hosts: Annotated[list[Host], Field(min_length=1)]

    _source: str = PrivateAttr("<inventory>")
    _catalog: Catalog | None = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _drop_extension_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith(EXTENSION_PREFIX))}
        return data

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> Inventory:
        context = info.context or {}
        catalog = context.get("catalog") or repository_catalog()
        self._source = context.get("source") or self._source  # a declaration's problem names the inventory too
        problems = check_rules(self, catalog)
        if problems:
            summary = "; ".join(problem_line(self._source, problem) for problem in problems)
            raise PydanticCustomError(
                "inventory_rules",
                "{summary}",
                {"summary": summary, "problems": problems},
            )
        for host in self.hosts:
            host.node = host.node or self.proxmox.node
            if host.rollback is None:
                host.rollback = host.hostname != self.runner.host
        self._catalog = catalog
        derive_checks(self, catalog)
        return self

    @property
    def catalog(self) -> Catalog:
        """The service catalog this inventory was validated against."""
        return self._catalog or repository_catalog()

    @property
    def node_names(self) -> list[str]:
        """The cluster's nodes (proxmox.node alone when the inventory declares none)."""
        return [n.name for n in self.nodes] or [self.proxmox.node]

    @property
    def ha_hosts(self) -> list[Host]:
        """Hosts the HA manager keeps running (and would restart during a rollback unless told not to)."""
        return [h for h in self.hosts if h.ha is not None]

    @property
    def proxy_host(self) -> Host | None:
        """The host that runs the reverse proxy (service `traefik`), or None."""
        return next((h for h in self.hosts if PROXY_SERVICE in h.services), None)

    @property
    def source(self) -> str:
        """The file this inventory was loaded from, as shown in messages."""
        return self._source

    def where(self, key_path: str) -> str:
        """Point a message at a key of the inventory file: `inventories/lab.yml: proxmox.node`."""
        return f"{self._source}: {key_path}"

    def host(self, name: str | int) -> Host:
        """The host with this hostname (or vmid); LookupError naming the known hosts otherwise."""
        for host in self.hosts:
            if name in (host.hostname, host.vmid):
                return host
        known = ", ".join(f"{h.hostname} ({h.vmid})" for h in self.hosts)
        raise LookupError(f"no host {name!r} in {self._source}; hosts: {known}")

    @property
    def runner_host(self) -> Host | None:
        """The inventory host the suite runs on, or None when the runner is off-inventory."""
        return self.host(self.runner.host) if self.runner.host else None

    def is_runner(self, host: Host) -> bool:
        """Tell whether this host is the one the suite runs on."""
        return host.hostname == self.runner.host

    @property
    def rollback_set(self) -> list[Host]:
        """Hosts snapshotted before a deploy and rolled back on failure: never the runner."""
        return [h for h in self.hosts if h.rollback and not self.is_runner(h)]

    @property
    def protected_hosts(self) -> list[Host]:
        """Hosts the plan guard refuses to delete or replace."""
        return [h for h in self.hosts if h.protected]

    @property
    def endpoints(self) -> list[tuple[Host, Service]]:
        """Every (host, HTTP check) pair, in inventory order."""
        return [(h, s) for h in self.hosts for s in h.endpoints]

    def hosts_with_role(self, role: str) -> list[Host]:
        """Hosts that carry this role."""
        return [h for h in self.hosts if role in h.roles]

    @property
    def roles(self) -> list[str]:
        """Every role of the inventory, in order of first appearance."""
        return list(dict.fromkeys(r for h in self.hosts for r in h.roles))

    @property
    def proxmox_url(self) -> str:
        """Base URL of the Proxmox VE API server (without /api2/json)."""
        host = self.proxmox.host
        return f"https://[{host}]:{self.proxmox.port}" if ":" in host else f"https://{host}:{self.proxmox.port}"

    def ssh_public_keys(self) -> str:
        """The deploy key's public half (<deploy_key>.pub), or '' when it does not exist yet."""
        public = Path(self.runner.deploy_key + ".pub")
        return public.read_text().strip() if public.is_file() else ""

    def _container_vars(self, host: Host) -> dict:
        return {
            "vmid": host.vmid,
            "hostname": host.hostname,
            "node": host.node,
            "storage": host.storage,
            "ip": host.ip,
            "prefix_length": self.proxmox.prefix_length,
            "memory": host.memory,
            "cores": host.cores,
            "tags": sorted(host.roles),
            "protected": host.protected,
        }

    def terraform_vars(self) -> dict:
        """JSON-able tfvars; `containers` excludes the runner (a direct, prevent_destroy resource)."""
        runner = self.runner_host
        return {
            "node": self.proxmox.node,
            "ostemplate": self.proxmox.ostemplate,
            "bridge": self.proxmox.bridge,
            "gateway": self.proxmox.gateway,
            "prefix_length": self.proxmox.prefix_length,
            "ssh_public_keys": self.ssh_public_keys(),
            "containers": {h.hostname: self._container_vars(h) for h in self.hosts if not self.is_runner(h)},
            "runner": self._container_vars(runner) if runner else None,
        }
