"""plugins/health/functional/zabbix_api.py against a JSON-RPC server on 127.0.0.1: the version, the warm-up while
the database is not ready, the failures; and the probes both inventories derive for Zabbix."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import get_args

import pytest

from plugins.health.functional import KINDS, WarmingUp
from plugins.health.functional.runner import probe_session, wait_for_probe
from plugins.health.functional.zabbix_api import zabbix_api
from plugins.inventory import load_inventory
from plugins.inventory.checks import FunctionalCheck
from plugins.inventory.declaration import FunctionalProbe

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
        return f"http://127.0.0.1:{server.server_address[1]}/api_jsonrpc.php", api

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


VERSION = (200, b'{"jsonrpc": "2.0", "result": "6.0.14", "id": 1}')
DB_DOWN = (200, (b'{"jsonrpc": "2.0", "error": {"code": -32500, "message": "Application error.", '
                 b'"data": "Database error."}, "id": 1}'))


def check(url: str, deadline: float = 5.0, **fields) -> FunctionalCheck:
    """The direct Zabbix probe as plugins/inventory/checks.py derives it, at a test server's URL."""
    return FunctionalCheck(name="zabbix-web-zabbix-api", kind="zabbix_api", url=url, deadline=deadline, **fields)


def test_zabbix_api_reports_the_version_of_an_unauthenticated_apiinfo_call(api_server):
    url, api = api_server(VERSION)
    session, target = probe_session(check(url))
    with session:
        ok, message = zabbix_api(session, target, {})
    assert ok and message == f"{url}: Zabbix API 6.0.14"
    path, _, content_type, body = api.seen[0]
    assert path == "/api_jsonrpc.php" and content_type == "application/json-rpc"
    assert body["method"] == "apiinfo.version" and "auth" not in body  # Zabbix refuses auth on this method


@pytest.mark.parametrize(("answer", "expected"), [
    (DB_DOWN, "apiinfo.version failed: Application error. Database error. (the database is not ready yet)"),
    ((502, b"{}"), "answered 502 (warming up)"),
])
def test_a_frontend_without_its_database_yet_is_warming_up(api_server, answer, expected):
    url, _ = api_server(answer)
    session, target = probe_session(check(url))
    with session, pytest.raises(WarmingUp) as raised:
        zabbix_api(session, target, {})
    assert expected in str(raised.value)


@pytest.mark.parametrize(("answer", "expected"), [
    ((404, b"{}"), "answered 404; expected 200 and a JSON-RPC answer"),
    ((200, b"<html>setup</html>"), "not a JSON-RPC object"),
    ((200, b'{"jsonrpc": "2.0", "error": {"code": -32602, "message": "Invalid params."}, "id": 1}'),
     "apiinfo.version failed: Invalid params."),
    ((200, b'{"jsonrpc": "2.0", "result": "", "id": 1}'), "answered no version"),
])
def test_zabbix_api_failures_are_one_line_naming_the_url(api_server, answer, expected):
    url, _ = api_server(answer)
    session, target = probe_session(check(url))
    with session:
        ok, message = zabbix_api(session, target, {})
    assert not ok and expected in message and url in message and "\n" not in message


def test_through_traefik_the_probe_connects_to_the_proxy_with_the_routes_host_name(api_server):
    url, api = api_server(VERSION)
    port = url.split(":")[2].split("/")[0]
    routed = check(f"http://zabbix.lab.home.arpa:{port}/api_jsonrpc.php", connect_to="127.0.0.1")
    found = wait_for_probe(routed)
    assert found.ok and api.seen[0][1] == "zabbix.lab.home.arpa", found.message


def test_the_probe_is_retried_while_the_database_is_not_ready(api_server):
    url, api = api_server(DB_DOWN, DB_DOWN, VERSION)
    found = wait_for_probe(check(url))
    assert found.ok and found.attempts == 3 and len(api.seen) == 3
    assert found.message == f"zabbix-web-zabbix-api: {url}: Zabbix API 6.0.14"


def test_a_database_still_down_at_the_deadline_says_so(api_server):
    url, _ = api_server(DB_DOWN)
    now = [0.0]
    found = wait_for_probe(check(url, deadline=3.0), clock=lambda: now[0],
                           sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert not found.ok and found.attempts > 1
    assert "no verdict within 3 s" in found.message and "Database error" in found.message


def test_every_declarable_kind_has_a_function():
    kinds = get_args(FunctionalProbe.model_fields["kind"].annotation)
    assert set(kinds) == set(KINDS)


@pytest.mark.parametrize("name", ["lab", "homelab"])
def test_both_inventories_probe_zabbix_directly_and_through_traefik(name):
    inventory = load_inventory(ROOT / "inventories" / f"{name}.yml")
    monitoring = next(h for h in inventory.hosts if h.hostname == "monitoring")
    probes = {p.name: p for p in monitoring.probes}
    direct, routed = probes["zabbix-web-zabbix-api"], probes["zabbix-web-zabbix-api-via-traefik"]
    assert direct.url == f"http://{monitoring.ip}:8080/api_jsonrpc.php" and direct.connect_to is None
    assert routed.url == f"https://zabbix.{inventory.stack.domain}/api_jsonrpc.php"
    assert routed.connect_to == inventory.proxy_host.ip and routed.ca_file == inventory.stack.tls.ca_file
    assert direct.secrets == {} and direct.kind == "zabbix_api"
