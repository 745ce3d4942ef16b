"""Which values a message may show: never one under a secret's key, never one shaped like a secret."""

from __future__ import annotations

import re
import reprlib
from collections.abc import Iterable

from plugins.shared.secret_names import says_secret

HIDDEN = "a value (not shown: it may be a secret)"

# Shapes of secrets, whatever key they sit under: PEM blocks, ssh key bodies, PVE token secrets (UUIDs),
# `PVEAPIToken=…`, GitHub and AWS keys; and below, long runs of base64 or hex mixing letters and digits.
_SECRET_SHAPES = re.compile(
    r"-----BEGIN|PVEAPIToken|\bAAAA[A-Za-z0-9+/]{16,}"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\b(?:gh[pousr]_|github_pat_)[A-Za-z0-9_]{16,}|\bAKIA[0-9A-Z]{16}\b"
)
_LONG_RUN = re.compile(r"[A-Za-z0-9+=]{32,}")  # '/' left out: a path is runs of names between slashes

_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 60
_repr.maxlevel = 3


def is_secret_key(parts: Iterable[object]) -> bool:
    """Tell whether a key path (any of its names) says its value is, or may hold, a secret.

    The secret words are the suite's one rule (plugins/shared/secret_names.py); every value under such a key
    is hidden, a token_id or a *_file included: a pasted secret may land there.
    """
    return any(isinstance(p, str) and says_secret(p) for p in parts)


def looks_secret(text: str) -> bool:
    """Tell whether a text has the shape of a secret (a key, a token, a UUID, a long base64 run)."""
    if _SECRET_SHAPES.search(text):
        return True
    return any(re.search("[0-9]", run) and re.search("[A-Za-z]", run) for run in _LONG_RUN.findall(text))


def shown(value: object, key_path: Iterable[object] = ()) -> str:
    """The value as a message may show it: a short repr, or a note that it is hidden."""
    if is_secret_key(key_path) or _holds_secret_key(value):
        return HIDDEN
    try:
        text = _repr.repr(value)
    except (RecursionError, ValueError):  # a self-referencing value: no repr of it is short anyway
        return "a value (not shown: too deep)"
    return HIDDEN if looks_secret(str(value) if isinstance(value, str) else text) else text


def _holds_secret_key(value: object, depth: int = 0) -> bool:
    """A mapping pasted in the wrong place (`{password: hunter2}`) hides its values as its right place would."""
    if depth > 3 or not isinstance(value, (dict, list)):  # a repr shows 3 levels (maxlevel)
        return False
    if isinstance(value, dict):
        return any(isinstance(k, str) and says_secret(k) for k in value) or any(
            _holds_secret_key(v, depth + 1) for v in value.values())
    return any(_holds_secret_key(v, depth + 1) for v in value)


def shown_name(name: object) -> str:
    """A key name for a key path: as given, unless it has the shape of a secret."""
    text = str(name)
    if looks_secret(text) or "\n" in text:
        return "<hidden key>"
    # a carriage return or a line separator in a key would split the message's one line
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
