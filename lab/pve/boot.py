"""The node's boot: POST /nodes/{node}/startall, as pve-guests.service runs it when PVE starts.

Follows pve-manager's startall (PVE/API2/Nodes.pm): the CTs with `onboot: 1` (every CT with
force=1), grouped by their `startup` order (none = after every ordered one), lower order first,
vmid order inside a group; a CT that already runs is skipped; after issuing a start the boot waits
the CT's `up` seconds; starts of one group run side by side up to max-workers, and a group ends
when all of its starts did.
"""

from __future__ import annotations

import re
import threading
import time

import requests

from .api_lxc import start_ct
from .routes import Call, route

# PVE sorts CTs without an order after every ordered one (LONG_MAX in get_start_stop_list).
LAST = 2**63 - 1
# how many starts of one order group the boot runs side by side (the call itself takes no such option)
MAX_WORKERS = 8
PART = re.compile(r"^(?:(?:order=)?(?P<order>\d+)|up=(?P<up>\d+)|down=(?P<down>\d+))$")


def parse_startup(text: str | None) -> dict[str, int]:
    """Parse PVE's `startup` option (`[[order=]N][,up=N][,down=N]`, any order) as pve_parse_startup_order does."""
    out: dict[str, int] = {}
    for part in str(text or "").split(","):
        if not part.strip():
            continue
        m = PART.match(part)
        if not m:
            raise ValueError(f"startup '{text}': expected [[order=]N][,up=N][,down=N]")
        out.update({k: int(v) for k, v in m.groupdict().items() if v is not None})
    return out


def start_list(app, force: bool = False, vms: set[int] | None = None) -> list[tuple[int, list[tuple[int, dict]]]]:
    """The CTs to start, grouped by order: [(order, [(vmid, startup), ...]), ...], lowest order first."""
    groups: dict[int, list[tuple[int, dict]]] = {}
    for vmid in app.vmids():
        if vms is not None and vmid not in vms:
            continue
        rec = app.store.load(vmid)
        if rec is None:
            continue
        conf = rec["config"]
        if not force and not int(conf.get("onboot") or 0):
            continue
        try:
            startup = parse_startup(conf.get("startup"))
        except ValueError:
            startup = {"invalid": 1}
        groups.setdefault(startup.get("order", LAST), []).append((vmid, startup))
    return [(order, sorted(groups[order])) for order in sorted(groups)]


def startall(app, task, force: bool = False, vms: set[int] | None = None, max_workers: int = 8) -> None:
    """Start the boot's CTs in startup order, logging each start and delay as PVE's task does."""
    for _order, members in start_list(app, force, vms):
        workers: list[threading.Thread] = []
        for vmid, startup in members:
            if app.running(vmid):
                continue
            if startup.get("invalid"):
                task.log(f"CT {vmid}: unparsable startup option, started without order or delay")
            task.log(f"Starting CT {vmid}")
            worker = threading.Thread(target=_start_one, args=(app, task, vmid), daemon=True)
            worker.start()
            workers.append(worker)
            if startup.get("up"):
                task.log(f"Waiting for {startup['up']} seconds (startup delay)")
                time.sleep(startup["up"])
            while sum(w.is_alive() for w in workers) >= max_workers:
                time.sleep(0.2)
        for worker in workers:
            worker.join()


def _start_one(app, task, vmid: int) -> None:
    """One CT's start, under its config lock like a vzstart task; a failure is logged, the boot goes on."""
    try:
        with app.store.lock(vmid):
            if not app.running(vmid):
                start_ct(app, vmid)
    except Exception as exc:  # noqa: BLE001 - PVE's startall reports a failed start and carries on
        task.log(f"Starting CT {vmid} failed: {str(exc).splitlines()[0] if str(exc) else exc!r}")


# PVE's schema says `user: all`: the handler checks VM.PowerMgmt, as pve-manager's startall does.
@route("POST /nodes/{node}/startall", perm=("/", ["VM.PowerMgmt"], False))
def startall_route(call: Call):
    """POST startall: a `startall` task that starts the onboot CTs (every CT with force) in startup order."""
    p = call.params
    vms = {int(v) for v in re.split(r"[,;\s]+", p["vms"]) if v} if p.get("vms") else None
    force = bool(p.get("force"))
    workers = MAX_WORKERS
    return call.app.run_task(call, "startall", "",
                             lambda task: startall(call.app, task, force, vms, workers), lock=False)


def call_startall(api_url: str, node: str, ca_file: str, token: str, timeout: float = 600) -> list[str]:
    """Ask the emulator to boot (POST startall), wait for the task, return its log lines."""
    session = requests.Session()
    session.headers["Authorization"] = f"PVEAPIToken={token}"
    # per request: a session's `verify` loses to REQUESTS_CA_BUNDLE from the environment
    resp = session.post(f"{api_url}/nodes/{node}/startall", timeout=30, verify=ca_file)
    resp.raise_for_status()
    upid = resp.json()["data"]
    deadline = time.monotonic() + timeout
    while True:
        status = session.get(f"{api_url}/nodes/{node}/tasks/{upid}/status", timeout=30, verify=ca_file).json()["data"]
        if status["status"] == "stopped":
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"startall did not finish within {timeout:.0f} s ({upid})")
        time.sleep(0.2)
    log = session.get(f"{api_url}/nodes/{node}/tasks/{upid}/log", params={"limit": 10000}, timeout=30,
                      verify=ca_file)
    lines = [row["t"] for row in log.json()["data"]]
    if status.get("exitstatus") != "OK":
        lines.append(f"startall ended: {status.get('exitstatus')}")
    return [line for line in lines if line != "TASK OK"]
