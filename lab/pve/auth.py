"""API tokens (tokens.json, mode 600) and PVE-style permission checks.

tokens.json: {"root@pam!lab": {"value": "<uuid>", "privileges": ["*"]},
              "auditor@pve!readonly": {"value": "<uuid>", "privileges": ["Sys.Audit", "VM.Audit"]}}
"""

from __future__ import annotations

import hmac
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from .errors import forbidden, unauthorized

ALL = "*"
FULL_TOKEN_ID = "root@pam!lab"
READONLY_TOKEN_ID = "auditor@pve!readonly"
TOKENS_FILE = "tokens.json"
DEFAULT_TOKENS = {
    FULL_TOKEN_ID: [ALL],
    READONLY_TOKEN_ID: ["Sys.Audit", "VM.Audit"],
}
PREFIX = "PVEAPIToken="


@dataclass(frozen=True)
class Principal:
    """An authenticated API token: its user, token name and privileges."""

    userid: str
    tokenid: str
    privileges: frozenset[str]

    @property
    def authid(self) -> str:
        """Return `user@realm!tokenid`, the form PVE puts in UPIDs."""
        return f"{self.userid}!{self.tokenid}"

    def has(self, priv: str) -> bool:
        """Tell whether the token holds a privilege (on every path: the lab has one ACL level)."""
        return ALL in self.privileges or priv in self.privileges


def _read(path: Path) -> dict[str, dict]:
    """Read tokens.json, creating it (mode 600, random secrets) when missing."""
    if path.exists():
        return json.loads(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    tokens = {tid: {"value": str(uuid.uuid4()), "privileges": privs} for tid, privs in DEFAULT_TOKENS.items()}
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(tokens, fh, indent=2)
    os.replace(tmp, path)
    return tokens


def ensure_tokens(directory: str | os.PathLike) -> Path:
    """Create DIR/tokens.json (mode 600) with random secrets when missing; return its path."""
    path = Path(directory) / TOKENS_FILE
    _read(path)
    return path


def load_tokens(directory: str | os.PathLike) -> dict[str, str]:
    """Return {token id: secret} from DIR/tokens.json (created when missing)."""
    return {tid: entry["value"] for tid, entry in _read(Path(directory) / TOKENS_FILE).items()}


def rotate_token(directory: str | os.PathLike, tokenid: str = FULL_TOKEN_ID) -> str:
    """Give a token a new random secret (the old one is refused from the next call); return the new one."""
    path = Path(directory) / TOKENS_FILE
    tokens = _read(path)
    if tokenid not in tokens:
        raise KeyError(f"{path}: no token {tokenid}; tokens: {', '.join(sorted(tokens))}")
    tokens[tokenid]["value"] = str(uuid.uuid4())
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(tokens, fh, indent=2)
    os.replace(tmp, path)
    return tokens[tokenid]["value"]


class TokenStore:
    """Verifies `Authorization: PVEAPIToken=USER@REALM!TOKENID=SECRET` headers."""

    def __init__(self, directory: str | os.PathLike):
        self.path = Path(directory) / TOKENS_FILE
        self.tokens = _read(self.path)
        self._stamp = self._mtime()

    def _mtime(self) -> int | None:
        try:
            return self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def _reload(self) -> None:
        """Re-read tokens.json when it changed: a rotated token is revoked at once, as in PVE."""
        stamp = self._mtime()
        if stamp is not None and stamp != self._stamp:
            try:
                self.tokens = json.loads(self.path.read_text())
                self._stamp = stamp
            except (OSError, ValueError):
                pass  # a half-written file: keep the tokens we had, re-read on the next call

    def authenticate(self, header: str | None) -> Principal:
        """Return the token's principal or raise a 401."""
        self._reload()
        if not header:
            raise unauthorized("No ticket")
        if not header.startswith(PREFIX):
            raise unauthorized()
        tokenid, sep, secret = header[len(PREFIX):].partition("=")
        entry = self.tokens.get(tokenid)
        if not sep or entry is None or not hmac.compare_digest(entry["value"].encode(), secret.encode()):
            raise unauthorized()
        user, _, name = tokenid.partition("!")
        return Principal(user, name, frozenset(entry["privileges"]))


def check(principal: Principal, path: str, privs: list[str], any_of: bool = False) -> None:
    """Raise PVE's 403 unless the principal holds the privileges (all, or any with any_of)."""
    if any_of:
        if not any(principal.has(p) for p in privs):
            raise forbidden(path, "|".join(privs))
        return
    for priv in privs:
        if not principal.has(priv):
            raise forbidden(path, priv)
