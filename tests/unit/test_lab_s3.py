"""The lab's state store, without starting it: its key pair and its command line."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from lab.s3 import StateStore, ensure_credentials

pytestmark = pytest.mark.unit


def test_the_key_pair_is_generated_once_and_private(tmp_path):
    first = ensure_credentials(tmp_path / "keys")
    assert ensure_credentials(tmp_path / "keys") == first
    assert first[0] != first[1] and len(first[1]) >= 40
    assert stat.S_IMODE((tmp_path / "keys" / "s3.json").stat().st_mode) == 0o600
    assert ensure_credentials(tmp_path / "other") != first


def test_the_store_binds_loopback_only_and_keeps_its_files_in_the_lab(tmp_path):
    store = StateStore(tmp_path / "s3", tmp_path / "run", tmp_path / "log", tmp_path / "keys", port=19000,
                       internal_base=19002)
    argv = store.service().argv
    assert "-ip.bind=127.0.0.1" in argv and "-s3.port=19000" in argv
    ports = sorted(int(a.split("=")[1]) for a in argv if ".port" in a and a.split("=")[1].isdigit())
    assert ports == [0, 0, 19000, 19002, 19003, 19004, 19005, 19006, 19007, 19008]
    paths = [a.split("=", 1)[1] for a in argv[1:] if "=/" in a]
    assert len(paths) == 4 and all(p.startswith(f"{tmp_path}/") for p in paths), paths  # logs, data, 2 sockets
    assert not any(store.credentials()[1] in a for a in argv)  # the secret goes by environment only


def test_the_single_master_leads_before_its_volume_server_reports():
    """A restarted store serves again once its one master leads: with SeaweedFS's 10 s election timeout the
    volume server's first heartbeat came too early and waited its next, tens of seconds in all."""
    argv = StateStore(*(Path("/x"),) * 4).service().argv
    assert "-master.electionTimeout=300ms" in argv and "-master.heartbeatInterval=100ms" in argv
