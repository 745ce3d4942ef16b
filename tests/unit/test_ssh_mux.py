"""plugins/ssh/mux.py: the mux protocol's framing and every answer a master can give to MUX_C_TERMINATE.

The peer here is a scripted socket: the refusals cannot be had from a healthy OpenSSH master. The real
master is stopped this way in tests/lab/test_health_suite.py.
"""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

import pytest

from plugins.ssh.mux import (
    MUX_C_TERMINATE,
    MUX_MSG_HELLO,
    MUX_S_OK,
    MUX_S_PERMISSION_DENIED,
    MuxError,
    terminate_master,
)

pytestmark = pytest.mark.unit


def packet(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def read_packet(conn: socket.socket) -> bytes:
    (length,) = struct.unpack(">I", conn.recv(4, socket.MSG_WAITALL))
    return conn.recv(length, socket.MSG_WAITALL)


def serve_once(path: Path, answer, hello_version: int = 4) -> list[bytes]:
    """Listen on path; for one client: send a hello, read its hello and request, reply with answer(request)."""
    received: list[bytes] = []
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def run() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(packet(struct.pack(">II", MUX_MSG_HELLO, hello_version)))
            received.append(read_packet(conn))
            if hello_version != 4:
                return
            received.append(read_packet(conn))
            reply = answer(received[-1])
            if reply is not None:
                conn.sendall(packet(reply))
        server.close()

    threading.Thread(target=run, daemon=True).start()
    return received


def test_terminate_says_hello_then_asks_the_master_to_exit(tmp_path: Path):
    received = serve_once(tmp_path / "m", lambda request: struct.pack(">II", MUX_S_OK, 1))
    terminate_master(tmp_path / "m")
    assert received[0] == struct.pack(">II", MUX_MSG_HELLO, 4)
    assert received[1] == struct.pack(">II", MUX_C_TERMINATE, 1)


def test_a_master_that_quits_without_answering_has_exited(tmp_path: Path):
    serve_once(tmp_path / "m", lambda request: None)  # OpenSSH 9.2: closes the socket as it quits
    terminate_master(tmp_path / "m")


def test_a_refusal_is_an_error_with_the_masters_reason(tmp_path: Path):
    reason = b"confirmation declined"
    serve_once(tmp_path / "m", lambda request: struct.pack(">III", MUX_S_PERMISSION_DENIED, 1, len(reason)) + reason)
    with pytest.raises(MuxError, match="refused to exit: confirmation declined"):
        terminate_master(tmp_path / "m")


def test_another_protocol_version_is_not_spoken_to(tmp_path: Path):
    received = serve_once(tmp_path / "m", lambda request: None, hello_version=5)
    with pytest.raises(MuxError, match="mux version 5"):
        terminate_master(tmp_path / "m")
    assert len(received) <= 1, "no terminate request after a version mismatch"


def test_no_master_listening_is_an_os_error(tmp_path: Path):
    with pytest.raises(OSError):
        terminate_master(tmp_path / "absent")
