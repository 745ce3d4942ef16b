"""The audit of a homelab: every host's SSH, configuration and lynis run, every route's TLS, concurrently.

One SSH master per host (plugins/ssh/pool.py) as the deploy user; hosts in threads (plugins/shared/fanout.py),
sslyze's own scanner for the routes beside them. Gives {(host, control, subject): Finding}.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from plugins.health.results import where
from plugins.security import host_facts, lynis, openscap, ssh_audit, tls
from plugins.security.findings import CONTROLS, Finding, finding
from plugins.shared.fanout import fan_out
from plugins.ssh.pool import SshPool, SshTarget

if TYPE_CHECKING:
    from plugins.inventory import Host, Inventory

HOST_WORKERS = 16
FACTS_TIMEOUT = 60
LYNIS_TIMEOUT = 600  # lynis reads the whole filesystem: minutes on a loaded machine
OSCAP_TIMEOUT = 600
SCANNERS = ("lynis", "openscap")  # the long runs on the host, started first and side by side
Key = tuple[str, str, str | None]


def routes_of(inventory: Inventory) -> list[tls.Route]:
    """Every route the proxy serves: https://<route.host>.<domain> on the proxy host's address."""
    proxy, stack = inventory.proxy_host, inventory.stack
    if proxy is None or stack is None:
        return []
    return [tls.Route(decl.name, f"{decl.route.host}.{stack.domain}", proxy.ip)
            for host in inventory.hosts for decl in host.declarations if decl.route is not None]


def socket_declared(host: Host) -> list[str]:
    """The containers of the host whose declaration mounts the Docker socket."""
    return [decl.container for decl in host.declarations
            if any(volume.source in host_facts.DOCKER_SOCKETS for volume in decl.volumes)]


class SecurityAudit:
    """The audit of the selected hosts: run() once, then each test reads its finding."""

    def __init__(self, inventory: Inventory, hosts: Sequence[Host], known_hosts: str | Path,
                 openscap_accepted: dict[str, str] | None = None):
        """Prepare a pool of SSH masters to the hosts as the deploy user (nothing is opened yet); openscap_accepted:
        the OpenSCAP rules accepted to fail, with their reasons (plugins/security/openscap-accepted.yml)."""
        self.inventory, self.hosts = inventory, list(hosts)
        self.openscap_accepted = dict(openscap_accepted or {})
        runner = inventory.runner
        self.pool = SshPool([SshTarget(h.hostname, h.ip, runner.deploy_user, runner.deploy_key) for h in hosts],
                            known_hosts=known_hosts)
        self.findings: dict[Key, Finding] = {}
        self.controls: set[str] = set(CONTROLS)
        self._background: Future | None = None

    def start(self, controls: set[str] | None = None) -> None:
        """Begin run(controls) in a thread of its own and return at once: the audit's tools work while the
        session does something else (the exposure probes); wait() gives the findings."""
        if self._background is None:
            side = ThreadPoolExecutor(max_workers=1, thread_name_prefix="security-audit")
            self._background = side.submit(self.run, controls)
            side.shutdown(wait=False)  # the one task still runs; nothing more is submitted

    def wait(self) -> dict[Key, Finding]:
        """The findings of the audit start() began (run here and now if none was started); its error if it raised."""
        if self._background is None:
            return self.run(self.controls)
        return self._background.result()

    def run(self, controls: set[str] | None = None) -> dict[Key, Finding]:
        """Audit every host and route for these controls (default all): hosts over SSH in threads, routes with
        sslyze beside them."""
        self.controls = set(controls or CONTROLS)
        wanted_routes = self.controls & {"tls", "headers"} and self.inventory.proxy_host in self.hosts
        routes = routes_of(self.inventory) if wanted_routes else []
        # The trees are built once here, not by every host's thread at once; a tree that cannot be built (the tool
        # missing on this machine) fails again in each host's thread, as that host's finding.
        for control, build in (("lynis", lynis.lynis_tree), ("openscap", openscap.oscap_tree)):
            if control in self.controls:
                with contextlib.suppress(OSError, subprocess.CalledProcessError):
                    build()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sslyze") as side:
            tls_future = side.submit(self._routes, routes)
            outcomes = fan_out(self._host, self.hosts, workers=HOST_WORKERS, name="security", keep_errors=True)
            for host, outcome in zip(self.hosts, outcomes, strict=True):
                if isinstance(outcome, Exception):  # one host's surprise fails its own controls, not the others'
                    why = [f"the audit crashed: {type(outcome).__name__}: {outcome}"]
                    outcome = [finding(host.hostname, c, why, "", where=where(host))
                               for c in CONTROLS if c in self.controls and c not in ("tls", "headers")]
                self._keep(outcome)
            self._keep(tls_future.result())
        return self.findings

    def _keep(self, findings: list[Finding]) -> None:
        for item in findings:
            self.findings[(item.host, item.control, item.subject)] = item

    def close(self) -> None:
        """Close every SSH master."""
        self.pool.close_all()

    def _host(self, host: Host) -> list[Finding]:
        """Every SSH-side control of one host: ssh-audit, sshd's settings, keys, upgrades, Docker, lynis, OpenSCAP."""
        name, place = host.hostname, where(host)
        state = self.pool.open(name)
        if not state.is_open:
            why = [f"ssh as {state.target.user} failed: {state.error}"]
            findings = [self._ssh_audit(host)] if "ssh-audit" in self.controls else []
            return findings + [finding(name, c, why, "", where=place) for c in self._over_ssh()]
        scanners = {"lynis": self._lynis, "openscap": self._openscap}
        wanted = [c for c in SCANNERS if c in self.controls]
        # lynis and OpenSCAP are the long runs: they start first, side by side, and the rest is read meanwhile.
        with ThreadPoolExecutor(max_workers=len(wanted) or 1, thread_name_prefix=f"scan-{name}") as scans:
            scanned = {control: scans.submit(scanners[control], host) for control in wanted}
            findings = [self._ssh_audit(host)] if "ssh-audit" in self.controls else []
            return findings + self._facts(host, scanned)

    def _facts(self, host: Host, scanned: dict[str, Future]) -> list[Finding]:
        """The controls judged from the facts command's sections, and the scanners' findings (in table order)."""
        name, place = host.hostname, where(host)
        facts_run = self.pool.run(name, host_facts.FACTS_COMMAND, timeout=FACTS_TIMEOUT)
        facts = host_facts.sections(facts_run.stdout)
        settings = host_facts.sshd_settings(facts.get("sshd", ""))
        sshd_output = facts.get("sshd", "")
        judged = {
            "ssh-auth": lambda: host_facts.judge_auth(name, settings, self.pool.auth_methods(name), place, sshd_output),
            "root-login": lambda: host_facts.judge_root_login(name, settings, place, sshd_output),
            "keys": lambda: host_facts.judge_keys(name, facts.get("keys", ""), [self.inventory.ssh_public_keys()],
                                                  place),
            "upgrades": lambda: host_facts.judge_upgrades(name, facts.get("upgrades", ""), place),
            "docker": lambda: host_facts.judge_docker(name, facts, socket_declared(host), place),
        }
        return [scanned[control].result() if control in scanned else judged[control]() for control in self._over_ssh()]

    def _over_ssh(self) -> list[str]:
        """The wanted controls answered over the host's SSH master, in table order."""
        return [c for c in CONTROLS if c in self.controls and c not in ("ssh-audit", "tls", "headers")]

    def _ssh_audit(self, host: Host) -> Finding:
        """ssh-audit from this machine on the host's sshd: no algorithm marked failing."""
        name, place = host.hostname, where(host)
        report, audit_output = ssh_audit.run_audit(host.ip)
        if report is None:
            audited = finding(name, "ssh-audit", [f"ssh-audit gave no report: {audit_output.strip()[-300:]}"], "",
                              audit_output, where=place)
        else:
            audited = finding(name, "ssh-audit", [f"failing {a}" for a in ssh_audit.failing_algorithms(report)],
                              "no algorithm marked failing", audit_output, where=place)
        return audited

    def _remote(self, host: Host, control: str, command: str, tree: bytes, timeout: int) -> str | Finding:
        """Run a tool's command on the host with its tree on stdin; its output, or a failed finding on timeout."""
        try:
            done = subprocess.run(self.pool.ssh_args(host.hostname, "-T") + [command],
                                  input=tree, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return finding(host.hostname, control, [f"{control} did not end within {timeout} s"], "", where=where(host))
        return (done.stdout + done.stderr).decode(errors="replace")

    def _lynis(self, host: Host) -> Finding:
        """Run lynis on the host from this machine's tree; judge its index against the inventory's floor."""
        output = self._remote(host, "lynis", lynis.remote_command(), lynis.lynis_tree(), LYNIS_TIMEOUT)
        if isinstance(output, Finding):
            return output
        return lynis.judge_lynis(host.hostname, output, self.inventory.security.lynis_floor, where(host))

    def _openscap(self, host: Host) -> Finding:
        """Run OpenSCAP's ANSSI profile on the host from this machine's tree; judge it against the accepted rules."""
        output = self._remote(host, "openscap", openscap.remote_command(), openscap.oscap_tree(), OSCAP_TIMEOUT)
        if isinstance(output, Finding):
            return output
        return openscap.judge_openscap(host.hostname, output, self.openscap_accepted, where(host))

    def _routes(self, routes: list[tls.Route]) -> list[Finding]:
        """The tls and headers findings of every route (on the proxy's row)."""
        if not routes:
            return []
        proxy = self.inventory.proxy_host.hostname
        ca_file = self.inventory.stack.tls.ca_file
        results = tls.scan_routes(routes, ca_file)
        days = self.inventory.security.certificate_days
        return [item for route in routes for item in (
            tls.judge_tls(proxy, route, results.get(route.name), days), tls.judge_headers(proxy, route, ca_file))]


