"""The 3-node cluster's end-to-end proof (`make test-cluster`): slow, so behind its own marker, never in `make test`."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items):
    """Every test here is the cluster's (the hook sees the whole session's items: only ours get the marker)."""
    for item in items:
        if "tests/cluster/" in item.nodeid:
            item.add_marker(pytest.mark.cluster)
