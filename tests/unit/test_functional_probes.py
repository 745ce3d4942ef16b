"""plugins/health/functional: the zabbix_api probe against a JSON-RPC server on 127.0.0.1, the routed session,
the retry until the deadline, and the probes both inventories derive from the declarations."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import get_args

import pytest

from plugins.health.functional import KINDS
from plugins.health.functional.waiting import RoutedSession, probe_secrets, wait_for_probe
from plugins.health.functional.zabbix import zabbix_api
from plugins.inventory import load_inventory
from plugins.inventory.catalog import FunctionalProbe
from plugins.inventory.stack import ProbeTarget

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


class Api:
    """What the fake frontend answers to POST /api_jsonrpc.php: a status and a body, in turn."""

    def __init__(self, *answers: tuple[int, bytes]):
        self.answers, self.seen = list(answers), []

    def next(self) -> tuple[int, bytes]:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def api_server():
    """Give a function starting a fake Zabbix frontend with its answers; give (base url, Api). Stopped after."""
    servers = []

    def start(*answers):
        api = Api(*answers)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.seen.append((self.path, self.headers.get("Host"), self.headers.get("Content-Type"), body))
                status, payload = api.next()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/", api

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


VERSION = (200, b'{"jsonrpc": "2.0", "result": "6.0.14", "id": 1}')
DB_DOWN = (200, (b'{"jsonrpc": "2.0", "error": {"code": -32500, "message": "Application error.", '
                 b'"data": "Database error."}, "id": 1}'))


def test_zabbix_api_reports_the_version_of_an_unauthenticated_apiinfo_call(api_server):
    base, api = api_server(VERSION)
    with RoutedSession(None, None) as session:
        ok, message = zabbix_api(session, base, {})
    assert ok and message == f"{base}api_jsonrpc.php: Zabbix API 6.0.14"
    path, _, content_type, body = api.seen[0]
    assert path == "/api_jsonrpc.php" and content_type == "application/json-rpc"
    assert body["method"] == "apiinfo.version" and "auth" not in body  # Zabbix refuses auth on this method


@pytest.mark.parametrize(("answer", "expected"), [
    (DB_DOWN, "apiinfo.version failed: Application error. Database error."),
    ((502, b"{}"), "got 502 (expected 200"),
    ((200, b"<html>setup</html>"), "not JSON"),
    ((200, b'{"jsonrpc": "2.0", "result": "", "id": 1}'), "no version in the answer"),
])
def test_zabbix_api_failures_are_one_line_naming_the_url(api_server, answer, expected):
    base, _ = api_server(answer)
    with RoutedSession(None, None) as session:
        ok, message = zabbix_api(session, base, {})
    assert not ok and expected in message and message.startswith(f"{base}api_jsonrpc.php: ") and "\n" not in message


def test_zabbix_api_names_a_refused_connection(api_server):
    with RoutedSession(None, None) as session:
        session.timeout = 1
        ok, message = zabbix_api(session, "http://127.0.0.1:9/", {})
    assert not ok and "connection refused" in message


def test_a_routed_session_connects_to_the_proxy_with_the_routes_host_name(api_server):
    base, api = api_server(VERSION)
    port = base.rsplit(":", 1)[1].strip("/")
    with RoutedSession("127.0.0.1", None) as session:
        ok, _ = zabbix_api(session, f"http://zabbix.lab.home.arpa:{port}/", {})
    assert ok and api.seen[0][1] == "zabbix.lab.home.arpa"


def target(url: str, deadline: float = 5.0, **fields) -> ProbeTarget:
    return ProbeTarget(name="zabbix-web-zabbix_api", kind="zabbix_api", url=url, deadline=deadline, **fields)


def test_a_probe_is_retried_until_it_passes(api_server):
    base, api = api_server(DB_DOWN, DB_DOWN, VERSION)
    found = wait_for_probe(target(base))
    assert found.ok and found.attempts == 3 and len(api.seen) == 3
    assert found.message == f"zabbix-web-zabbix_api: {base}api_jsonrpc.php: Zabbix API 6.0.14"


def test_a_probe_still_failing_at_its_deadline_says_so(api_server):
    base, _ = api_server(DB_DOWN)
    now = [0.0]
    found = wait_for_probe(target(base, deadline=3.0), clock=lambda: now[0],
                           sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert not found.ok and found.attempts > 1
    assert "Database error" in found.message and "still failing after 3.0 s (deadline 3 s)" in found.message


def test_probe_secrets_come_from_their_env_variables_only():
    probe = target("http://127.0.0.1:1/", secret_env=(("api_token", "API_TOKEN"), ("vaulted", None)))
    assert probe_secrets(probe, {"API_TOKEN": "s3cret", "OTHER": "x"}) == {"api_token": "s3cret"}
    assert probe_secrets(probe, {}) == {}


def test_every_declarable_kind_has_a_function():
    kinds = get_args(FunctionalProbe.model_fields["kind"].annotation)
    assert set(kinds) == set(KINDS)


@pytest.mark.parametrize("name", ["lab", "homelab"])
def test_both_inventories_probe_zabbix_directly_and_through_traefik(name):
    inventory = load_inventory(ROOT / "inventories" / f"{name}.yml")
    monitoring = next(h for h in inventory.hosts if h.hostname == "monitoring")
    probes = {p.name: p for p in monitoring.probes}
    direct, routed = probes["zabbix-web-zabbix_api"], probes["zabbix-web-zabbix_api-via-traefik"]
    assert direct.url == f"http://{monitoring.ip}:8080/" and direct.connect_to is None
    assert routed.url == f"https://zabbix.{inventory.stack.domain}/"
    assert routed.connect_to == inventory.proxy_host.ip and routed.ca_file == inventory.stack.tls.ca_file
    assert all(p.kind in KINDS for h in inventory.hosts for p in h.probes)
