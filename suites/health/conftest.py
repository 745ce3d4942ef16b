"""Health suite: every test is parametrized from the inventory; the checks themselves live in plugins/checks.py.

All the checks the collected tests need are run once, concurrently (one SSH master and one remote command
per host, every HTTP wait in its own thread), when the first test asks; each test then states its promise
about one result. `--hosts a,b` / `--roles r1,r2` / `-k` select; the runner host skips its SSH self-checks.
"""

from __future__ import annotations

import argparse
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from plugins import checks
from plugins.http import wait_for_service
from plugins.inventory import get_inventory
from plugins.known_hosts import known_hosts_file
from plugins.ssh import SshPool, SshTarget

# check -> summary-table column, in the table's column order (the order each host's tests run in)
COLUMN = {
    "ssh_reachable": "ssh",
    "sshd_refuses_passwords": "passwords",
    "runner_key_authorized": "keys",
    "rsync_installed": "rsync",
    "docker_running": "docker",
    "container_running": "containers",
    "package_installed": "packages",
    "http": "http",
}


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


def pytest_configure(config: pytest.Config) -> None:
    """Register the `check(name)` marker each host test carries."""
    config.addinivalue_line("markers", "check(name): the plugins/checks.py check a health test asserts")


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
    """Parametrize from the inventory: ids `app-demo`, `app-demo/web`, `app-demo/rsync`, `app-demo/app-demo-health`."""
    hosts = selected_hosts(metafunc.config)
    if "health_host" in metafunc.fixturenames:
        metafunc.parametrize("health_host", hosts, ids=[h.hostname for h in hosts])
    for argument, pairs in (
        ("health_container", [(h, name) for h in hosts for name in h.containers]),
        ("health_package", [(h, name) for h in hosts for name in h.packages]),
        ("health_service", [(h, service) for h in hosts for service in h.services]),
    ):
        if argument in metafunc.fixturenames:
            ids = [f"{h.hostname}/{getattr(item, 'name', item)}" for h, item in pairs]
            metafunc.parametrize(argument, pairs, ids=ids)


def item_need(item: pytest.Item) -> tuple | None:
    """What a collected test asks for: (host, check, subject) or (host, "http", service); None if not ours."""
    params = getattr(item, "callspec", None)
    params = params.params if params else {}
    marker = item.get_closest_marker("check")
    if "health_service" in params:
        host, service = params["health_service"]
        return host, "http", service
    if marker is None:
        return None
    if "health_host" in params:
        return params["health_host"], marker.args[0], None
    for argument in ("health_container", "health_package"):
        if argument in params:
            host, name = params[argument]
            return host, marker.args[0], name
    return None


def not_applicable(need: tuple) -> str | None:
    """Why a check does not apply to a host (a visible skip), or None."""
    host, check, _ = need
    if check == "docker_running" and not host.containers:
        return f"no containers expected on {host.hostname} (inventory: containers): docker not required there"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tag each health test with its summary-table cell (host, column), and run the tests host by host."""
    position = {host.hostname: index for index, host in enumerate(get_inventory(config).hosts)}
    columns = list(COLUMN.values())
    order: dict[pytest.Item, tuple[int, int]] = {}
    for item in items:
        need = item_need(item)
        if need:
            hostname, column = need[0].hostname, COLUMN[need[1]]
            item.user_properties.append(("health_cell", (hostname, column)))
            order[item] = (position[hostname], columns.index(column))
    # Host by host in inventory order (the order their checks are submitted), each host's tests in the
    # summary table's column order: a host's tests report as soon as its one remote command is back. File by
    # file, the first file would wait for the last host, and every other file's tests would queue behind it
    # (at 50 hosts, ~0.6 s of pytest's own work left after the last check). Other tests go first, in their order.
    items.sort(key=lambda item: order.get(item, (-1, 0)))


class HealthRun:
    """The session's checks, started once for every collected test; each test waits only for its own host.

    Started when collection finishes (not at the first test): opening 50 SSH masters is CPU work on the
    hosts, and pytest's own per-test work then overlaps with it instead of following it.
    """

    def __init__(self, config: pytest.Config):
        """Prepare an SSH pool for the selected hosts (nothing is opened yet)."""
        self.inventory = get_inventory(config)
        runner = self.inventory.runner
        self.user, self.public_key = runner.deploy_user, runner.deploy_key + ".pub"
        known_hosts = config.getoption("known_hosts") or known_hosts_file(self.inventory)
        self.pool = SshPool([SshTarget(h.hostname, h.ip, runner.deploy_user, runner.deploy_key)
                             for h in selected_hosts(config)], known_hosts=known_hosts)
        self.hosts: dict[str, Future] = {}
        self.http: dict[tuple[str, str], Future] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._http_executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def start(self, items: list[pytest.Item]) -> None:
        """Submit, once, every host's checks (one task per host) and every HTTP wait the items need."""
        with self._lock:
            if self._executor is not None:
                return
            plan: dict[str, tuple] = {}
            services = []
            for need in filter(None, map(item_need, items)):
                host, check, subject = need
                if not_applicable(need):
                    continue
                if check == "http":
                    services.append((host, subject))
                else:
                    plan.setdefault(host.hostname, (host, []))[1].append((check, subject))
            # Two pools: HTTP waits mostly sleep (a thread each, started first while starting one is cheap);
            # host checks are CPU work on both ends (SSH handshakes), HOST_WORKERS at a time.
            self._http_executor = ThreadPoolExecutor(max_workers=max(1, len(services)), thread_name_prefix="health-http")
            self._executor = ThreadPoolExecutor(max_workers=checks.HOST_WORKERS, thread_name_prefix="health-host")
            for host, service in services:
                self.http[(host.hostname, service.name)] = self._http_executor.submit(wait_for_service, service)
            for hostname, (host, wanted) in plan.items():
                reason = checks.self_check_reason(self.inventory, host)
                self.hosts[hostname] = self._executor.submit(
                    checks.check_host, host, self.pool, wanted, user=self.user,
                    public_key_file=self.public_key, self_reason=reason)

    def result(self, host, check: str, subject):
        """Wait for and give one check's result (HttpResult for "http", else CheckResult)."""
        if check == "http":
            return self.http[(host.hostname, subject.name)].result()
        try:
            found = self.hosts[host.hostname].result()
        except Exception as exc:  # noqa: BLE001 - one host's surprise fails its tests, not the session
            return checks.result(host, check, checks.FAIL,
                                 f"{checks.where(host)}: check crashed: {type(exc).__name__}: {exc}", subject)
        return next(r for r in found if (r.check, r.subject) == (check, subject))

    def close(self) -> None:
        """Stop the workers, then close every SSH master opened for the session."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._http_executor.shutdown(wait=True, cancel_futures=True)
        self.pool.close_all()


RUN_KEY = pytest.StashKey[HealthRun]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the checks as soon as the tests are known (where tests run: not on an xdist controller)."""
    config = session.config
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        return
    if config.option.collectonly or not any(item_need(item) for item in session.items):
        return
    config.stash[RUN_KEY] = HealthRun(config)
    config.stash[RUN_KEY].start(session.items)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close the session's masters (also when the run is interrupted)."""
    run = config.stash.get(RUN_KEY, None)
    if run is not None:
        run.close()


@pytest.fixture(scope="session")
def health_run(request: pytest.FixtureRequest) -> HealthRun:
    """The session's HealthRun (started at collection finish; started here if it was not)."""
    config = request.config
    if RUN_KEY not in config.stash:
        config.stash[RUN_KEY] = HealthRun(config)
    config.stash[RUN_KEY].start(request.session.items)
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
    need = item_need(request.node)
    if need is None:
        raise pytest.UsageError(f"{request.node.nodeid}: a health test needs @pytest.mark.check(...) and a "
                                "health_host/health_container/health_package/health_service argument")
    reason = not_applicable(need)
    if reason:
        pytest.skip(reason)
    result = health_run.result(*need)
    if need[1] == "http":
        return Verdict(result.ok, result.message)
    if result.outcome == checks.SKIP:
        pytest.skip(result.message)
    return Verdict(result.passed, result.message)
