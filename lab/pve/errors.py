"""PVE-style API errors: the HTTP reason phrase is the message."""

from __future__ import annotations


class ApiError(Exception):
    """An error answered as PVE does: status, reason = message, optional per-parameter errors."""

    def __init__(self, status: int, message: str, errors: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


class TaskFailure(Exception):
    """An error raised inside a task worker; its text becomes the task's exitstatus."""


def param_error(errors: dict[str, str]) -> ApiError:
    """Return PVE's 400 `Parameter verification failed.` carrying the per-parameter errors."""
    return ApiError(400, "Parameter verification failed.", errors)


def fail(message: str) -> ApiError:
    """Return a 500 whose reason phrase is the message (PVE's `die "...\\n"`)."""
    return ApiError(500, message)


def not_implemented(method: str, path: str) -> ApiError:
    """Return PVE's 501 for a path/method no handler serves."""
    return ApiError(501, f"Method '{method} {path}' not implemented")


def unauthorized(reason: str = "authentication failure") -> ApiError:
    """Return a 401 (PVE sends it with an empty body)."""
    return ApiError(401, reason)


def forbidden(path: str, privs: str) -> ApiError:
    """Return PVE's 403 `Permission check failed (/vms/250, VM.Snapshot)`."""
    return ApiError(403, f"Permission check failed ({path}, {privs})")


def forbidden_text(message: str) -> ApiError:
    """Return a 403 with PVE's own text (raise_perm_exc with a message)."""
    return ApiError(403, f"Permission check failed ({message})")


def unknown_node(node: str) -> ApiError:
    """Return the 500 PVE answers when proxying to a node name that does not resolve."""
    return fail(
        f"hostname lookup '{node}' failed - failed to get address info for: {node}: "
        "Name or service not known"
    )


def missing_config(node: str, vmid: int) -> str:
    """Return the text of PVE's error for a CT without a config file."""
    return f"Configuration file 'nodes/{node}/lxc/{vmid}.conf' does not exist"


def no_quorum() -> ApiError:
    """Return pve-cluster's check_cfs_quorum error: a write without a majority of nodes online."""
    return fail("cluster not ready - no quorum?")


def node_unreachable() -> ApiError:
    """Return what pveproxy answers when the node a call is proxied to is down: AnyEvent::HTTP's 595 with the
    connection's error as the reason, and no body."""
    return ApiError(595, "No route to host")
