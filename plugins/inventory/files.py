"""Read an inventory file as text: every way a path can fail (directory, link, size, encoding) is one line."""

from __future__ import annotations

import codecs
import errno
import os
import re
import stat
from pathlib import Path

from plugins.inventory.errors import InventoryError

MAX_BYTES = 1024 * 1024  # far past any real inventory: a bigger file is the wrong file
EXPECTED = "expected a YAML file"

# YAML 1.1 §5.1: the printable characters; anything else is refused by the parser with a byte offset only.
_NOT_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_UTF16_32_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def display(path: str | os.PathLike) -> str:
    """The path as messages show it: relative to the working directory when inside it, links not followed."""
    try:
        cwd = Path.cwd()
        absolute = Path(os.path.abspath(path))
        text = str(absolute.relative_to(cwd)) if absolute.is_relative_to(cwd) else str(path)
    except OSError:  # the working directory was removed
        text = str(path)
    return _printable(text)


def _printable(text: str) -> str:
    # a file name may hold a newline or an escape sequence: the message stays one line
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _cwd() -> str:
    try:
        return _printable(str(Path.cwd()))
    except OSError:
        return "(removed)"


def read_text(path: str | os.PathLike) -> tuple[str, str]:
    """(the path as shown, the file's text); InventoryError naming what the path is instead of a YAML file."""
    source = display(path)
    problem = _not_a_file(Path(path))
    if problem:
        raise InventoryError(source, [("", problem)])
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as error:
        raise InventoryError(source, [("", f"cannot read: {_reason(error)} ({EXPECTED} this user can read)")]) from None
    if len(data) > MAX_BYTES:
        message = f"is larger than {MAX_BYTES // 1024} KiB (expected an inventory; is it the right file?)"
        raise InventoryError(source, [("", message)])
    return source, decode(source, data)


def _not_a_file(path: Path) -> str:
    """What the path is when it is not a readable regular file, '' when it is one."""
    try:
        link = path.lstat()
    except OSError as error:
        if error.errno == errno.ENOENT:
            return f"no such inventory file ({EXPECTED}, cwd {_cwd()})"
        return f"cannot open: {_reason(error)} ({EXPECTED})"
    target = link
    if stat.S_ISLNK(link.st_mode):
        try:
            target = path.stat()
        except OSError as error:
            if error.errno == errno.ELOOP:
                return f"is a symbolic link loop ({EXPECTED}, not a link that leads back to itself)"
            if error.errno == errno.ENOENT:
                target = _printable(os.readlink(path))
                return f"is a symbolic link to {target}, which does not exist (a dangling link; {EXPECTED})"
            return f"cannot open: {_reason(error)} ({EXPECTED})"
    if stat.S_ISDIR(target.st_mode):
        return f"is a directory ({EXPECTED}, e.g. inventories/lab.yml)"
    if not stat.S_ISREG(target.st_mode):
        return f"is not a regular file (a device, FIFO or socket; {EXPECTED})"
    return ""


def _reason(error: OSError) -> str:
    return (error.strerror or type(error).__name__).lower()


def decode(source: str, data: bytes) -> str:
    """The text of a UTF-8 file (a UTF-8 BOM is allowed); InventoryError with the line of the first bad byte."""
    for bom, name in _UTF16_32_BOMS:
        if data.startswith(bom):
            raise InventoryError(source, [("", f"line 1: the file is {name} (expected UTF-8: save it as UTF-8)")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        message = f"byte 0x{data[error.start]:02x} is not UTF-8 (expected UTF-8: save the file as UTF-8)"
        raise InventoryError(source, [("", f"line {line}, column {column}: {message}")]) from None
    bad = _NOT_PRINTABLE.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        message = f"character U+{ord(bad.group()):04X} is not allowed in YAML (expected printable text)"
        raise InventoryError(source, [("", f"line {line}, column {column}: {message}")])
    return text
