"""Secret redaction: every text leaving the suite (reports, comments, logs) passes through here.

A Redactor knows secret VALUES (env vars the inventory names, the GitHub token, private key contents)
and replaces them by `***`; it also masks well-known secret shapes it was never told about.
Which variables hold secrets, from their names, is plugins/shared/secret_names.py's one rule.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

MASK = "***"
MIN_SECRET_LEN = 4  # masking "1" or "ab" would mangle every number and word of a report
GITHUB_TOKEN_VARS = ("GITHUB_TOKEN", "GH_TOKEN")
KEY_FIELDS = ("deploy_key", "private_key", "ssh_private_key")

# Shapes that are secrets whoever they belong to: masked even when no value was registered.
_PATTERNS = (
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----", re.DOTALL), MASK),
    (re.compile(r"(PVEAPIToken=[^=\s]+=)[^\s'\"]+"), r"\1" + MASK),
    (re.compile(r"(?i)(authorization:\s*(?:bearer|token)\s+)[^\s'\"]+"), r"\1" + MASK),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})\b"), MASK),
)


class Redactor:
    """Replaces known secret values (and secret-shaped strings) by *** in any text."""

    def __init__(self, secrets: Iterable[str] = ()):
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self.add(*secrets)

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"

    def add(self, *values: str | None) -> None:
        """Register secret values (empty and very short ones are ignored)."""
        with self._lock:
            for value in values:
                if isinstance(value, str) and len(value.strip()) >= MIN_SECRET_LEN:
                    self._secrets.add(value)
                    self._secrets.add(value.strip())

    def add_env(self, *names: str, env: Mapping[str, str] = os.environ) -> None:
        """Register the values of the named environment variables (unset ones are skipped)."""
        self.add(*(env.get(name) for name in names if name))

    def add_file(self, path: str | os.PathLike) -> None:
        """Register a secret file's contents (a private key): whole, and each body line."""
        try:
            content = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return  # no file, nothing that could leak
        body = [line.strip() for line in content.splitlines() if line.strip() and "-----" not in line]
        self.add(content, *(line for line in body if len(line) >= 16))

    def add_inventory(self, inventory: Any, env: Mapping[str, str] = os.environ) -> None:
        """Register every secret the inventory points at: *_env variables, key files, the GitHub token."""
        for key, value in _walk(inventory):
            if key.endswith("_env") and isinstance(value, str):
                self.add_env(value, env=env)
            elif key in KEY_FIELDS and isinstance(value, (str, os.PathLike)) and value:
                self.add_file(value)
        stack = getattr(inventory, "stack", None)
        if stack is not None:  # the services' secrets (stack.secrets: env NAMES) and the proxy's private key
            self.add_env(*(source.env for source in stack.secrets.values() if source.env), env=env)
            self.add_file(stack.tls.key_file)
        self.add_env(*GITHUB_TOKEN_VARS, env=env)

    def redact(self, text: Any) -> str:
        """The text with every known secret replaced by ***."""
        text = "" if text is None else str(text)
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)  # longest first: a key before its lines
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def redact_obj(self, obj: Any) -> Any:
        """A copy of a JSON-like object with every string (keys too) redacted."""
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, Mapping):
            return {self.redact(k) if isinstance(k, str) else k: self.redact_obj(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple, set)):
            return [self.redact_obj(v) for v in obj]
        return obj

    def logging_filter(self) -> RedactingFilter:
        """A logging.Filter that redacts every record passing through it."""
        return RedactingFilter(self)


class RedactingFilter(logging.Filter):
    """Rewrites a log record's message (args merged) with secrets masked."""

    def __init__(self, redactor: Redactor | None = None):
        super().__init__()
        self.redactor = redactor or REDACTOR

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drop it."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)  # bad %-args: logging reports it; the text is still masked
        record.msg, record.args = self.redactor.redact(message), None
        if record.exc_info and not record.exc_text:
            # formatters reuse exc_text when set: the traceback is printed from the masked text
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.redact(record.stack_info)
        return True


REDACTOR = Redactor()
_factory_installed = False


def redact(text: Any) -> str:
    """Redact text with the process-wide Redactor (the one reporting, notify and wrappers share)."""
    return REDACTOR.redact(text)


def register_secrets(*values: str | None) -> None:
    """Add secret values to the process-wide Redactor."""
    REDACTOR.add(*values)


def register_inventory(inventory: Any, env: Mapping[str, str] = os.environ) -> None:
    """Add every secret the inventory points at to the process-wide Redactor."""
    REDACTOR.add_inventory(inventory, env)


def install_log_redaction() -> None:
    """Redact every log record created from now on, whichever logger or handler gets it."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()
    redacting_filter = RedactingFilter(REDACTOR)

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redacting_filter.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


def _walk(obj: Any, key: str = "", depth: int = 0) -> Iterable[tuple[str, Any]]:
    """Yield (field name, value) for every field of a model / dataclass / mapping / list, recursively."""
    if depth > 12:
        return
    if hasattr(obj, "model_dump"):
        obj = obj.model_dump()
    elif hasattr(obj, "__dataclass_fields__"):
        obj = {name: getattr(obj, name) for name in obj.__dataclass_fields__}
    if isinstance(obj, Mapping):
        for name, value in obj.items():
            yield str(name), value
            yield from _walk(value, str(name), depth + 1)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _walk(value, key, depth + 1)
    elif hasattr(obj, "__dict__") and not isinstance(obj, (str, bytes, os.PathLike, type)):
        yield from _walk(vars(obj), key, depth + 1)
