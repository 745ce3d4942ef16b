"""Unit tests: fast, no root, no lab (`make test-unit` selects them with -m unit)."""

import pytest


def pytest_collection_modifyitems(items):
    """Mark every test collected under tests/unit as a unit test."""
    for item in items:
        if "tests/unit/" in item.nodeid:
            item.add_marker(pytest.mark.unit)

