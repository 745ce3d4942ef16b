"""TLS on every route with sslyze: protocols, cipher suites, the certificate (chain, name, expiry); and the
security headers the proxy adds to every answer.

A route is served by the proxy host: its findings are the proxy's row of the table, one per route.
"""

from __future__ import annotations

import datetime as dt
import http.client
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from sslyze import (
    CertificateInfoExtraArgument,
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    ScanCommandsExtraArguments,
    Scanner,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanResultAsJson,
    ServerScanStatusEnum,
)

from plugins.security.findings import Finding, finding

ALLOWED = ("tls_1_2_cipher_suites", "tls_1_3_cipher_suites")
REFUSED = ("ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites", "tls_1_0_cipher_suites", "tls_1_1_cipher_suites")
PROTOCOL_NAMES = {"ssl_2_0": "SSL 2.0", "ssl_3_0": "SSL 3.0", "tls_1_0": "TLS 1.0", "tls_1_1": "TLS 1.1",
                  "tls_1_2": "TLS 1.2", "tls_1_3": "TLS 1.3"}
SUPPLIED_CA = "Supplied CA file"  # sslyze's name for the trust store of CertificateInfoExtraArgument
HSTS_MIN_AGE = 15_552_000  # 180 days: what scanners (Mozilla Observatory) take as a real HSTS policy
HEADER_TIMEOUT = 10


@dataclass(frozen=True)
class Route:
    """A route the proxy serves: its name (the service's), its host name, the proxy's address and port."""

    name: str
    fqdn: str
    address: str
    port: int = 443


def weak_suite(name: str) -> bool:
    """A TLS 1.2 suite that is not forward-secret AEAD (CBC, RC4, 3DES, NULL, EXPORT, anonymous, static RSA)."""
    forward_secret = name.startswith(("TLS_ECDHE_", "TLS_DHE_"))
    aead = "_GCM_" in name or "CHACHA20_POLY1305" in name
    return not (forward_secret and aead) or "_anon_" in name


def scan_routes(routes: list[Route], ca_file: str | None) -> dict[str, object]:
    """sslyze's result per route name (one Scanner, routes scanned concurrently)."""
    commands = {ScanCommand.CERTIFICATE_INFO, *(getattr(ScanCommand, name.upper()) for name in (*ALLOWED, *REFUSED))}
    extra = ScanCommandsExtraArguments(
        certificate_info=CertificateInfoExtraArgument(custom_ca_file=Path(ca_file))) if ca_file else None
    requests, names = [], {}
    for route in routes:
        location = ServerNetworkLocation(hostname=route.fqdn, port=route.port, ip_address=route.address)
        request = ServerScanRequest(server_location=location, scan_commands=commands,
                                    scan_commands_extra_arguments=extra or ScanCommandsExtraArguments())
        requests.append(request)
        names[request.uuid] = route.name
    scanner = Scanner(per_server_concurrent_connections_limit=4, concurrent_server_scans_limit=8)
    scanner.queue_scans(requests)
    return {names[result.uuid]: result for result in scanner.get_results()}


def as_json(result: object) -> str:
    """sslyze's own JSON of one server's result (the report's attachment)."""
    return ServerScanResultAsJson.model_validate(result).model_dump_json(indent=2)


def tls_problems(result: object, fqdn: str, days: int, now: dt.datetime | None = None) -> list[str]:
    """What is wrong with a route's TLS in sslyze's result: protocols, weak suites, chain, name, expiry."""
    if result.scan_status != ServerScanStatusEnum.COMPLETED:
        return [f"sslyze could not connect ({result.connectivity_error_trace or result.scan_status.name})"]
    scan, problems = result.scan_result, []
    for attribute in (*REFUSED, *ALLOWED):
        attempt = getattr(scan, attribute)
        protocol = PROTOCOL_NAMES[attribute.removesuffix("_cipher_suites")]
        if attempt.status != ScanCommandAttemptStatusEnum.COMPLETED:
            problems.append(f"{protocol}: sslyze's test did not complete ({attempt.error_reason})")
            continue
        accepted = [suite.cipher_suite.name for suite in attempt.result.accepted_cipher_suites]
        if attribute in REFUSED and accepted:
            problems.append(f"{protocol} accepted (expected TLS 1.2 and 1.3 only)")
        elif attribute in ALLOWED and not accepted:
            problems.append(f"{protocol} refused (expected TLS 1.2 and 1.3)")
        weak = [name for name in accepted if attribute == "tls_1_2_cipher_suites" and weak_suite(name)]
        if weak:
            problems.append(f"weak {protocol} cipher suites accepted: {', '.join(weak)}")
    problems += certificate_problems(scan.certificate_info, fqdn, days, now)
    return problems


def certificate_names(certificate: x509.Certificate) -> list[str]:
    """The DNS names a certificate is for (its subjectAltName; clients ignore the CN when there is one)."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return [a.value for a in certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    return extension.value.get_values_for_type(x509.DNSName)


def name_matches(pattern: str, fqdn: str) -> bool:
    """RFC 6125: an exact name, or `*.domain` for exactly one more label."""
    pattern, fqdn = pattern.lower().rstrip("."), fqdn.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = fqdn.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == fqdn


def certificate_problems(attempt: object, fqdn: str, days: int, now: dt.datetime | None = None) -> list[str]:
    """The certificate's problems: not verified by the inventory's CA, name not matching, expiring within days."""
    if attempt.status != ScanCommandAttemptStatusEnum.COMPLETED:
        return [f"certificate: sslyze's test did not complete ({attempt.error_reason})"]
    problems = []
    now = now or dt.datetime.now(dt.UTC)
    for deployment in attempt.result.certificate_deployments[:1]:
        leaf = deployment.received_certificate_chain[0]
        supplied = [p for p in deployment.path_validation_results if p.trust_store.name == SUPPLIED_CA]
        if supplied and not supplied[0].was_validation_successful:
            problems.append(f"certificate chain not verified by the inventory's CA ({supplied[0].validation_error})")
        elif not supplied and not any(p.was_validation_successful for p in deployment.path_validation_results):
            problems.append("certificate chain not verified by any trust store")
        names = certificate_names(leaf)
        if not any(name_matches(pattern, fqdn) for pattern in names):
            problems.append(f"certificate names {', '.join(names) or '(none)'} do not match {fqdn}")
        left = leaf.not_valid_after_utc - now
        if left < dt.timedelta(days=days):
            problems.append(f"certificate expires {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, within {days} days "
                            f"(inventory: security.certificate_days)")
    return problems


def judge_tls(host: str, route: Route, result: object | None, days: int) -> Finding:
    """tls: one route's protocols, cipher suites and certificate, from sslyze's result."""
    where = f"{host} https://{route.fqdn} ({route.address}:{route.port})"
    if result is None:
        return finding(host, "tls", ["sslyze gave no result"], "", subject=route.name, where=where)
    return finding(host, "tls", tls_problems(result, route.fqdn, days), "TLS 1.2/1.3 only, strong suites, certificate valid",
                   as_json(result), subject=route.name, where=where)


def response_headers(route: Route, ca_file: str | None) -> tuple[int, dict[str, str]]:
    """GET / on the route through the proxy (SNI and Host the route's): the status and the headers, lower-case."""
    context = ssl.create_default_context(cafile=ca_file)
    raw = socket.create_connection((route.address, route.port), timeout=HEADER_TIMEOUT)
    connection = http.client.HTTPSConnection(route.fqdn, route.port, timeout=HEADER_TIMEOUT, context=context)
    connection.sock = context.wrap_socket(raw, server_hostname=route.fqdn)
    try:
        connection.request("GET", "/", headers={"Host": route.fqdn})
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}
    finally:
        connection.close()


def header_problems(headers: dict[str, str]) -> list[str]:
    """The security headers missing or too weak: HSTS (180 days at least), nosniff, framing, referrer policy."""
    problems = []
    hsts = headers.get("strict-transport-security", "")
    age = next((part.split("=", 1)[1] for part in hsts.replace(" ", "").split(";") if part.startswith("max-age=")), "")
    if not age.isdigit() or int(age) < HSTS_MIN_AGE:
        problems.append(f"Strict-Transport-Security is {hsts!r}, expected max-age >= {HSTS_MIN_AGE}")
    if headers.get("x-content-type-options", "").lower() != "nosniff":
        problems.append("X-Content-Type-Options: nosniff missing")
    if headers.get("x-frame-options", "").upper() not in ("DENY", "SAMEORIGIN") and \
            "frame-ancestors" not in headers.get("content-security-policy", ""):
        problems.append("X-Frame-Options (or CSP frame-ancestors) missing")
    if not headers.get("referrer-policy"):
        problems.append("Referrer-Policy missing")
    return problems


def judge_headers(host: str, route: Route, ca_file: str | None) -> Finding:
    """headers: the proxy's answer on the route carries HSTS and the usual security headers."""
    where = f"{host} https://{route.fqdn} ({route.address}:{route.port})"
    try:
        status, headers = response_headers(route, ca_file)
    except (OSError, http.client.HTTPException) as exc:
        return finding(host, "headers", [f"GET / failed: {type(exc).__name__}: {exc}"], "", subject=route.name,
                       where=where)
    # Cookies are a session's secrets: the attachment names them, never their values.
    output = f"HTTP {status}\n" + "\n".join(f"{k}: {v if k != 'set-cookie' else '(not shown)'}"
                                             for k, v in sorted(headers.items()))
    return finding(host, "headers", header_problems(headers), "HSTS and the security headers present", output,
                   subject=route.name, where=where)
