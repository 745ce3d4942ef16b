"""Create or destroy one LXC container on the (emulated) Proxmox VE API for envs/lab.

Called by the local-exec provisioners of envs/lab/main.tf: `python3 pve_lxc.py create|destroy`,
the container's spec as JSON in env PVE_LXC_SPEC (the terraform_data's input). Connection from
env: PVE_API_URL (default https://127.0.0.1:8006/api2/json), PVE_TOKEN_ID, PVE_TOKEN_SECRET,
PVE_CA_FILE (the CA that signed the API's certificate; system CAs when unset).
Standalone on purpose: requests only, no import of the project's lab/ or plugins/.
Exit 0 on success; otherwise exit 1 with ONE line on stderr naming what failed.
"""

from __future__ import annotations

import json
import os
import sys
import time

import requests

DEFAULT_API_URL = "https://127.0.0.1:8006/api2/json"
HTTP_TIMEOUT = 30
TASK_TIMEOUT = float(os.environ.get("PVE_TASK_TIMEOUT", "300"))


class PveError(Exception):
    """A failed call or task, worded for the one stderr line."""


class Api:
    """Minimal PVE API client: token auth, CA-verified TLS, PVE's error texts."""

    def __init__(self) -> None:
        token_id = os.environ.get("PVE_TOKEN_ID")
        secret = os.environ.get("PVE_TOKEN_SECRET")
        if not token_id or not secret:
            raise PveError("PVE_TOKEN_ID and PVE_TOKEN_SECRET must be set in Terraform's environment")
        self.url = os.environ.get("PVE_API_URL", DEFAULT_API_URL).rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"PVEAPIToken={token_id}={secret}"
        # Passed per request: a session-level verify loses to REQUESTS_CA_BUNDLE in the environment.
        self.verify = os.environ.get("PVE_CA_FILE") or True

    def call(self, method: str, path: str, **params):
        """Send one request and give `data`, or raise PveError with PVE's message."""
        kwargs = {"params": params} if method in ("GET", "DELETE") else {"data": params}
        try:
            response = self.session.request(method, self.url + path, timeout=HTTP_TIMEOUT, verify=self.verify,
                                            **kwargs)
        except requests.RequestException as exc:
            raise PveError(f"{method} {self.url}{path}: {exc}") from None
        if response.status_code != 200:
            raise PveError(f"{method} {path}: HTTP {response.status_code} {_message(response)}")
        return response.json().get("data")

    def wait(self, node: str, upid: str, what: str) -> None:
        """Wait for a task to stop; raise unless its exitstatus is OK."""
        deadline = time.monotonic() + TASK_TIMEOUT
        delay = 0.1
        while time.monotonic() < deadline:
            status = self.call("GET", f"/nodes/{node}/tasks/{upid}/status")
            if status.get("status") == "stopped":
                if status.get("exitstatus") != "OK":
                    raise PveError(f"{what}: task {upid} ended with: {status.get('exitstatus')}")
                return
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        raise PveError(f"{what}: task {upid} still running after {TASK_TIMEOUT:.0f} s")


def _message(response: requests.Response) -> str:
    """PVE's error text: the reason phrase, plus per-parameter errors when present."""
    text = response.reason or ""
    try:
        body = response.json()
    except ValueError:
        return text
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        text += " " + "; ".join(f"{k}: {v}" for k, v in errors.items())
    return text.strip()


def current(api: Api, node: str, vmid: int) -> dict | None:
    """The container's status object, or None when it does not exist."""
    try:
        return api.call("GET", f"/nodes/{node}/lxc/{vmid}/status/current")
    except PveError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def create(api: Api, spec: dict) -> str:
    """Create and start the container, or adopt an existing one with the same hostname."""
    node, vmid, hostname = spec["node"], spec["vmid"], spec["hostname"]
    found = current(api, node, vmid)
    if found is not None:
        if found.get("name") != hostname:
            raise PveError(f"CT {vmid} already exists on node '{node}' as '{found.get('name')}', expected '{hostname}'")
        return f"adopted existing CT {vmid} ({hostname}) on node '{node}'"
    net0 = f"name=eth0,bridge={spec['bridge']},ip={spec['ip']}/{spec['prefix_length']},gw={spec['gateway']}"
    upid = api.call(
        "POST",
        f"/nodes/{node}/lxc",
        vmid=vmid,
        ostemplate=spec["ostemplate"],
        hostname=hostname,
        net0=net0,
        memory=spec["memory"],
        cores=spec["cores"],
        tags=";".join(sorted(spec.get("tags") or [])),
        start=1,
        # the inventory's storage (an HA host's is shared, so another node can start it); none: PVE's `local`
        **({"rootfs": f"{spec['storage']}:8"} if spec.get("storage") else {}),
        # as terraform/modules/lxc_container sets for the homelab: the node's boot starts it again
        onboot=1,
        **{"ssh-public-keys": spec["ssh_public_keys"]},
    )
    api.wait(node, upid, f"create CT {vmid} ({hostname})")
    return f"created CT {vmid} ({hostname}) on node '{node}'"


def destroy(api: Api, spec: dict) -> str:
    """Stop then delete the container; absent is success, another hostname is refused."""
    node, vmid, hostname = spec["node"], spec["vmid"], spec["hostname"]
    found = current(api, node, vmid)
    if found is None:
        return f"CT {vmid} ({hostname}) already absent on node '{node}'"
    if found.get("name") != hostname:
        raise PveError(f"refusing to destroy CT {vmid}: it is '{found.get('name')}', expected '{hostname}'")
    if found.get("status") == "running":
        upid = api.call("POST", f"/nodes/{node}/lxc/{vmid}/status/stop")
        api.wait(node, upid, f"stop CT {vmid} ({hostname})")
    upid = api.call("DELETE", f"/nodes/{node}/lxc/{vmid}", purge=1)
    api.wait(node, upid, f"destroy CT {vmid} ({hostname})")
    return f"destroyed CT {vmid} ({hostname}) on node '{node}'"


def main(argv: list[str]) -> int:
    """Run `create` or `destroy` for the container in PVE_LXC_SPEC; return the exit status."""
    actions = {"create": create, "destroy": destroy}
    if len(argv) != 1 or argv[0] not in actions:
        print("usage: pve_lxc.py create|destroy (spec JSON in env PVE_LXC_SPEC)", file=sys.stderr)
        return 2
    try:
        spec = json.loads(os.environ["PVE_LXC_SPEC"])
        print(actions[argv[0]](Api(), spec))
    except KeyError as exc:
        print(f"pve_lxc {argv[0]}: missing {exc.args[0]} (PVE_LXC_SPEC or environment)", file=sys.stderr)
        return 1
    except (PveError, ValueError) as exc:
        print(f"pve_lxc {argv[0]}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
