"""The lab's generated service secrets: long enough for what reads them, kept across runs."""

from __future__ import annotations

import pytest

from lab import stack_files

pytestmark = pytest.mark.unit


def test_a_secret_key_is_long_enough_for_django_and_a_token_short_enough_for_netbox():
    """*_SECRET_KEY: at least 50 characters (NetBox refuses less); other secrets at most 40 (a v1 API token)."""
    assert len(stack_files.new_secret("NETBOX_SECRET_KEY")) >= 50
    assert 20 <= len(stack_files.new_secret("NETBOX_API_TOKEN")) <= 40
    assert stack_files.new_secret("X") != stack_files.new_secret("X")


def test_values_are_kept_also_for_names_this_inventory_does_not_list(tmp_path):
    """A lab.yml naming A only keeps B's value (another branch's lab.yml named it) and A's across runs."""
    import json
    from types import SimpleNamespace

    paths = SimpleNamespace(lab_dir=tmp_path / "lab")
    inventory = tmp_path / "lab.yml"
    inventory.write_text("stack:\n  secrets:\n    a: {env: LAB_A}\n")
    stack_files.secrets_file(paths).parent.mkdir(parents=True)
    stack_files.secrets_file(paths).write_text(json.dumps({"LAB_B": "kept-b"}))
    first = stack_files.ensure_service_secrets(paths, inventory)
    assert set(first) == {"LAB_A"} and first["LAB_A"]
    assert json.loads(stack_files.secrets_file(paths).read_text())["LAB_B"] == "kept-b"
    assert stack_files.ensure_service_secrets(paths, inventory) == first
