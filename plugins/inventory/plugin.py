"""The inventory's pytest entry: the `--inventory` option, the `inventory` fixture, a bad file stops the session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plugins.inventory.errors import InventoryError
from plugins.inventory.loader import load_inventory
from plugins.inventory.model import Inventory

DEFAULT_INVENTORY = "inventories/lab.yml"
INVENTORY_KEY = pytest.StashKey[Inventory]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add `--inventory PATH` (once, whoever registers this plugin or the option first)."""
    try:
        parser.addoption(
            "--inventory",
            default=DEFAULT_INVENTORY,
            metavar="PATH",
            help=f"inventory file of the environment (default {DEFAULT_INVENTORY}, relative to rootdir)",
        )
    except ValueError:
        pass  # already registered by the root conftest or a second registration of this plugin


def inventory_path(config: pytest.Config) -> Path:
    """The inventory file chosen with --inventory: as given, else relative to the invocation dir, else rootdir."""
    given = Path(config.getoption("--inventory", default=DEFAULT_INVENTORY))
    if given.is_absolute():
        return given
    invoked = config.invocation_params.dir / given
    return invoked if os.path.lexists(invoked) else config.rootpath / given


def get_inventory(config: pytest.Config) -> Inventory:
    """The session's inventory (loaded once; usable from pytest_generate_tests)."""
    if INVENTORY_KEY not in config.stash:
        config.stash[INVENTORY_KEY] = load_inventory(inventory_path(config))
    return config.stash[INVENTORY_KEY]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop the session (exit 4, `ERROR: <one line>`) when the inventory is not valid."""
    try:
        get_inventory(session.config)
    except InventoryError as error:
        raise pytest.UsageError(str(error)) from None


@pytest.fixture(scope="session")
def inventory(pytestconfig: pytest.Config) -> Inventory:
    """The validated inventory of this session (--inventory)."""
    return get_inventory(pytestconfig)
