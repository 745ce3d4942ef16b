"""The monitoring stand-ins (Grafana reading its provisioning, Loki, the Promtail-format shipper) run as local
processes on 127.0.0.1, checked with the health suite's own functional probe where there is one."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import plain_http
import pytest
import requests
import yaml
from plain_http import free_port, wait_listening

from plugins.health.functional.runner import wait_for_probe
from plugins.inventory.checks import FunctionalCheck
from plugins.stack import grafana

pytestmark = pytest.mark.unit

RECIPES = Path(__file__).resolve().parents[2] / "lab" / "images" / "recipes"
GRAFANA = RECIPES / "grafana" / "files" / "server.py"
LOKI = RECIPES / "loki" / "files" / "server.py"
SHIPPER = RECIPES / "promtail" / "files" / "shipper.py"
PASSWORD = "lab-grafana-admin-pw"  # a test value, not a secret of any environment


@pytest.fixture
def start() -> Iterator:
    """Start a stand-in as a child process; every child is stopped afterwards."""
    children: list[subprocess.Popen] = []

    def run(script: Path, env: dict, *args: str, port: int | None = None) -> subprocess.Popen:
        child = subprocess.Popen([sys.executable, str(script), *args], env={**os.environ, **env},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        children.append(child)
        if port:
            wait_listening(port, child)
        return child

    yield run
    for child in children:
        child.terminate()
        child.wait(timeout=10)


@pytest.fixture
def fake_prometheus() -> Iterator[str]:
    """A local server answering Prometheus's query API as Prometheus does (status success): its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path.startswith("/api/v1/query")
            body = json.dumps({"status": "success", "data": {"resultType": "scalar", "result": [0, "2"]}}).encode()
            self.send_response(200 if ok else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def provision(root: Path, prometheus_url: str, loki_url: str) -> Path:
    """A provisioning directory as the monitoring host gets it, the datasources' URLs replaced; its path."""
    document = {"apiVersion": 1, "datasources": [
        {"name": "Prometheus", "type": "prometheus", "uid": "prometheus", "url": prometheus_url, "isDefault": True},
        {"name": "Loki", "type": "loki", "uid": "loki", "url": loki_url}]}
    (root / "datasources").mkdir(parents=True)
    (root / "datasources" / "homelab.yaml").write_text(yaml.safe_dump(document))
    boards = root.parent / "dashboards"
    boards.mkdir()
    for name, board in grafana.dashboards().items():
        (boards / name).write_text(json.dumps(board))
    provider = grafana.dashboard_provider()
    provider["providers"][0]["options"]["path"] = str(boards)
    (root / "dashboards").mkdir()
    (root / "dashboards" / "homelab.yaml").write_text(yaml.safe_dump(provider))
    return root


def grafana_probe(port: int, deadline: float = 3) -> FunctionalCheck:
    """The health suite's grafana_datasources probe of a local Grafana stand-in."""
    return FunctionalCheck(name="grafana-datasources", kind="grafana_datasources", url=f"http://127.0.0.1:{port}/",
                           secrets={"grafana_admin_password": "TEST_GRAFANA_PASSWORD"}, deadline=deadline)


def run_probe(probe: FunctionalCheck, env: dict, monkeypatch) -> tuple[bool, str]:
    """The probe run as the health suite runs it, with that environment: (ok, its one-line message)."""
    monkeypatch.delenv("TEST_GRAFANA_PASSWORD", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = wait_for_probe(probe)
    return result.ok, result.message


def start_grafana(start, provisioning: Path) -> int:
    """A Grafana stand-in on a free port, reading that provisioning, warmed up at once."""
    port = free_port()
    start(GRAFANA, {"GF_SERVER_HTTP_PORT": str(port), "STANDIN_WARMUP_SECONDS": "0",
                    "GF_PATHS_PROVISIONING": str(provisioning), "GF_SECURITY_ADMIN_PASSWORD": PASSWORD}, port=port)
    return port


def start_loki(start, tmp_path: Path, warmup: str = "0") -> int:
    """A Loki stand-in on a free port, storing under tmp_path."""
    port = free_port()
    start(LOKI, {"LOKI_HTTP_PORT": str(port), "STANDIN_WARMUP_SECONDS": warmup,
                 "LOKI_DATA_FILE": str(tmp_path / "loki" / "streams.jsonl")}, port=port)
    return port


def test_grafana_datasources_healthy_when_their_urls_answer(start, tmp_path, fake_prometheus, monkeypatch):
    """Both datasources answer: the probe passes, and says how many; the dashboards are served by uid."""
    loki = start_loki(start, tmp_path)
    port = start_grafana(start, provision(tmp_path / "provisioning", fake_prometheus, f"http://127.0.0.1:{loki}"))
    ok, message = run_probe(grafana_probe(port), {"TEST_GRAFANA_PASSWORD": PASSWORD}, monkeypatch)
    assert ok, message
    assert "2 datasources healthy" in message
    search = requests.get(f"http://127.0.0.1:{port}/api/search", auth=("admin", PASSWORD), timeout=5).json()
    assert {d["uid"] for d in search} == {b["uid"] for b in grafana.dashboards().values()}


def test_a_datasource_pointing_nowhere_turns_the_grafana_probe_red(start, tmp_path, fake_prometheus, monkeypatch):
    """Loki's URL answers nothing: its health is 400 ERROR, and the probe fails naming it (after its deadline)."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    port = start_grafana(start, provision(tmp_path / "provisioning", fake_prometheus, nowhere))
    status, _, body = plain_http.get("127.0.0.1", port, "/api/datasources/uid/loki/health",
                                     headers={"Authorization": "Basic " + _basic("admin", PASSWORD)})
    assert status == 400 and json.loads(body)["status"] == "ERROR"
    monkeypatch.setenv("TEST_GRAFANA_PASSWORD", PASSWORD)
    result = wait_for_probe(grafana_probe(port))
    assert not result.ok
    assert "1 of 2 datasources unhealthy: Loki (loki): 400" in result.message
    assert PASSWORD not in result.message


def test_grafana_api_needs_the_admin_password(start, tmp_path, fake_prometheus, monkeypatch):
    """Without it or with a wrong one: 401, and the probe says the password was refused (not the password)."""
    port = start_grafana(start, provision(tmp_path / "provisioning", fake_prometheus, fake_prometheus))
    assert plain_http.get("127.0.0.1", port, "/api/datasources")[0] == 401
    ok, message = run_probe(grafana_probe(port, deadline=1), {"TEST_GRAFANA_PASSWORD": "wrong-password"}, monkeypatch)
    assert not ok and "admin password was refused" in message and "wrong-password" not in message
    ok, message = run_probe(grafana_probe(port), {}, monkeypatch)
    assert not ok and "TEST_GRAFANA_PASSWORD" in message


def test_grafana_refuses_to_start_on_a_bad_provisioning_file(start, tmp_path):
    """A datasource without a type stops it, naming the file, as Grafana does."""
    root = tmp_path / "provisioning" / "datasources"
    root.mkdir(parents=True)
    (root / "bad.yaml").write_text("apiVersion: 1\ndatasources:\n  - name: X\n")
    child = start(GRAFANA, {"GF_SERVER_HTTP_PORT": str(free_port()), "GF_PATHS_PROVISIONING": str(root.parent)})
    assert child.wait(timeout=10) == 1
    assert "bad.yaml" in child.stderr.read()


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_loki_warms_up_then_stores_and_answers_queries(start, tmp_path):
    """/ready 503 then 200; a JSON push is 204; query_range, labels and label values give back what was pushed."""
    port = start_loki(start, tmp_path, warmup="1")
    assert plain_http.get("127.0.0.1", port, "/ready")[0] == 503
    now = time.time_ns()
    push = {"streams": [{"stream": {"job": "docker", "host": "proxy"}, "values": [[str(now), "hello from proxy"]]},
                        {"stream": {"job": "docker", "host": "utilities"}, "values": [[str(now), "other line"]]}]}
    answer = requests.post(f"http://127.0.0.1:{port}/loki/api/v1/push", json=push, timeout=5)
    assert answer.status_code == 204
    found = requests.get(f"http://127.0.0.1:{port}/loki/api/v1/query_range",
                         params={"query": '{host="proxy"} |= "hello"'}, timeout=5).json()
    assert [s["values"][0][1] for s in found["data"]["result"]] == ["hello from proxy"]
    assert requests.get(f"http://127.0.0.1:{port}/loki/api/v1/label/host/values", timeout=5).json()["data"] == [
        "proxy", "utilities"]
    assert requests.get(f"http://127.0.0.1:{port}/loki/api/v1/query_range", params={"query": "rate(x[1m])"},
                        timeout=5).status_code == 400
    time.sleep(1.1)
    assert plain_http.get("127.0.0.1", port, "/ready")[0] == 200


def test_the_shipper_sends_docker_logs_to_loki(start, tmp_path):
    """A Docker json-file log under the config's __path__ glob reaches Loki with the config's labels."""
    loki = start_loki(start, tmp_path)
    logs = tmp_path / "containers" / "abc123"
    logs.mkdir(parents=True)
    line = {"log": "GET /ping 200\n", "stream": "stdout", "time": "2026-12-01T19:08:00.123456789Z"}
    (logs / "abc123-json.log").write_text(json.dumps(line) + "\n")
    port = free_port()
    config = {"server": {"http_listen_port": port}, "positions": {"filename": str(tmp_path / "positions.yaml")},
              "clients": [{"url": f"http://127.0.0.1:{loki}/loki/api/v1/push"}],
              "scrape_configs": [{"job_name": "docker", "pipeline_stages": [{"docker": {}}], "static_configs": [
                  {"targets": ["localhost"], "labels": {"job": "docker", "host": "proxy",
                                                         "__path__": str(tmp_path / "containers/*/*-json.log")}}]}]}
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config))
    start(SHIPPER, {}, f"-config.file={tmp_path / 'config.yml'}", port=port)
    deadline = time.monotonic() + 10
    result = []
    while time.monotonic() < deadline and not result:
        result = requests.get(f"http://127.0.0.1:{loki}/loki/api/v1/query_range",
                              params={"query": '{host="proxy", stream="stdout"}', "start": "0"}, timeout=5
                              ).json()["data"]["result"]
        time.sleep(0.2)
    assert result, "nothing reached Loki"
    assert result[0]["values"][0] == ["1796152080123456789", "GET /ping 200"]
    assert result[0]["stream"]["job"] == "docker"
    assert plain_http.get("127.0.0.1", port, "/ready")[0] == 200


KUMA = RECIPES / "uptime-kuma" / "files" / "server.py"


def test_uptime_kuma_stand_in_answers_like_its_express_server(start):
    """Nothing listens while it starts; then / 302 to /dashboard, /api/entry-page JSON, the SPA page 200."""
    port = free_port()
    child = start(KUMA, {"UPTIME_KUMA_PORT": str(port), "STANDIN_WARMUP_SECONDS": "0.5"})
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "listening before its start-up is over"
    wait_listening(port, child)
    status, headers, _ = plain_http.get("127.0.0.1", port, "/")
    assert (status, headers["Location"]) == (302, "/dashboard")
    status, _, body = plain_http.get("127.0.0.1", port, "/api/entry-page")
    assert status == 200 and json.loads(body) == {"type": "entryPage", "entryPage": "dashboard"}
    assert plain_http.get("127.0.0.1", port, "/dashboard")[0] == 200
    assert plain_http.get("127.0.0.1", port, "/metrics")[0] == 401
