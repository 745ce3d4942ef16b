"""The catalog of services: one declaration per service (services/<name>.yml), shared by every inventory.

A declaration says what a service IS (its upstream image, container, ports, environment with secrets by
reference, volumes, health check, dependencies, route and HTTP acceptance); an inventory says WHERE it runs
(hosts[].services) and the environment's values (stack: domain, TLS files, where each secret comes from).
Everything else is derived from the two: what Ansible deploys, Traefik's routes, the health checks.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from plugins.inventory.errors import InventoryError, Problem
from plugins.inventory.fields import AbsolutePath, ContainerName, Flag, Label, RoleName, StatusCode
from plugins.inventory.files import display, read_text
from plugins.inventory.strict_yaml import parse

CATALOG_DIR = Path(__file__).resolve().parents[2] / "services"
MAX_DEADLINE = 3600

# name[:port]/path:tag — a Docker reference with an explicit tag (a digest is allowed after it).
_IMAGE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
                    r":[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(?:@sha256:[a-f0-9]{64})?$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_PATH = re.compile(r"^/[A-Za-z0-9._/-]*$")

Port = Annotated[int, Field(strict=True, ge=1, le=65535)]
Seconds = Annotated[float, Field(strict=True, gt=0, le=MAX_DEADLINE, allow_inf_nan=False)]
Image = Annotated[str, Field(strict=True, pattern=_IMAGE.pattern)]
EnvName = Annotated[str, Field(strict=True, pattern=_ENV.pattern)]
SecretName = Annotated[str, Field(strict=True, pattern=_SECRET.pattern)]
UrlPath = Annotated[str, Field(strict=True, pattern=_PATH.pattern)]
VolumeSource = Annotated[str, Field(strict=True, pattern=r"^(?:/[A-Za-z0-9._/-]*|[a-z0-9][a-z0-9_.-]*)$")]


class Strict(BaseModel):
    """Base of every declaration section: a misspelt key is an error."""

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)


class PortMapping(Strict):
    """A port the container listens on, and the host port it is published on (none: the host's network only)."""

    container: Port
    published: Port | None = None
    name: Label | None = Field(None, description="what the port is for (Traefik's entrypoints are named so)")


class SecretRef(Strict):
    """An environment value that is a secret: its NAME only; the inventory says where its value comes from."""

    secret: SecretName


class Volume(Strict):
    """A named volume (`pgdata`) or a host directory (`/opt/homelab/x`) mounted at target."""

    source: VolumeSource
    target: AbsolutePath
    read_only: Flag = False

    @property
    def named(self) -> bool:
        """True for a Docker named volume, false for a host directory."""
        return not self.source.startswith("/")


class Healthcheck(Strict):
    """Docker's HEALTHCHECK of the container."""

    test: Annotated[list[Annotated[str, Field(strict=True, min_length=1)]], Field(min_length=1)]
    interval: Seconds = 10
    timeout: Seconds = 5
    retries: Annotated[int, Field(strict=True, ge=1, le=100)] = 3
    start_period: Annotated[float, Field(strict=True, ge=0, le=MAX_DEADLINE)] = 0


class Acceptance(Strict):
    """One HTTP check of the service: a container port's path and the codes that mean healthy (incident #12)."""

    name: Label | None = Field(None, description="suffix of the check's name: <service>-<name>")
    port: Port = Field(description="the container port (it must be published)")
    path: UrlPath = "/"
    accepted: Annotated[list[StatusCode], Field(min_length=1)]
    warmup: list[StatusCode] = []
    deadline: Seconds = 60
    follow_redirects: Flag = False


class Route(Strict):
    """Traefik's router for the service: <host>.<domain> → the service's host:published port."""

    host: Label = Field(description="the first label of the host name; the inventory gives the domain")
    port: Port = Field(description="the container port Traefik forwards to (it must be published)")


class FunctionalProbe(Strict):
    """A functional probe of the service (plugins/health/functional): what it does beyond answering a code."""

    kind: Literal["vaultwarden_admin", "netbox_status"] = Field(description="plugins/health/functional's kinds")
    port: Port = Field(description="the container port (it must be published)")
    path: UrlPath = "/"
    secret: SecretName | None = Field(None, description="the secret it authenticates with (stack.secrets names it)")
    deadline: Seconds = 60


class Build(Strict):
    """The image is built on the host by a role (the app's own code), under the declaration's image tag."""

    by: RoleName


class Declaration(Strict):
    """One service of the homelab, declared once."""

    name: Label
    container: ContainerName
    image: Image = Field(description="upstream reference with a pinned tag (or the tag a role builds)")
    build: Build | None = None
    command: list[Annotated[str, Field(strict=True)]] = []
    ports: list[PortMapping] = []
    environment: dict[EnvName, Annotated[str, Field(strict=True)] | SecretRef] = {}
    volumes: list[Volume] = []
    healthcheck: Healthcheck | None = None
    depends_on: list[Label] = []
    route: Route | None = None
    http: list[Acceptance] = []
    probes: list[FunctionalProbe] = []
    restart: Literal["no", "always", "unless-stopped", "on-failure"] = "unless-stopped"
    init: Flag = False

    @property
    def secrets(self) -> list[str]:
        """Names of the secrets its environment and its probes refer to."""
        found = [value.secret for value in self.environment.values() if isinstance(value, SecretRef)]
        return found + [p.secret for p in self.probes if p.secret and p.secret not in found]

    def published(self, container_port: int) -> int | None:
        """The host port a container port is published on, or None."""
        return next((p.published for p in self.ports if p.container == container_port), None)

    def port_named(self, name: str) -> PortMapping | None:
        """The port mapping of that name, or None."""
        return next((p for p in self.ports if p.name == name), None)

    def check_name(self, acceptance: Acceptance) -> str:
        """The health check's name of one acceptance: the service's name, or <service>-<acceptance name>."""
        return f"{self.name}-{acceptance.name}" if acceptance.name else self.name


def declaration_problems(decl: Declaration) -> list[Problem]:
    """Rules inside one declaration: ports checked and routed are published, tags are pinned, no self-dependency."""
    problems: list[Problem] = []
    ports = [p.container for p in decl.ports]
    published = [p.published for p in decl.ports if p.published is not None]
    for index, port in enumerate(ports):
        if port in ports[:index]:
            problems.append((f"ports[{index}].container", f"{port} is listed twice (expected each port once)"))
    for index, port in enumerate(published):
        if port in published[:index]:
            problems.append((f"ports[{index}].published", f"{port} is published twice (expected each once)"))
    for index, acceptance in enumerate(decl.http):
        if decl.published(acceptance.port) is None:
            problems.append((f"http[{index}].port", _unpublished(acceptance.port, ports)))
        for code_index, code in enumerate(acceptance.warmup):
            if code in acceptance.accepted:
                problems.append((f"http[{index}].warmup[{code_index}]",
                                 f"{code} is also in accepted (expected a code accepted only while warming up)"))
    names = [decl.check_name(a) for a in decl.http]
    for index, name in enumerate(names):
        if name in names[:index]:
            problems.append((f"http[{index}].name", f"check {name!r} is declared twice (expected a unique name)"))
    for index, probe in enumerate(decl.probes):
        if decl.published(probe.port) is None:
            problems.append((f"probes[{index}].port", _unpublished(probe.port, ports)))
    if decl.route and decl.published(decl.route.port) is None:
        problems.append(("route.port", _unpublished(decl.route.port, ports)))
    if decl.build is None and decl.image.rsplit(":", 1)[-1] == "latest":
        problems.append(("image", f"{decl.image} is not pinned (expected an upstream tag such as :15 or :v3.7.15)"))
    if decl.name in decl.depends_on:
        problems.append(("depends_on", f"{decl.name} depends on itself (expected other services)"))
    return problems


def _unpublished(port: int, ports: list[int]) -> str:
    listed = ", ".join(map(str, ports)) or "none"
    return f"container port {port} is not published (expected one of the published ports; ports: {listed})"


class Catalog:
    """Every declaration of a catalog directory, by name; `problems` says what is wrong with it."""

    def __init__(self, directory: Path, declarations: dict[str, Declaration], problems: list[str]):
        self.directory = directory
        self.declarations = declarations
        self.problems = problems

    def __contains__(self, name: object) -> bool:
        """Tell whether a service of that name is declared."""
        return name in self.declarations

    def __getitem__(self, name: str) -> Declaration:
        """The declaration of that name."""
        return self.declarations[name]

    @property
    def names(self) -> list[str]:
        """Every declared service, sorted."""
        return sorted(self.declarations)


def _where(directory: Path, name: str) -> str:
    return display(directory / f"{name}.yml")


def load_catalog(directory: str | os.PathLike = CATALOG_DIR) -> Catalog:
    """Read every services/<name>.yml; each problem one line `services/x.yml: key: expected …, found …`."""
    path = Path(directory)
    declarations: dict[str, Declaration] = {}
    problems: list[str] = []
    files = sorted(path.glob("*.yml")) if path.is_dir() else []
    if not files:
        problems.append(f"{display(path)}: no service declarations (expected services/<name>.yml files)")
    for file in files:
        try:
            source, text = read_text(file)
            document = parse(source, text)
        except InventoryError as error:
            problems.extend(error.lines())
            continue
        source = display(file)
        try:
            decl = Declaration.model_validate(document)
        except ValidationError as error:
            problems.extend(f"{source}: {_loc(item['loc'])}: {item['msg']}" for item in error.errors(include_url=False))
            continue
        if decl.name != file.stem:
            problems.append(f"{source}: name: {decl.name!r} is not the file's name (expected {file.stem!r})")
            continue
        problems.extend(f"{source}: {key}: {message}" for key, message in declaration_problems(decl))
        declarations[decl.name] = decl
    for decl in declarations.values():
        for index, dependency in enumerate(decl.depends_on):
            if dependency not in declarations:
                problems.append(f"{_where(path, decl.name)}: depends_on[{index}]: {dependency!r} is not declared "
                                f"(expected one of: {', '.join(sorted(declarations))})")
    return Catalog(path, declarations, problems)


def _loc(loc: tuple) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif "[" not in str(part) and "(" not in str(part):
            text += f".{part}" if text else str(part)
    return text or "(top level)"


@lru_cache(maxsize=8)
def _cached(directory: str) -> Catalog:
    return load_catalog(directory)


def repository_catalog(directory: str | os.PathLike = CATALOG_DIR) -> Catalog:
    """The catalog of a directory, read once per process (inventories of one session share it)."""
    return _cached(str(Path(directory).resolve()))


def dependency_order(names: list[str], catalog: Catalog) -> list[str]:
    """The names with each service after the ones it depends on (inventory order otherwise)."""
    done: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done or name in path or name not in names:
            return
        for dependency in catalog[name].depends_on:
            visit(dependency, (*path, name))
        done.append(name)

    for name in names:
        visit(name, ())
    return done
