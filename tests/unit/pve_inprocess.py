"""proxmoxer's shape over the in-process emulator: a ProxmoxClient that calls lab/pve without HTTP (unit tests)."""

from __future__ import annotations

from proxmoxer.core import ResourceException

from lab.pve.app import Emulator
from lab.pve.auth import FULL_TOKEN_ID, load_tokens
from plugins.proxmox.client import ProxmoxClient

BASE = "/api2/json"


class EmulatorCalls:
    """Calls the emulator in-process as PVE's wire would, with a token's Authorization header (the full one by default)."""

    def __init__(self, app: Emulator, token_id: str = FULL_TOKEN_ID):
        self.app = app
        self.auth = f"PVEAPIToken={token_id}={load_tokens(app.state_dir)[token_id]}"

    def __call__(self, method, path, **params):
        """The reply to one call (any status)."""
        return self.app.handle(method, BASE + path, {k: str(v) for k, v in params.items()}, self.auth)

    def ok(self, method, path, **params):
        """The data of a call that must answer 200."""
        reply = self(method, path, **params)
        assert reply.status == 200, (reply.status, reply.reason, reply.body)
        return reply.body["data"]


class InProcessApi:
    """`api.nodes(node).lxc(vmid).config.get()` and the like, answered by Emulator.handle as PVE's wire would."""

    def __init__(self, app: Emulator, path: tuple = (), token_id: str = FULL_TOKEN_ID):
        self._app, self._path, self._token_id = app, path, token_id

    def __getattr__(self, name: str) -> InProcessApi:
        return InProcessApi(self._app, (*self._path, name), self._token_id)

    def __call__(self, *parts) -> InProcessApi:
        return InProcessApi(self._app, (*self._path, *(str(p) for p in parts)), self._token_id)

    def _send(self, method: str, params: dict):
        auth = f"PVEAPIToken={self._token_id}={load_tokens(self._app.state_dir)[self._token_id]}"
        path = BASE + "/" + "/".join(p.strip("/") for p in self._path)
        reply = self._app.handle(method, path, {k: str(v) for k, v in params.items()}, auth)
        if reply.status != 200:
            body = reply.body or {}
            raise ResourceException(reply.status, reply.reason, body.get("message", reply.reason),
                                    errors=body.get("errors"))
        return (reply.body or {}).get("data")

    def get(self, **params):
        """GET with query parameters."""
        return self._send("GET", params)

    def post(self, **params):
        """POST with form parameters."""
        return self._send("POST", params)

    def put(self, **params):
        """PUT with form parameters."""
        return self._send("PUT", params)

    def delete(self, **params):
        """DELETE with query parameters."""
        return self._send("DELETE", params)


def in_process_client(app: Emulator, token_id: str = FULL_TOKEN_ID) -> ProxmoxClient:
    """A ProxmoxClient whose every call goes to the in-process emulator (with the full token unless told)."""
    return ProxmoxClient(lambda: InProcessApi(app, token_id=token_id), url="https://127.0.0.1:8006", token_id=token_id,
                         secret_env="PVE_TOKEN_SECRET",  # pragma: allowlist secret
                         poll_interval=0.01, task_timeout=20)
