"""Ask an OpenSSH ControlMaster to exit by speaking its mux protocol on the control socket.

`ssh -O exit` does the same, but starts an ssh client to do it (exec, libcrypto, config): at the end
of a 50-host health run that is 50 processes for five bytes each. The protocol is OpenSSH's
PROTOCOL.mux: length-prefixed packets, a hello exchange (version 4), then MUX_C_TERMINATE, which the
master answers MUX_S_OK, or (OpenSSH 9.2, like `ssh -O exit` expects) by closing the socket as it quits.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

MUX_MSG_HELLO = 0x00000001
MUX_C_TERMINATE = 0x10000005
MUX_S_OK = 0x80000001
MUX_S_PERMISSION_DENIED = 0x80000002
MUX_S_FAILURE = 0x80000003
MUX_VERSION = 4
MAX_PACKET = 256 * 1024


class MuxError(RuntimeError):
    """The master answered, but not as the protocol says (or refused to exit)."""


def _packet(*words: int) -> bytes:
    body = struct.pack(f">{len(words)}I", *words)
    return struct.pack(">I", len(body)) + body


def _read_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            if data:
                raise MuxError(f"the master closed the socket after {len(data)} of {size} bytes")
            raise EOFError("the master closed the socket")
        data += chunk
    return data


def _read_packet(conn: socket.socket) -> tuple[int, bytes]:
    (length,) = struct.unpack(">I", _read_exact(conn, 4))
    if not 4 <= length <= MAX_PACKET:
        raise MuxError(f"bad packet length {length}")
    body = _read_exact(conn, length)
    return struct.unpack(">I", body[:4])[0], body[4:]


def _reason(body: bytes) -> str:
    """The string after the request id of a PERMISSION_DENIED/FAILURE reply."""
    if len(body) < 8:
        return "no reason given"
    (size,) = struct.unpack(">I", body[4:8])
    return body[8:8 + size].decode(errors="replace")


def terminate_master(control_path: str | Path, timeout: float = 5.0) -> None:
    """Ask the master on this control socket to exit; OSError if no master listens, MuxError if it refuses."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(str(control_path))
        conn.sendall(_packet(MUX_MSG_HELLO, MUX_VERSION))
        try:
            kind, body = _read_packet(conn)
        except EOFError as exc:
            raise MuxError("the master closed the socket before its hello") from exc
        if kind != MUX_MSG_HELLO or len(body) < 4:
            raise MuxError(f"expected the master's hello, got packet type {kind:#x}")
        (version,) = struct.unpack(">I", body[:4])
        if version != MUX_VERSION:
            raise MuxError(f"the master speaks mux version {version}, not {MUX_VERSION}")
        request_id = 1
        conn.sendall(_packet(MUX_C_TERMINATE, request_id))
        try:
            kind, body = _read_packet(conn)
        except EOFError:
            return  # it quit without a word: ssh -O exit reads this as "Exit request sent."
        if kind == MUX_S_OK:
            return
        if kind in (MUX_S_PERMISSION_DENIED, MUX_S_FAILURE):
            raise MuxError(f"the master refused to exit: {_reason(body)}")
        raise MuxError(f"unexpected answer {kind:#x} to MUX_C_TERMINATE")
