"""Secrets never leave the suite: values from the inventory's env vars, key files, tokens."""

from __future__ import annotations

import logging
import sys
from types import SimpleNamespace

import pytest

from plugins.report.redaction import MASK, RedactingFilter, Redactor
from plugins.shared.secret_names import is_secret_name

pytestmark = pytest.mark.unit

PVE_SECRET = "0b7e9a52-5c1f-4a43-9e0d-5f2f3c1a9d77"
GH_TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
KEY_LINES = ["b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
             "QyNTUxOQAAACDGhCVm3H4t0tNw0p7sM7S0v9PbVwqkY3AjHQnA5wZ1dQAAAJgLm5hUC5uY"]
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "\n".join(KEY_LINES) + "\n-----END OPENSSH PRIVATE KEY-----\n"


@pytest.fixture
def key_file(tmp_path):
    """A private key file like the runner's deploy key."""
    path = tmp_path / "deploy_ed25519"
    path.write_text(PRIVATE_KEY)
    return path


def test_registered_values_are_masked_everywhere_in_the_text():
    """Every occurrence of a registered secret becomes ***."""
    redactor = Redactor([PVE_SECRET])
    text = f"token={PVE_SECRET} and again {PVE_SECRET}."
    assert redactor.redact(text) == f"token={MASK} and again {MASK}."


def test_short_and_empty_values_are_ignored():
    """A one-character 'secret' would mangle every number: it is not registered."""
    redactor = Redactor(["", "1", None, "abc"])
    assert redactor.redact("1 abc 10") == "1 abc 10"


def test_inventory_secrets_are_found_by_walking_the_model(key_file):
    """*_env fields name env vars whose values are secrets; deploy_key names a key file; GITHUB_TOKEN too."""
    inventory = SimpleNamespace(
        environment="lab",
        proxmox=SimpleNamespace(token_secret_env="PVE_TOKEN_SECRET", host="127.0.0.1"),
        runner=SimpleNamespace(deploy_key=str(key_file)),
        hosts=[{"hostname": "proxy", "vmid": 200}],
    )
    env = {"PVE_TOKEN_SECRET": PVE_SECRET, "GITHUB_TOKEN": GH_TOKEN, "HOME": "/root"}
    redactor = Redactor()
    redactor.add_inventory(inventory, env=env)
    text = f"{PVE_SECRET} {GH_TOKEN} {PRIVATE_KEY} {KEY_LINES[1]} /root 127.0.0.1"
    out = redactor.redact(text)
    assert PVE_SECRET not in out and GH_TOKEN not in out and KEY_LINES[0] not in out and KEY_LINES[1] not in out
    assert "/root 127.0.0.1" in out


def test_missing_key_file_and_unset_variables_are_harmless(tmp_path):
    """Nothing to read is nothing to mask, not an error."""
    redactor = Redactor()
    redactor.add_inventory({"runner": {"deploy_key": str(tmp_path / "absent")}, "x_env": "UNSET_VAR"}, env={})
    assert redactor.redact("plain text") == "plain text"


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: PVEAPIToken=root@pam!lab={PVE_SECRET}",
        f"authorization: Bearer {GH_TOKEN}",
        "token ghp_abcdefghijklmnopqrstuvwxyz0123456789 leaked",
        PRIVATE_KEY,
    ],
)
def test_secret_shapes_are_masked_even_when_unregistered(text):
    """PVE token headers, GitHub tokens and private key blocks are masked without registration."""
    out = Redactor().redact(text)
    assert MASK in out
    assert PVE_SECRET not in out and GH_TOKEN not in out and "ghp_abc" not in out and KEY_LINES[0] not in out


def test_redact_obj_masks_nested_strings_and_keeps_other_values():
    """JSON-like documents are redacted recursively, numbers and booleans untouched."""
    redactor = Redactor([PVE_SECRET])
    doc = {"a": [PVE_SECRET, 1, True], "b": {"c": f"x{PVE_SECRET}"}, PVE_SECRET: None}
    assert redactor.redact_obj(doc) == {"a": [MASK, 1, True], "b": {"c": f"x{MASK}"}, MASK: None}


def test_logging_filter_masks_message_args_and_traceback():
    """A log record's formatted message and exception text leave the filter masked."""
    redactor = Redactor([PVE_SECRET])
    try:
        raise RuntimeError(f"failed with {PVE_SECRET}")
    except RuntimeError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "secret is %s", (PVE_SECRET,), True)
        record.exc_info = sys.exc_info()
    assert RedactingFilter(redactor).filter(record) is True
    formatted = logging.Formatter().format(record)
    assert PVE_SECRET not in formatted and "secret is ***" in formatted and "RuntimeError" in formatted


def test_logger_with_the_filter_never_writes_the_secret(caplog):
    """Through a real logger and handler, the secret does not reach the captured output."""
    logger = logging.getLogger("test_redact.filtered")
    logger.addFilter(Redactor([PVE_SECRET]).logging_filter())
    with caplog.at_level(logging.INFO, logger="test_redact.filtered"):
        logger.info("calling with %s", PVE_SECRET)
    assert PVE_SECRET not in caplog.text and "calling with ***" in caplog.text


@pytest.mark.parametrize(("name", "secret"), [
    ("PVE_TOKEN_SECRET", True), ("AWS_SECRET_ACCESS_KEY", True), ("AWS_SESSION_TOKEN", True), ("api_token", True),
    ("db_password", True), ("github_runner_private_key", True), ("secrets", True), ("vault_api_key", True),
    ("PVE_TOKEN_ID", False), ("AWS_ACCESS_KEY_ID", False), ("ansible_ssh_private_key_file", False),
    ("PVE_CA_FILE", False), ("PATH", False), ("app_demo_port", False),
])
def test_one_rule_tells_a_secret_from_its_name(name, secret):
    """Terraform's environment and Ansible's extravars: a secret word makes a secret, unless it is an id or a file."""
    assert is_secret_name(name) is secret
