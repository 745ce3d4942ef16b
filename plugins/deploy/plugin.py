"""The deploy package's pytest entry: options, the run's session and lock, stage order and gating, its end.

Listed by the root conftest. It acts only on tests marked `pytest.mark.stage` (suites/deploy): the
session object, the environment's deploy lock, the gating and the end of the run (rollback →
notification → result) exist for a run that collected stages.
"""

from __future__ import annotations

import contextlib

import pytest

from plugins.deploy import gating, progress
from plugins.deploy.finish.end import RunEnd, end_session, write_account
from plugins.deploy.run_lock import RunLock
from plugins.deploy.session import DeploySession, add_options, get_session, parse_ansible_vars, start_session
from plugins.deploy.start import note_progress, start_run
from plugins.inventory import get_inventory
from plugins.report import allure_output

END_KEY = pytest.StashKey[RunEnd]()
LOCK_KEY = pytest.StashKey[RunLock]()
_configs: list[pytest.Config] = []  # the running session's config (a list: pytester nests sessions)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Deploy options: --plan-only, --no-rollback, --run-id, --idempotence, --ansible-var."""
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Declare the stage marker; keep the config for the one hook pytest gives none (pytest_keyboard_interrupt)."""
    config.addinivalue_line("markers", "stage(name): a deploy stage, declared in plugins/deploy/pipeline.py")
    _configs.append(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Forget the config kept at configure."""
    if config in _configs:
        _configs.remove(config)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the stages' tests as the pipeline declares them (before pytest-order sorts)."""
    gating.order_stages(items)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a stage's test when an earlier stage (or an earlier test of a sequential stage) failed."""
    session = get_session(item.config)
    if session is not None:
        gating.gate(item, session)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Record each stage's outcome on the deploy session, and what the run changed so far on its lock's record."""
    report = yield
    session = get_session(item.config)
    if session is not None:
        gating.record_outcome(item, call, report, session)
        lock = item.config.stash.get(LOCK_KEY, None)
        if lock is not None:
            note_progress(lock, session)
        allure_output.set_environment(item.config, run_id=session.run_id, **session.facts)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """When a stage's last test is done: one line, stage, outcome, seconds and summary (its details unless -q)."""
    result = yield
    session = get_session(item.config)
    stage = gating.stage_of(item)
    if session is not None and stage is not None and (nextitem is None or gating.stage_of(nextitem) != stage):
        record = session.stage(stage.name)
        session.say(progress.stage_line(record))
        if not session.terse:
            for line in record.details:
                session.say(line)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session):
    """Before the first stage: the session starts, takes the environment's deploy lock, says it is in progress."""
    stages = [item for item in session.items if gating.stage_of(item)]
    if stages and not session.config.option.collectonly:
        deploy = start_session(session.config, get_inventory(session.config))
        deploy.say = progress_writer(session.config)
        session.config.stash[LOCK_KEY] = start_run(session, deploy)
    return (yield)


def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo) -> None:
    """A signal cut the run (Ctrl-C, or SIGTERM made one by plugins/deploy/start.py): the running stage says so."""
    deploy = get_session(_configs[-1]) if _configs else None
    if deploy is None or not excinfo.errisinstance(KeyboardInterrupt):
        return  # pytest.exit() comes here too: not a signal
    name = "SIGTERM" if str(excinfo.value) == "SIGTERM" else "SIGINT"
    for record in deploy.cut(name):
        deploy.say(progress.stage_line(record))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """End a deploy run: rollback after a failure, notification, result files, Allure; the lock let go."""
    deploy = get_session(session.config)
    if deploy is None or deploy.refused:
        return  # a refused run changed nothing and must not overwrite the running one's files
    lock = session.config.stash.get(LOCK_KEY, None)
    session.config.stash[END_KEY] = end_session(session, deploy, exitstatus, lock)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """After the failures: what the end of the run did, the stages' table and where the report is."""
    end = config.stash.get(END_KEY, None)
    deploy = get_session(config)
    if end is not None and deploy is not None:
        write_account(terminalreporter, end, deploy, allure_output.alluredir(config))


def progress_writer(config: pytest.Config):
    """A function printing one whole line for the person watching, live: also from inside a test (capture suspended)."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if terminal is None:
        return print

    def say(line: str) -> None:
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            if getattr(terminal._tw, "width_of_current_line", 0):  # pytest's dots are on the line
                terminal.write("\n")
            terminal.write_line(line)
    return say


@pytest.fixture(scope="session")
def ansible_extravars(pytestconfig: pytest.Config) -> dict[str, str]:
    """Extra variables given with --ansible-var (empty in a normal deploy)."""
    return parse_ansible_vars(pytestconfig.getoption("--ansible-var"))


@pytest.fixture(scope="session")
def deployment(pytestconfig: pytest.Config, inventory) -> DeploySession:
    """The deploy session: run id, inventory, and what each stage did so far."""
    return start_session(pytestconfig, inventory)
