"""The one rule for telling, from its name, that a variable or a key holds a secret.

Shared by the report's redaction (which masks the values of such variables) and the inventory (which hides
them from every message and refuses them written literally in a service's environment).
"""

from __future__ import annotations

import re

# The words that make a name a secret's: an environment variable, an extravar, an inventory key. A variable
# whose name ends in _id or _file names or points at a secret (PVE_TOKEN_ID, AWS_ACCESS_KEY_ID,
# ansible_ssh_private_key_file): its value is not one. The inventory hides every value under such a key,
# those included, since a pasted secret may land there (plugins/inventory/masking.py).
SECRET_WORDS = ("secret", "password", "passwd", "token", "private", "credential", "apikey", "api_key", "access_key")
NOT_SECRET_SUFFIXES = ("_id", "_file")
# Whole words of an environment variable's name that make it a secret's too, though too short to be searched
# inside other words: APP_KEY, JWT_SIGNING_KEY, SMTP_PASS, PASSPHRASE, a password's SALT.
_SECRET_PARTS = {"key", "pass", "pw", "pwd", "passphrase", "salt", "auth", "cookie", "session", "seed"}
_PARTS = re.compile(r"[^a-z0-9]+|(?<=[a-z])(?=[0-9])")


def says_secret(name: str) -> bool:
    """Tell whether a name has one of the secret words in it (case ignored)."""
    lowered = str(name).lower()
    return any(word in lowered for word in SECRET_WORDS)


def is_secret_name(name: str) -> bool:
    """Tell whether a variable (environment, extravar) of that name holds a secret value."""
    return says_secret(name) and not str(name).lower().endswith(NOT_SECRET_SUFFIXES)


def names_a_secret(name: str) -> bool:
    """Tell whether an environment variable's name says its value is a secret: a secret word, or a word such as
    KEY or PASS on its own (`APP_KEY`, `SMTP_PASS`); `*_FILE` and `*_ID` point at or name one instead."""
    lowered = str(name).lower()
    if lowered.endswith(NOT_SECRET_SUFFIXES):
        return False
    return says_secret(lowered) or any(part in _SECRET_PARTS for part in _PARTS.split(lowered))
