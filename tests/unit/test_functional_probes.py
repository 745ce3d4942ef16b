"""The functional probes' runner: secrets from the environment only, retries while warming up, one-line verdicts."""

from __future__ import annotations

import pytest
from clocks import SleepClock

from plugins.health.functional import KINDS, WarmingUp
from plugins.health.functional import runner as runner_mod
from plugins.inventory.model import FunctionalCheck

pytestmark = pytest.mark.unit


def check(**overrides) -> FunctionalCheck:
    """A probe of kind vaultwarden_admin on a lab address, its secret in LAB_TEST_TOKEN."""
    fields = {"name": "vaultwarden-vaultwarden-admin", "kind": "vaultwarden_admin",
              "url": "http://198.18.0.201:8080/admin", "secrets": {"vaultwarden_admin_token": "LAB_TEST_TOKEN"},
              "deadline": 5}
    return FunctionalCheck(**{**fields, **overrides})


def test_a_secret_missing_from_the_environment_is_a_one_line_failure(monkeypatch):
    """No call is made; the message names the variable and where it comes from, never a value."""
    monkeypatch.delenv("LAB_TEST_TOKEN", raising=False)
    monkeypatch.setitem(KINDS, "vaultwarden_admin", lambda *a: pytest.fail("called without its secret"))
    answer = runner_mod.wait_for_probe(check())
    assert not answer.ok and "LAB_TEST_TOKEN is unset" in answer.message and "\n" not in answer.message


def test_a_vault_secret_is_not_guessed(monkeypatch):
    """A secret from Ansible Vault ('' env) is reported, not looked for elsewhere."""
    answer = runner_mod.wait_for_probe(check(secrets={"vaultwarden_admin_token": ""}))
    assert not answer.ok and "Ansible Vault" in answer.message


def test_the_probe_is_retried_while_warming_up_then_judged(monkeypatch):
    """WarmingUp twice, then a verdict: three attempts, the kind's message, the secret passed by name."""
    monkeypatch.setenv("LAB_TEST_TOKEN", "the-value")
    calls = []

    def probe(session, url, secrets):
        calls.append((url, secrets))
        if len(calls) < 3:
            raise WarmingUp("503")
        return True, "works"

    monkeypatch.setitem(KINDS, "vaultwarden_admin", probe)
    clock = SleepClock()
    answer = runner_mod.wait_for_probe(check(), clock=clock, sleep=clock.sleep)
    assert answer.ok and answer.attempts == 3 and answer.message.endswith(": works")
    assert calls[0] == ("http://198.18.0.201:8080/admin", {"vaultwarden_admin_token": "the-value"})


def test_a_probe_that_never_answers_fails_at_its_deadline(monkeypatch):
    """Warming up past the deadline: a failure saying how long and why, without the secret."""
    monkeypatch.setenv("LAB_TEST_TOKEN", "the-value")

    def probe(session, url, secrets):
        raise WarmingUp("GET answered 503 (warming up)")

    monkeypatch.setitem(KINDS, "vaultwarden_admin", probe)
    clock = SleepClock()
    answer = runner_mod.wait_for_probe(check(deadline=2), clock=clock, sleep=clock.sleep)
    assert not answer.ok and "within 2 s" in answer.message and "the-value" not in answer.message


def test_through_the_proxy_the_probe_calls_its_address_with_the_route_name():
    """connect_to: the URL's host becomes the proxy's address, the route's name goes in the Host header."""
    session, url = runner_mod.probe_session(check(url="https://vault.lab.home.arpa/admin", connect_to="198.18.0.200",
                                                  ca_file="/var/lib/homelab-lab/pve/ca.pem"))
    assert url == "https://198.18.0.200/admin"
    assert session.headers["Host"] == "vault.lab.home.arpa" and session.verify == "/var/lib/homelab-lab/pve/ca.pem"


@pytest.fixture
def status_server():
    """A local HTTP server answering /api/status/ as NetBox does, to the token `good-token` only."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.headers.get("Authorization") != "Token good-token":
                code, body = 403, {"detail": "Invalid v1 token"}
            else:
                code, body = 200, {"netbox-version": "4.7.3", "django-version": "6.1.2", "rq-workers-running": 0}
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/status/"
    server.shutdown()
    server.server_close()


def test_the_netbox_probe_reads_the_version_with_the_token_and_names_a_refusal(status_server):
    """200 with the token: NetBox's version in the message; another token: a failure naming the code, not it."""
    import requests

    with requests.Session() as session:
        ok, message = KINDS["netbox_status"](session, status_server, {"netbox_api_token": "good-token"})
        assert ok and "NetBox 4.7.3" in message
        ok, message = KINDS["netbox_status"](session, status_server, {"netbox_api_token": "bad-token"})
    assert not ok and "403" in message and "bad-token" not in message
