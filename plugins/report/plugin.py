"""The report's pytest entry: secrets masked in every log record, Allure's environment and categories written.

Listed by the root conftest; acts on Allure files only when allure-pytest writes results (--alluredir).
"""

from __future__ import annotations

import pytest

from plugins.report.allure_output import ENVIRONMENT_KEY, alluredir, write_categories, write_environment
from plugins.report.redaction import install_log_redaction


def pytest_configure(config: pytest.Config) -> None:
    """Mask secrets in every log record of the session."""
    install_log_redaction()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write environment.properties and categories.json when allure results are being written."""
    target = alluredir(session.config)
    if target is None:
        return
    write_environment(target, session.config.stash.get(ENVIRONMENT_KEY, {}))
    write_categories(target)
