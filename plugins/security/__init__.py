"""The security audit of a deployed homelab: SSH (ssh-audit, sshd's effective settings, authorized keys), TLS on every
route (sslyze, security headers), each host's hardening (lynis, unattended upgrades, Docker), and the firewall as
seen from the LAN, the proxy and Prometheus (exposure). Read-only.

suites/security asserts its findings, one test per (host, control); nothing here changes a host.
"""
