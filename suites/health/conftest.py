"""Health suite: every test asserts one check of plugins/health/registry.py, parametrized from the inventory.

A test names its check with `@pytest.mark.check("<name>")` and takes the argument the registry gives it
(health_host, or (host, subject) as health_container, health_package, health_service). All the checks the
collected tests need run once, concurrently (plugins/health/run.py), from the session's start for a run of the
whole suite (every check of every selected host), from the end of collection for a narrowed one; each test then
states its promise about one result. `--hosts a,b` / `--roles r1,r2` / `-k` select; the runner host
skips its SSH self-checks.
"""

from __future__ import annotations

import argparse
import atexit
import gc
from dataclasses import dataclass
from pathlib import Path

import pytest

from plugins.health.power import read_states
from plugins.health.registry import COLUMNS, REGISTRY, check_named
from plugins.health.results import SKIP
from plugins.health.run import HealthRun, every_need, need_of
from plugins.health.table import CELL, NODE, STATE
from plugins.inventory import get_inventory
from plugins.ssh.known_hosts import known_hosts_file
from plugins.startup.plugin import own_process


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add --hosts / --roles (inventory selection) and --known-hosts."""
    group = parser.getgroup("health", "health suite")
    try:  # pytest-testinfra defines --hosts too (its tests use the `host` fixture, ours do not)
        group.addoption("--hosts", dest="hosts", default=None, help="comma-separated inventory hostnames")
    except (ValueError, argparse.ArgumentError):
        pass
    group.addoption("--roles", default=None, help="comma-separated roles: only hosts carrying one of them")
    group.addoption("--known-hosts", default=None,
                    help="UserKnownHostsFile for the checks' SSH (accept-new; default: the environment's, "
                         "known_hosts_<environment> next to the deploy key, shared with the deploy)")


HERE = Path(__file__).resolve().parent
# Hypothesis's pytest plugin imports the whole of hypothesis in its terminal summary, after the last check
# (docs/reference/figures.md, issue 26): a run of this suite alone has no property-based test to report on.
HYPOTHESIS_PLUGIN = "hypothesispytest"


def pytest_configure(config: pytest.Config) -> None:
    """Leave hypothesis's plugin out of a run that collects nothing but this suite; let the process end quickly."""
    paths = [Path(config.invocation_params.dir, arg.split("::")[0]).resolve() for arg in config.args]
    if paths and all(path == HERE or HERE in path.parents for path in paths):
        config.pluginmanager.set_blocked(HYPOTHESIS_PLUGIN)
    # Python's own exit runs the garbage collector over every object the session made, after the last check has
    # reported (docs/reference/figures.md); objects frozen at exit are left to the process's end. At exit only: a
    # caller of pytest.main that goes on keeps its collector as it was.
    atexit.register(gc.freeze)


def _names(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def selected_hosts(config: pytest.Config) -> list:
    """The inventory hosts chosen by --hosts and --roles (all by default); a usage error names unknown ones."""
    inventory = get_inventory(config)
    hosts = list(inventory.hosts)
    wanted = _names(config.getoption("hosts"))
    if wanted:
        known = [h.hostname for h in hosts]
        unknown = [name for name in wanted if name not in known]
        if unknown:
            raise pytest.UsageError(f"--hosts: no host {', '.join(unknown)} in {inventory.source}; "
                                    f"hosts: {', '.join(known)}")
        hosts = [h for h in hosts if h.hostname in wanted]
    roles = _names(config.getoption("roles"))
    if roles:
        unknown = [r for r in roles if r not in inventory.roles]
        if unknown:
            raise pytest.UsageError(f"--roles: no role {', '.join(unknown)} in {inventory.source}; "
                                    f"roles: {', '.join(inventory.roles)}")
        hosts = [h for h in hosts if set(h.roles) & set(roles)]
    return hosts


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize each test from its check's subjects: ids `app-demo`, `app-demo/web`, `app-demo/app-demo-health`;
    `backed_up_host` (test_backups.py) with each selected host the inventory's backup policy backs up."""
    if "backed_up_host" in metafunc.fixturenames:
        policy = get_inventory(metafunc.config).backup
        hosts = [h for h in selected_hosts(metafunc.config) if policy and h.hostname not in policy.exclude]
        metafunc.parametrize("backed_up_host", hosts, ids=[h.hostname for h in hosts])
    marker = metafunc.definition.get_closest_marker("check")
    if marker is None:
        return
    check = check_named(marker.args[0])
    if check.argument not in metafunc.fixturenames:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: check '{check.name}' gives its parameters as "
                                f"`{check.argument}`: add that argument to the test")
    values, ids = check.parameters(selected_hosts(metafunc.config))
    metafunc.parametrize(check.argument, values, ids=ids)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tag each health test with its summary-table cell (host, column), and run the tests host by host."""
    # A check none of the selected hosts has a subject of (no probe there) leaves pytest's empty-parameter-set
    # placeholder: it is no test of anything, so it is deselected rather than shown as a skip named NOTSET.
    empty = [item for item in items if item.get_closest_marker("check") and need_of(item) is None
             and getattr(item, "callspec", None) is not None]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [item for item in items if item not in empty]
    if get_inventory(config).backup is None:  # no policy, no backup watch: its tests are not collected, not skipped
        watch = [item for item in items if item.path.name == "test_backups.py"]
        if watch:
            config.hook.pytest_deselected(items=watch)
            items[:] = [item for item in items if item not in watch]
    position = {host.hostname: index for index, host in enumerate(get_inventory(config).hosts)}
    # A check no selected host owes (no functional probe on the hosts chosen) has an empty parameter set:
    # deselected, not reported as a skip named NOTSET.
    empty = [item for item in items if item.get_closest_marker("check") and need_of(item) is None
             and getattr(item, "callspec", None) is not None]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [item for item in items if item not in empty]
    order: dict[pytest.Item, tuple[int, int]] = {}
    for item in items:
        need = need_of(item)
        if need:
            hostname, column = need[0].hostname, REGISTRY[need[1]].column
            item.user_properties.append((CELL, (hostname, column)))
            order[item] = (position[hostname], COLUMNS.index(column))
        elif "backed_up_host" in getattr(getattr(item, "callspec", None), "params", {}):
            order[item] = (position[item.callspec.params["backed_up_host"].hostname], len(COLUMNS))
        elif item.path.name == "test_backups.py":
            order[item] = (len(position), 0)  # the repository's check: no host's, after every host
    # Host by host in inventory order (the order their checks are submitted), each host's tests in the
    # summary table's column order: a host's tests report as soon as its one remote command is back. File by
    # file, the first file would wait for the last host, and every other file's tests would queue behind it.
    # A host's backup watch follows its checks; the off-site repository's check comes last. Other tests go first,
    # in their order.
    items.sort(key=lambda item: order.get(item, (-1, 0)))


RUN_KEY = pytest.StashKey[HealthRun]()


def _say(config: pytest.Config, line: str) -> None:
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    (terminal.write_line if terminal else print)(line)


def _run_for(config: pytest.Config, hosts: list) -> HealthRun:
    """A HealthRun for these hosts, their states not read yet (nothing opened)."""
    inventory = get_inventory(config)
    known_hosts = config.getoption("known_hosts") or known_hosts_file(inventory)
    return HealthRun(inventory, hosts, known_hosts)


def _new_run(config: pytest.Config) -> HealthRun:
    """The session's HealthRun for the selected hosts, with their states from PVE (nothing opened yet)."""
    hosts = selected_hosts(config)
    run = _run_for(config, hosts)
    run.states, why_not = read_states(run.inventory, hosts)
    if why_not:
        _say(config, why_not)
    return run


def _needs(items: list[pytest.Item]) -> list:
    return [need for need in map(need_of, items) if need]


def _runs_tests_here(config: pytest.Config) -> bool:
    """Tests run in this process: not --collect-only, not an xdist controller (its workers run them)."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        return False
    return not config.option.collectonly


def _whole_suite(config: pytest.Config) -> bool:
    """The run is every test of this suite (its directory, no node id, -k, -m, deselection or last-failed): its
    checks are known before collection."""
    option = config.option
    narrowed = (getattr(option, "keyword", ""), getattr(option, "markexpr", ""), getattr(option, "deselect", None),
                getattr(option, "lf", False), getattr(option, "stepwise", False))
    paths = {Path(config.invocation_params.dir, arg).resolve() for arg in config.args}
    return not any(narrowed) and paths == {HERE}


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """A run of the whole suite starts its checks now (after the inventory is validated): collection then
    overlaps the SSH handshakes.

    The hosts' states are read first, here in the main thread: read from a thread while the main thread collects,
    two API calls wait on the GIL at every step and take tens of times longer (docs/reference/figures.md).
    """
    config = session.config
    if not (_runs_tests_here(config) and _whole_suite(config)):
        return
    hosts = selected_hosts(config)
    run = config.stash[RUN_KEY] = _run_for(config, hosts)
    run.states, run.why_not = read_states(run.inventory, hosts)
    run.start(every_need(hosts))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the checks the collected tests need, as soon as they are known (those a background start did not).

    Started when collection finishes, not at the first test: opening many SSH masters is CPU work on the
    hosts, and pytest's own per-test work then overlaps with it instead of following it.
    """
    config = session.config
    if not _runs_tests_here(config):
        return
    needs = _needs(session.items)
    run = config.stash.get(RUN_KEY, None)
    if run is not None and run.why_not:  # said here, where a run that starts now says it
        _say(config, run.why_not)
    if not needs:
        return
    if run is None:
        run = config.stash[RUN_KEY] = _new_run(config)
    run.start(needs)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close the session's masters (also when the run is interrupted); in a process that is this run, freeze the
    collector's objects before pytest's own last collection (its unraisable-exception cleanup), as at exit."""
    run = config.stash.get(RUN_KEY, None)
    if run is not None:
        run.close()
    if own_process(config):  # not a caller's pytest.main that goes on
        gc.freeze()


@pytest.fixture(scope="session")
def health_run(request: pytest.FixtureRequest) -> HealthRun:
    """The session's HealthRun (started at session start or collection finish; started here if it was not)."""
    config = request.config
    if RUN_KEY not in config.stash:
        config.stash[RUN_KEY] = _new_run(config)
    config.stash[RUN_KEY].start(_needs(request.session.items))
    return config.stash[RUN_KEY]


@dataclass(frozen=True)
class Verdict:
    """A test's result, with the one assertion a health test makes."""

    passed: bool
    message: str

    def assert_passed(self) -> None:
        """Fail the test with the check's diagnosis (no traceback: the message is the diagnosis)."""
        if not self.passed:
            pytest.fail(self.message, pytrace=False)


@pytest.fixture
def verdict(request: pytest.FixtureRequest, health_run: HealthRun) -> Verdict:
    """This test's check result (skipped, with the reason, when the check does not apply)."""
    need = need_of(request.node)
    if need is None:
        raise pytest.UsageError(f"{request.node.nodeid}: a health test needs @pytest.mark.check(...) naming a check "
                                "of plugins/health/registry.py, and the argument that check gives")
    host, name, _ = need
    word = health_run.state_word(host)
    if word is not None:  # the summary table's state column (a property travels with the report, also from xdist)
        request.node.user_properties.append((STATE, (host.hostname, word)))
    node = health_run.node_word(host)
    if node is not None:  # the table's node column: where the host runs now (HA may have recovered it elsewhere)
        request.node.user_properties.append((NODE, (host.hostname, node)))
    reason = REGISTRY[name].applies(host)
    if reason:
        pytest.skip(reason)
    result = health_run.result(*need)
    if REGISTRY[name].wait is not None:
        return Verdict(result.ok, result.message)
    if result.outcome == SKIP:
        pytest.skip(result.message)
    return Verdict(result.passed, result.message)
