"""Field types of the inventory: each value's real grammar; a message says what was expected, never a secret.

Names that reach a shell, apt, Docker or Proxmox are checked against the grammar of what receives them, so
a bad one stops at validation instead of halfway through a deploy.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import AfterValidator, Field

from plugins.inventory.masking import looks_secret, shown
from plugins.shared.secret_names import SECRET_WORDS

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN_ID = re.compile(r"^[^@!\s=:]+@[A-Za-z][A-Za-z0-9._-]*![A-Za-z][A-Za-z0-9._-]*$")
_TOKEN_ID_PREFIX = re.compile(r"^[^@!\s=:]+@[A-Za-z][A-Za-z0-9._-]*![A-Za-z][A-Za-z0-9._-]*")
_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
_DEBIAN_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")  # Debian Policy 5.6.1
_DOCKER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")  # moby's RestrictedNamePattern
_UNIX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")  # useradd's default NAME_REGEX, 32 characters
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")  # Linux IFNAMSIZ: 15 bytes, no '/', ':' or space
_OSTEMPLATE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*:vztmpl/[A-Za-z0-9_.+-]+\.tar\.(?:gz|xz|zst)$")
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_S3_KEY = re.compile(r"^[A-Za-z0-9!_.*'()/-]{1,1024}$")  # S3's "safe characters"
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_RUNNER_LABEL = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_PLAIN_PATH = re.compile(r"^[A-Za-z0-9._/+@-]+$")
# git check-ref-format, as far as a branch name goes: no space, ~ ^ : ? * [ \, no '..', '//' or '@{'
_BRANCH = re.compile(r"^(?![/.])(?!.*(?:\.\.|//|@\{|\.lock(?:/|$)|/\.))(?!.*[/.]$)[^\x00-\x20~^:?*\[\\\x7f]{1,255}$")
RESERVED_GROUPS = ("all", "ungrouped", "runner", "bootstrap")
MAX_PATH = 4096  # PATH_MAX


def _ipv4(value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ValueError(f"{shown(value)} is not an IPv4 address") from None


def _grammar(pattern: re.Pattern, expected: str):
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{shown(value)} is not {expected}")
        return value

    return check


def _hostname(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    labels = value[:-1].split(".") if value.endswith(".") else value.split(".")
    if len(value) > 253 or not all(_DNS_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise ValueError(f"{shown(value)} is not a host name or IP address (expected e.g. pve.home.arpa or "
                         "192.0.2.10)")
    return value


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        # Never echo it: a value that is not a variable name may be the secret itself.
        raise ValueError(
            "expected the NAME of an environment variable (e.g. PVE_TOKEN_SECRET), found a value (not shown)"
        )
    return value


def _token_id(value: str) -> str:
    if _TOKEN_ID.match(value):
        return value
    prefix = _TOKEN_ID_PREFIX.match(value)
    if prefix:  # `root@pam!deploy=<uuid>` or `… <uuid>`: the secret was pasted after the id
        raise ValueError(f"found the token id {shown(prefix.group())} followed by more (not shown: it may be the "
                         "secret; expected only user@realm!name, the secret goes in the variable "
                         "proxmox.token_secret_env names)")
    raise ValueError(f"{shown(value)} is not a Proxmox API token id (expected user@realm!name, e.g. "
                     "root@pam!deploy)")


def _role(value: str) -> str:
    if not _IDENT.match(value) or value in RESERVED_GROUPS:
        raise ValueError(
            f"{shown(value)} is not a usable role name (expected a-z 0-9 '_', starting with a letter: it "
            f"becomes an Ansible group; reserved: {', '.join(RESERVED_GROUPS)})"
        )
    return value


def _bridge(value: str) -> str:
    if not _IFNAME.match(value) or value in (".", ".."):
        raise ValueError(f"{shown(value)} is not a Linux interface name (expected 1-15 of A-Z a-z 0-9 _ . -, "
                         "e.g. vmbr0)")
    return value


def url_for_messages(value: str) -> str:
    """A URL as a message may show it: scheme, host, port and path; never credentials or a query."""
    parts = urlsplit(value)
    text = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}" if parts.scheme else value
    return shown(text)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.username is not None or parts.password is not None:
        raise ValueError("a URL with credentials (user:password@) is refused (not shown; expected the URL "
                         "without them: credentials come from environment variables)")
    if any(any(word in name.lower() for word in (*SECRET_WORDS, "key", "auth", "sig"))
           for name, _ in parse_qsl(parts.query, keep_blank_values=True)):
        raise ValueError("a URL with a credential in its query is refused (not shown; expected the URL without "
                         "it: credentials come from environment variables)")
    if looks_secret(value) or any(c.isspace() for c in value):
        raise ValueError("expected an http(s) URL such as http://198.18.0.200:8080/health, found a value that is "
                         "not one (not shown: it may hold a secret)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url_for_messages(value)} is not an http(s) URL (expected e.g. "
                         "http://198.18.0.200:8080/health)")
    try:
        port = parts.port
    except ValueError:  # not a number, or past 65535
        port = 0
    if port == 0 and ":" in parts.netloc.rsplit("]", 1)[-1]:
        raise ValueError(f"{url_for_messages(value)} has an invalid port (expected 1-65535)")
    try:
        _hostname(parts.hostname)
    except ValueError:
        raise ValueError(f"{url_for_messages(value)} does not name a host (expected a host name or IP "
                         "address)") from None
    return value


def _absolute_path(value: str) -> str:
    """A path on the runner: absolute, and not the key or certificate itself pasted in."""
    if looks_secret(value) or "\n" in value or len(value) > MAX_PATH:
        raise ValueError("expected the PATH of a file, found key or certificate material (not shown: put it in "
                         "a file and give the file's absolute path)")
    if "\0" in value:
        raise ValueError("expected an absolute path, found a value with a NUL character (not shown)")
    plain = shown(value) if _PLAIN_PATH.match(value) else "a value (not shown)"
    if value.startswith("~"):
        raise ValueError(f"{plain} starts with ~ (expected an absolute path: ~ depends on who runs the deploy)")
    if not value.startswith("/"):
        raise ValueError(f"{plain} is not an absolute path (expected a path starting with /)")
    return value


def _no_tls_off(value: bool) -> bool:
    if value is not True:
        raise ValueError("TLS verification cannot be turned off (expected true; trust a private CA with ca_file)")
    return value


def _pattern(pattern: re.Pattern) -> dict:
    """Patterns go to the JSON schema only: the validators give the better message."""
    return {"pattern": pattern.pattern}


def grammar(pattern: re.Pattern, expected: str) -> Any:
    """A text field of that grammar: the pattern in the JSON schema, `<value> is not <expected>` when it fails."""
    return Annotated[str, Field(strict=True, json_schema_extra=_pattern(pattern)), AfterValidator(_grammar(pattern, expected))]


Text = Annotated[str, Field(strict=True, min_length=1)]
IPv4 = Annotated[str, Field(strict=True, json_schema_extra={"format": "ipv4"}), AfterValidator(_ipv4)]
Label = Annotated[
    str,
    Field(strict=True, json_schema_extra=_pattern(_LABEL)),
    AfterValidator(_grammar(_LABEL, "an RFC 1123 label (expected 1-63 of a-z 0-9 '-', not starting or ending "
                                    "with '-')")),
]
Hostname = Annotated[str, Field(strict=True, min_length=1), AfterValidator(_hostname)]
HttpUrl = Annotated[str, Field(strict=True, json_schema_extra={"pattern": "^https?://"}), AfterValidator(_http_url)]
AbsolutePath = Annotated[
    str, Field(strict=True, min_length=1, json_schema_extra={"pattern": "^/"}), AfterValidator(_absolute_path)
]
TlsOn = Annotated[bool, Field(strict=True), AfterValidator(_no_tls_off)]
StatusCode = Annotated[int, Field(strict=True, ge=100, le=599)]
Flag = Annotated[bool, Field(strict=True)]
TokenId = Annotated[str, Field(strict=True), AfterValidator(_token_id)]
EnvVarName = Annotated[str, Field(strict=True), AfterValidator(_env_name)]
RoleName = Annotated[str, Field(strict=True), AfterValidator(_role)]
DebianPackage = Annotated[
    str,
    Field(strict=True, json_schema_extra=_pattern(_DEBIAN_PACKAGE)),
    AfterValidator(_grammar(_DEBIAN_PACKAGE, "a Debian package name (expected 2 or more of a-z 0-9 + - ., "
                                             "starting with a letter or digit, e.g. rsync)")),
]
ContainerName = Annotated[
    str,
    Field(strict=True, json_schema_extra=_pattern(_DOCKER_NAME)),
    AfterValidator(_grammar(_DOCKER_NAME, "a Docker container name (expected 2 or more of A-Z a-z 0-9 _ . -, "
                                          "starting with a letter or digit)")),
]
UnixUser = Annotated[
    str,
    Field(strict=True, json_schema_extra=_pattern(_UNIX_USER)),
    AfterValidator(_grammar(_UNIX_USER, "a Linux user name (expected 1-32 of a-z 0-9 _ -, starting with a "
                                        "letter or _)")),
]
BridgeName = Annotated[str, Field(strict=True, json_schema_extra=_pattern(_IFNAME)), AfterValidator(_bridge)]
OsTemplate = Annotated[
    str,
    Field(strict=True, json_schema_extra=_pattern(_OSTEMPLATE)),
    AfterValidator(_grammar(_OSTEMPLATE, "a Proxmox container template volume (expected "
                                         "<storage>:vztmpl/<file>.tar.zst|xz|gz)")),
]
S3Bucket = Annotated[
    str,
    Field(strict=True, json_schema_extra=_pattern(_S3_BUCKET)),
    AfterValidator(_grammar(_S3_BUCKET, "an S3 bucket name (expected 3-63 of a-z 0-9 . -, starting and ending "
                                        "with a letter or digit)")),
]
S3Key = Annotated[
    str,
    Field(strict=True, json_schema_extra=_pattern(_S3_KEY)),
    AfterValidator(_grammar(_S3_KEY, "an S3 object key (expected A-Z a-z 0-9 and ! _ . * ' ( ) / -, e.g. "
                                     "lab/terraform.tfstate)")),
]
Region = Annotated[
    str,
    Field(strict=True, json_schema_extra=_pattern(_REGION)),
    AfterValidator(_grammar(_REGION, "a region name (expected a-z 0-9 -, e.g. us-east-1 or gra)")),
]
RunnerLabel = Annotated[
    str,
    Field(strict=True, json_schema_extra=_pattern(_RUNNER_LABEL)),
    AfterValidator(_grammar(_RUNNER_LABEL, "a GitHub runner label (expected 1-100 of A-Z a-z 0-9 . _ -)")),
]
BranchName = Annotated[
    str,
    Field(strict=True, json_schema_extra=_pattern(_BRANCH)),
    AfterValidator(_grammar(_BRANCH, "a git branch name (expected e.g. main: no spaces, ~ ^ : ? * [ \\ or '..')")),
]
