"""The report's pytest entry: secrets masked in every log record, tests named as people say them in Allure,
Allure's environment, executor and categories written.

Listed by the root conftest; acts on Allure files only when allure-pytest writes results (--alluredir).
"""

from __future__ import annotations

import pytest

from plugins.report import allure_output
from plugins.report.naming import naming_of
from plugins.report.redaction import install_log_redaction
from plugins.report.run_facts import executor_from_env, run_properties


def pytest_configure(config: pytest.Config) -> None:
    """Mask secrets in every log record of the session."""
    install_log_redaction()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item):
    """Once allure-pytest has opened the test: its title, readable parameters and labels (epic, feature, story)."""
    try:
        return (yield)
    finally:
        # no Allure test to name without Allure's results: nothing to work out per test
        naming = naming_of(item) if allure_output.alluredir(item.config) is not None else None
        if naming is not None:
            allure_output.name_test(naming.title, naming.parameters, naming.labels)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write environment.properties, executor.json and categories.json when allure results are being written."""
    target = allure_output.alluredir(session.config)
    if target is None:
        return
    properties = {**run_properties(session.config), **session.config.stash.get(allure_output.ENVIRONMENT_KEY, {})}
    allure_output.write_environment(target, properties)
    executor = executor_from_env()
    if executor:
        allure_output.write_executor(target, executor)
    allure_output.write_categories(target)
