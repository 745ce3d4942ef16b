"""TLS on every route the proxy serves: TLS 1.2/1.3, strong suites, a valid certificate, the security headers."""

import pytest


@pytest.mark.control("tls")
def test_route_serves_strong_tls_with_a_valid_certificate(security_route, finding):
    """sslyze: TLS 1.2 and 1.3 only, no weak suite, chain verified by the inventory's CA, name matching, not expiring."""
    finding.assert_passed()


@pytest.mark.control("headers")
def test_route_answers_with_security_headers(security_route, finding):
    """HSTS, X-Content-Type-Options, X-Frame-Options and Referrer-Policy, set by the proxy's middleware."""
    finding.assert_passed()
