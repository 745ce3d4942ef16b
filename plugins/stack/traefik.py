"""Traefik's configuration, generated from the inventory and the catalog: never written by hand.

Static: the entrypoints are the traefik declaration's named ports (web → websecure redirect, websecure with TLS
and the security headers on every answer, traefik for /ping and Prometheus metrics), the file provider watching
the dynamic directory. Dynamic: one router per routed service by host name, to that service's host and published
port; the certificate of stack.tls; TLS 1.2 and 1.3 only with forward-secret AEAD suites; the headers middleware.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugins.inventory.stack_needs import PROXY_CONFIG_TARGET as CONFIG_TARGET

if TYPE_CHECKING:
    from plugins.inventory.declaration import Declaration
    from plugins.inventory.model import Inventory

DYNAMIC_DIR = f"{CONFIG_TARGET}/dynamic"
TLS_DIR = f"{CONFIG_TARGET}/tls"
# Declared once here and put on the websecure entrypoint: every route gets them, none sets them by hand.
HEADERS_MIDDLEWARE = "security-headers"
SECURITY_HEADERS = {
    "stsSeconds": 31_536_000,  # a year: HSTS below 180 days is not taken as a policy by scanners
    "stsIncludeSubdomains": True,
    "contentTypeNosniff": True,
    # SAMEORIGIN, not DENY: Grafana and Zabbix frame their own pages
    "customFrameOptionsValue": "SAMEORIGIN",
    "referrerPolicy": "strict-origin-when-cross-origin",
}
# Go's TLS 1.2 defaults still accept CBC suites with SHA-1: only ECDHE with GCM or ChaCha20 (TLS 1.3's are fixed).
TLS_OPTIONS = {
    "minVersion": "VersionTLS12",
    "cipherSuites": [
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ],
}
CERT_FILE = f"{TLS_DIR}/cert.pem"
KEY_FILE = f"{TLS_DIR}/key.pem"


def config_dir(decl: Declaration) -> str:
    """The proxy host's directory mounted as Traefik's configuration."""
    return next(v.source for v in decl.volumes if v.target == CONFIG_TARGET and not v.named)


def static_config(decl: Declaration) -> dict:
    """traefik.yml: entrypoints from the declaration's named ports, file provider, ping, metrics."""

    def address(name: str) -> str:
        port = decl.port_named(name)
        return f":{port.container}"

    return {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "log": {"level": "INFO"},
        "entryPoints": {
            "web": {"address": address("web"), "http": {"redirections": {"entryPoint": {
                "to": "websecure", "scheme": "https", "permanent": True}}}},
            "websecure": {"address": address("websecure"), "http": {
                "tls": {}, "middlewares": [f"{HEADERS_MIDDLEWARE}@file"]}},
            "traefik": {"address": address("traefik")},
        },
        "ping": {"entryPoint": "traefik"},
        "metrics": {"prometheus": {"entryPoint": "traefik"}},
        "providers": {"file": {"directory": DYNAMIC_DIR, "watch": True}},
    }


def dynamic_config(inventory: Inventory) -> dict:
    """routes.yml: one router and one service per routed declaration, and the TLS certificate."""
    routers: dict[str, dict] = {}
    services: dict[str, dict] = {}
    domain = inventory.stack.domain if inventory.stack else ""
    for host in inventory.hosts:
        for decl in host.declarations:
            if decl.route is None:
                continue
            routers[decl.name] = {"rule": f"Host(`{decl.route.host}.{domain}`)", "entryPoints": ["websecure"],
                                  "service": decl.name, "tls": {}}
            services[decl.name] = {"loadBalancer": {"servers": [
                {"url": f"http://{host.ip}:{decl.published(decl.route.port)}"}]}}
    config: dict = {"tls": {"certificates": [{"certFile": CERT_FILE, "keyFile": KEY_FILE}],
                            "stores": {"default": {"defaultCertificate": {"certFile": CERT_FILE,
                                                                          "keyFile": KEY_FILE}}},
                            "options": {"default": TLS_OPTIONS}},
                    "http": {"middlewares": {HEADERS_MIDDLEWARE: {"headers": SECURITY_HEADERS}}}}
    if routers:
        config["http"].update(routers=routers, services=services)
    return config
