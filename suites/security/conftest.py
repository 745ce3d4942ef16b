"""Security suite: each test asserts one control of plugins/security on one host (or one route of the proxy).

A test names its control with `@pytest.mark.control("<name>")` and takes `security_host` (a host of the
inventory) or `security_route` (a route the proxy serves). The audit runs once, for the controls the collected
tests need (`-k "not lynis"` leaves lynis out), every host concurrently, in the background from the end of
collection (beside the exposure probes); each test then states one finding.
"""

from __future__ import annotations

import pytest

from plugins.inventory import get_inventory
from plugins.report import allure_output
from plugins.security import openscap
from plugins.security.audit import SecurityAudit, routes_of
from plugins.security.findings import CONTROLS
from plugins.security.table import CELL, SecurityTable
from plugins.ssh.known_hosts import known_hosts_file

AUDIT_KEY = pytest.StashKey[SecurityAudit]()


def pytest_configure(config: pytest.Config) -> None:
    """Declare the `control(name)` marker and register the session's table."""
    config.addinivalue_line("markers", "control(name): the plugins/security control a security test asserts")
    if not config.pluginmanager.has_plugin("security-table"):
        config.pluginmanager.register(SecurityTable(config), "security-table")


def _control(definition) -> str:
    marker = definition.get_closest_marker("control")
    if marker is None or marker.args[0] not in CONTROLS:
        raise pytest.UsageError(f"{definition.nodeid}: a security test needs @pytest.mark.control(name), "
                                f"name one of {', '.join(CONTROLS)}")
    return marker.args[0]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize from the inventory: `security_host` by hostname, `security_route` by the route's service."""
    inventory = get_inventory(metafunc.config)
    if "security_host" in metafunc.fixturenames:
        metafunc.parametrize("security_host", inventory.hosts, ids=[h.hostname for h in inventory.hosts])
    if "security_route" in metafunc.fixturenames:
        routes = routes_of(inventory)
        metafunc.parametrize("security_route", routes, ids=[r.name for r in routes])


def _cell(item: pytest.Item, inventory) -> tuple[str, str, str | None] | None:
    params = getattr(item, "callspec", None)
    if params is None or item.get_closest_marker("control") is None:
        return None
    control = _control(item)
    if "security_host" in params.params:
        return params.params["security_host"].hostname, control, None
    if "security_route" in params.params:
        return inventory.proxy_host.hostname, control, params.params["security_route"].name
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tag each security test with its table cell (host, control)."""
    inventory = get_inventory(config)
    for item in items:
        cell = _cell(item, inventory)
        if cell:
            item.user_properties.append((CELL, cell[:2]))


def _begin_audit(session: pytest.Session) -> SecurityAudit | None:
    """The session's audit, started once for the controls the collected tests assert (None: no such test)."""
    config = session.config
    if AUDIT_KEY not in config.stash:
        controls = {_control(item) for item in session.items if item.get_closest_marker("control")}
        if not controls:
            return None
        inventory = get_inventory(config)
        try:  # a malformed exception list is bad input: one line, before any host is touched
            accepted = openscap.load_accepted() if "openscap" in controls else {}
            accepted.update(inventory.security.openscap_accepted)  # the site's own, beside every container's
        except openscap.AcceptedError as error:
            raise pytest.UsageError(str(error)) from None
        audit = SecurityAudit(inventory, inventory.hosts, known_hosts_file(inventory), accepted)
        config.stash[AUDIT_KEY] = audit
        audit.start(controls)
    return config.stash[AUDIT_KEY]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the audit as soon as the tests are known: its tools then run beside the exposure probes, which come
    first (test_exposure.py), instead of after them."""
    if not session.config.option.collectonly:
        _begin_audit(session)


@pytest.fixture(scope="session")
def security_audit(request: pytest.FixtureRequest) -> SecurityAudit:
    """The session's audit once its tools are done (begun when collection ended)."""
    audit = _begin_audit(request.session)
    if audit is None:
        pytest.fail("security_audit: no collected test names a control (@pytest.mark.control)", pytrace=False)
    audit.wait()
    return audit


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close the audit's SSH masters (also when the run is interrupted)."""
    audit = config.stash.get(AUDIT_KEY, None)
    if audit is not None:
        audit.close()


@pytest.fixture
def finding(request: pytest.FixtureRequest, security_audit: SecurityAudit):
    """This test's finding; the tool's full output is attached to the report."""
    host, control, subject = _cell(request.node, security_audit.inventory)
    found = security_audit.findings.get((host, control, subject))
    if found is None:
        pytest.fail(f"{host}: {control}: the audit gave no finding", pytrace=False)
    if found.output:
        allure_output.attach_text(f"{control} output ({host}{'/' + subject if subject else ''})", found.output)
    if found.html:
        allure_output.attach_html(f"{control} report ({host})", found.html)
    accepted = security_audit.inventory.security.accepted_for(host, control)
    if accepted is not None and not found.passed:
        pytest.skip(f"accepted (inventory: security.accepted): {accepted.reason} | {found.message}")
    return found

