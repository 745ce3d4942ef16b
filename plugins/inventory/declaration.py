"""One service's declaration (services/<name>.yml): its model, and the rules inside one declaration.

A declaration says what a service IS (its upstream image, container, ports, environment with secrets by
reference, volumes, health check, dependencies, route and HTTP acceptance); an inventory says WHERE it runs.
The rules that span declarations are the catalog's (catalog.py) and the inventory's (stack_rules.py).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag

from plugins.inventory.errors import Problem
from plugins.inventory.fields import AbsolutePath, ContainerName, Flag, Label, RoleName, StatusCode, grammar
from plugins.inventory.masking import looks_secret, shown_name
from plugins.shared.secret_names import names_a_secret

MAX_DEADLINE = 3600  # seconds: a health wait of an hour already means the service is broken

# name[:port]/path:tag — a Docker reference with an explicit tag (a digest is allowed after it).
_IMAGE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
                    r":[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(?:@sha256:[a-f0-9]{64})?$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_PATH = re.compile(r"^/[A-Za-z0-9._/-]*$")
# A relative directory inside the role's source: no leading /, no `..`.
_CONTEXT = re.compile(r"^(?:\.|[A-Za-z0-9_][A-Za-z0-9._-]*(?:/[A-Za-z0-9_][A-Za-z0-9._-]*)*)$")
_VOLUME_SOURCE = re.compile(r"^(?:/[A-Za-z0-9._/-]*|[a-z0-9][a-z0-9_.-]*)$")

Port = Annotated[int, Field(strict=True, ge=1, le=65535)]
Seconds = Annotated[float, Field(strict=True, gt=0, le=MAX_DEADLINE, allow_inf_nan=False)]
Image = grammar(_IMAGE, "an image reference with a tag (expected e.g. postgres:15 or traefik:v3.7.15, lower case)")
EnvName = grammar(_ENV, "an environment variable name (expected A-Z a-z 0-9 _, not starting with a digit)")
SecretName = grammar(_SECRET, "a secret's name (expected 1-63 of a-z 0-9 _, starting with a letter, e.g. "
                              "netbox_db_password)")
UrlPath = grammar(_PATH, "a URL path (expected / then A-Z a-z 0-9 . _ / -, e.g. /api/health)")
BuildContext = grammar(_CONTEXT, "a directory inside the role's source (expected a relative path without ..)")
VolumeSource = grammar(_VOLUME_SOURCE, "a named volume or a host directory (expected e.g. pgdata or "
                                       "/opt/homelab/x)")


def _reason(value: str) -> str:
    if len(re.findall("[A-Za-z]", value)) < 3 or looks_secret(value):
        raise ValueError("expected why the value is not a secret, in words (e.g. 'the public URL')")
    return value


Reason = Annotated[str, Field(strict=True), AfterValidator(_reason)]

ENVIRONMENT_VALUE = "text, {secret: NAME} or {value: TEXT, not_secret: WHY}"
LITERAL_SECRET = ("a value written here (not shown) is refused: {why}, and a declaration is in git and in the "
                  "host vars (expected {{secret: NAME}}, which stack.secrets of each inventory sources; or "
                  "{{value: …, not_secret: why}} when it is not a secret)")  # nosec B105 # a message


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


class PlainValue(Strict):
    """An environment value under a secret-sounding key, or shaped like a secret, that is not one, and why."""

    value: Annotated[str, Field(strict=True)]
    not_secret: Reason = Field(description="why this value is not a secret (e.g. 'a public key', 'a URL')")


def _environment_kind(value: Any) -> str | None:
    # the branch's tag is its model's name: messages.py finds the model of an unknown key by it
    if isinstance(value, str):
        return "str"
    if isinstance(value, SecretRef) or (isinstance(value, dict) and "secret" in value):
        return "SecretRef"
    if isinstance(value, PlainValue) or (isinstance(value, dict) and ("value" in value or "not_secret" in value)):
        return "PlainValue"
    return None


EnvironmentValue = Annotated[
    Annotated[Annotated[str, Field(strict=True)], Tag("str")]
    | Annotated[SecretRef, Tag("SecretRef")]
    | Annotated[PlainValue, Tag("PlainValue")],
    Discriminator(_environment_kind, custom_error_type="environment_value",
                  custom_error_message=f"expected {ENVIRONMENT_VALUE}"),
]


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
    start_period: Annotated[float, Field(strict=True, ge=0, le=MAX_DEADLINE, allow_inf_nan=False)] = 0


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

    kind: Literal["vaultwarden_admin", "netbox_status", "zabbix_api", "prometheus_targets", "grafana_datasources"] = Field(
        description="plugins/health/functional's kinds")
    port: Port = Field(description="the container port (it must be published)")
    path: UrlPath = "/"
    secret: SecretName | None = Field(None, description="the secret it authenticates with (stack.secrets names it)")
    deadline: Seconds = 60


class Build(Strict):
    """The image is built on the host by a role (the app's own code), under the declaration's image tag."""

    by: RoleName
    context: BuildContext = Field(".", description="the build context, relative to the source the role ships")


class Declaration(Strict):
    """One service of the homelab, declared once."""

    name: Label
    container: ContainerName
    image: Image = Field(description="upstream reference with a pinned tag (or the tag a role builds)")
    build: Build | None = None
    command: list[Annotated[str, Field(strict=True)]] = []
    ports: list[PortMapping] = []
    environment: dict[EnvName, EnvironmentValue] = Field(
        {}, description="text; a secret by NAME ({secret: name}); or {value, not_secret: why} for a value that "
        "sounds or looks like a secret and is not one")
    volumes: list[Volume] = []
    healthcheck: Healthcheck | None = None
    depends_on: list[Label] = []
    route: Route | None = None
    http: list[Acceptance] = []
    probes: list[FunctionalProbe] = []
    restart: Literal["no", "always", "unless-stopped", "on-failure"] = "unless-stopped"
    init: Flag = False
    stop_signal: Literal["SIGTERM", "SIGINT", "SIGQUIT"] | None = Field(
        None, description="the signal `docker stop` sends first (none: the image's own, SIGTERM unless it names "
        "another): the one the server takes as a prompt stop, where SIGTERM would drain its connections first")

    @property
    def secrets(self) -> list[str]:
        """Names of the secrets its environment and its probes refer to."""
        return [name for name, _ in self.secret_keys()]

    def secret_keys(self) -> list[tuple[str, str]]:
        """(secret name, the key that refers to it first: `environment.X` or `probes[i].secret`), once each."""
        found: dict[str, str] = {}
        for key, value in self.environment.items():
            if isinstance(value, SecretRef):
                found.setdefault(value.secret, f"environment.{shown_name(key)}")
        for index, probe in enumerate(self.probes):
            if probe.secret:
                found.setdefault(probe.secret, f"probes[{index}].secret")
        return list(found.items())

    @property
    def literal_environment(self) -> dict[str, str]:
        """The environment's values written in the declaration (a secret's value never is)."""
        return {key: value if isinstance(value, str) else value.value
                for key, value in self.environment.items() if not isinstance(value, SecretRef)}

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
    """Rules inside one declaration: ports checked and routed are published, tags are pinned, no self-dependency,
    no secret written literally."""
    problems: list[Problem] = [*_port_problems(decl), *_literal_secrets(decl)]
    names = [decl.check_name(a) for a in decl.http]
    for index, name in enumerate(names):
        if name in names[:index]:
            problems.append((f"http[{index}].name", f"check {name!r} is declared twice (expected a unique name)"))
    if decl.build is None and decl.image.rsplit(":", 1)[-1] == "latest":
        problems.append(("image", f"{decl.image} is not pinned (expected an upstream tag such as :15 or :v3.7.15)"))
    for index, dependency in enumerate(decl.depends_on):
        if dependency == decl.name:
            problems.append((f"depends_on[{index}]", f"{decl.name} depends on itself (expected other services)"))
        elif dependency in decl.depends_on[:index]:
            problems.append((f"depends_on[{index}]", f"{dependency} is listed twice (expected each dependency once)"))
    return problems


def _port_problems(decl: Declaration) -> list[Problem]:
    used = sorted({a.port for a in decl.http} | {p.port for p in decl.probes} | ({decl.route.port} if decl.route else set()))
    if not decl.ports and used:  # one cause, said once: not one line per check, probe and route
        return [("ports", (f"no port declared, yet its HTTP checks, probes or route use container port "
                           f"{', '.join(map(str, used))} (expected ports: - {{container: {used[0]}, published: …}})"))]
    problems: list[Problem] = []
    ports = [p.container for p in decl.ports]
    for index, port in enumerate(ports):
        if port in ports[:index]:
            problems.append((f"ports[{index}].container", f"{port} is listed twice (expected each port once)"))
    published = [(index, p.published) for index, p in enumerate(decl.ports) if p.published is not None]
    for place, (index, port) in enumerate(published):
        if port in [other for _, other in published[:place]]:
            problems.append((f"ports[{index}].published", f"{port} is published twice (expected each once)"))
    for index, acceptance in enumerate(decl.http):
        problems.extend((f"http[{index}].port", m) for m in _unreachable(decl, acceptance.port, "an HTTP check"))
        for code_index, code in enumerate(acceptance.warmup):
            if code in acceptance.accepted:
                problems.append((f"http[{index}].warmup[{code_index}]",
                                 f"{code} is also in accepted (expected a code accepted only while warming up)"))
    for index, probe in enumerate(decl.probes):
        problems.extend((f"probes[{index}].port", m) for m in _unreachable(decl, probe.port, "a probe"))
    if decl.route:
        problems.extend(("route.port", m) for m in _unreachable(decl, decl.route.port, "a route"))
    return problems


def _unreachable(decl: Declaration, port: int, what: str) -> list[str]:
    ports = [p.container for p in decl.ports]
    listed = ", ".join(map(str, ports)) or "none"
    if port not in ports:
        return [(f"container port {port} is not one of the container's ports (expected one of ports[].container "
                 f"for {what}: {listed})")]
    if decl.published(port) is None:
        return [f"container port {port} is not published (expected {what}'s port published; ports: {listed})"]
    return []


def _literal_secrets(decl: Declaration) -> list[Problem]:
    problems: list[Problem] = []
    for key, value in decl.environment.items():
        if not isinstance(value, str):
            continue
        if names_a_secret(key):
            why = f"{shown_name(key)} names a secret"
        elif looks_secret(value):
            why = "it has the shape of a secret (a key, token or long random run)"
        else:
            continue
        problems.append((f"environment.{shown_name(key)}", LITERAL_SECRET.format(why=why)))
    return problems
