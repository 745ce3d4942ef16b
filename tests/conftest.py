"""The project's own tests: always behind the network fence, and no test leaves its signal handlers to the next."""

import signal

import pytest

pytest_plugins = ["tests.netfence", "tests.pve_walk_tally"]


@pytest.fixture(autouse=True)
def _signal_handlers_restored():
    """SIGINT/SIGTERM as they were before each test: a deploy session's start and end install their own (a
    SIGTERM means roll back), and one leaked into the rest of `make test` swallowed Ctrl-C there."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    yield
    for number, handler in saved.items():
        if signal.getsignal(number) is not handler:
            signal.signal(number, handler)
