"""The checks the host's SSH master answers by itself: it opened (ssh_reachable), and what sshd offers.

No remote command runs for them: the master's own log has the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugins.health.results import FAIL, PASS, CheckResult, result, where

if TYPE_CHECKING:
    from plugins.inventory import Host
    from plugins.ssh.pool import SshPool

PASSWORD_METHODS = ("password", "keyboard-interactive")


def ssh_reachable(host: Host, pool: SshPool) -> CheckResult:
    """SSH to the host as the deploy user with the deploy key works (its master is open)."""
    state = pool.open(host.hostname)
    target = state.target
    if state.is_open:
        return result(host, "ssh_reachable", PASS, f"ssh {target.user}@{host.ip} with {target.identity_file}: ok")
    if state.auth_refused:
        hint = "the runner's key is not authorized for this user (incident #9; inventory: runner.deploy_key)"
    elif "Host key verification failed" in (state.error or ""):
        hint = (f"its host key differs from the one pinned in {pool.known_hosts}; if the container was "
                f"re-created, forget the old key: ssh-keygen -R {host.ip} -f {pool.known_hosts}")
    else:
        hint = "is the host up and sshd listening?"
    return result(host, "ssh_reachable", FAIL,
                  f"{where(host)}: ssh as {target.user} with {target.identity_file} failed: {state.error}; {hint}")


def sshd_refuses_passwords(host: Host, pool: SshPool) -> CheckResult:
    """sshd offers no password authentication to the deploy user (methods as the server announces them)."""
    methods = pool.auth_methods(host.hostname)
    if methods is None:
        return result(host, "sshd_refuses_passwords", FAIL,
                      f"{where(host)}: sshd did not announce its authentication methods (ssh: "
                      f"{pool.open(host.hostname).error or 'no answer'})")
    offered = [m for m in methods if m in PASSWORD_METHODS]
    if offered:
        return result(host, "sshd_refuses_passwords", FAIL,
                      f"{where(host)}: sshd offers {'/'.join(offered)} authentication (methods: {','.join(methods)}); "
                      "expected publickey only (sshd_config: PasswordAuthentication no, KbdInteractiveAuthentication no)")
    return result(host, "sshd_refuses_passwords", PASS, f"{where(host)}: sshd offers {','.join(methods)} only")
