"""`python -m lab.pve serve [--node homelab] [--port 8006]`: the emulator in the foreground."""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import sys
import threading
from pathlib import Path

from .app import Emulator
from .ca import ensure_ca
from .crm import FENCE_DELAY, ROUND
from .firewall import TABLE, TABLE_NAME, UPDATE_TIME, nft_remove, table_for
from .server import PveServer

DEFAULT_LAB_DIR = "/var/lib/homelab-lab"


def load_driver(spec: str):
    """Import a driver given as `module:Class` and instantiate it."""
    module, _, cls = spec.partition(":")
    mod = __import__(module, fromlist=[cls])
    return getattr(mod, cls)()


def lab_state_dir() -> Path:
    """The lab's own state directory: $LAB_DIR/pve (LAB_DIR unset or empty: the default), as `lab up` passes it."""
    return Path(os.environ.get("LAB_DIR") or DEFAULT_LAB_DIR) / "pve"


def hold_state_dir(state_dir: Path) -> int | None:
    """Lock the state directory for this process's life (its fd, kept open); None when another emulator holds it.

    Two emulators on one state directory would both run its HA manager and load its firewall table over each
    other's."""
    fd = os.open(state_dir / "serve.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def holder(state_dir: Path) -> str:
    """Who holds the state directory's lock, as its lock file says (`pid N`), for a message."""
    try:
        pid = (state_dir / "serve.lock").read_text().strip()
    except OSError:
        pid = ""
    return f"pid {pid}" if pid.isdigit() else "another process"


def table_name(value: str) -> str:
    """An nftables table name (a letter, then letters, digits or underscores), for argparse."""
    if not TABLE_NAME.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is no nftables table name (expected a letter, then letters, "
                                         "digits or underscores, at most 64)")
    return value


def seconds(value: str) -> float:
    """A positive number of seconds, for argparse."""
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of seconds")
    return number


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve until SIGTERM/SIGINT."""
    ap = argparse.ArgumentParser(prog="python -m lab.pve")
    sub = ap.add_subparsers(dest="cmd", required=True)
    serve = sub.add_parser("serve", help="serve the PVE API over HTTPS in the foreground")
    serve.add_argument("--node", default="homelab")
    serve.add_argument("--nodes", type=int, default=None,
                       help="emulated cluster nodes (default: the state directory's cluster, 1 when it has none)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8006)
    serve.add_argument("--state-dir", default=None, help="default: $LAB_DIR/pve")
    serve.add_argument("--pve-version", default=os.environ.get("PVE_LAB_VERSION") or None,
                       help="the version /version reports, e.g. 8.4.1 (default: the schema's 9.1)")
    serve.add_argument("--verify-results", action="store_true",
                       default=os.environ.get("PVE_LAB_VERIFY_RESULTS") == "1",
                       help="refuse an answer that does not match the schema's returns (PVE's result verification)")
    serve.add_argument("--driver", default="lab.hosts:LabHosts", help="module:Class of the host driver")
    serve.add_argument("--auth-delay", type=float, default=float(os.environ.get("PVE_AUTH_DELAY", "0.05")),
                       help="seconds before answering a 401 (PVE uses 3)")
    serve.add_argument("--fence-delay", type=float, default=FENCE_DELAY,
                       help="seconds from a node going down to its fencing and HA recovery (PVE: 60 + the agent lock)")
    serve.add_argument("--ha-round", type=float, default=ROUND, help="seconds between the HA manager's rounds")
    serve.add_argument("--firewall-table", type=table_name, default=None,
                       help=f"the nftables table (bridge family) this emulator loads its firewall into (default: the "
                            f"lab's, {TABLE}, for the lab's state directory, which `lab down` removes; for any other "
                            f"state directory, {TABLE}_ and a digest of its path: loading a table replaces it whole). "
                            "A table other than the lab's is removed when the emulator stops")
    serve.add_argument("--firewall-update", type=seconds, default=UPDATE_TIME,
                       help="seconds between the firewall's checks that its table is still the one it loaded (loaded "
                            "again when removed or replaced, as pve-firewall's update loop does)")
    args = ap.parse_args(argv)

    state_dir = Path(args.state_dir or lab_state_dir())
    state_dir.mkdir(parents=True, exist_ok=True)
    if hold_state_dir(state_dir) is None:
        ap.error(f"{state_dir} is served by another emulator ({holder(state_dir)}): one emulator per state directory "
                 "(`python -m lab status` for the lab's; --state-dir DIR for another)")
    table = args.firewall_table or table_for(state_dir, lab_state_dir())
    ca_file, cert, key = ensure_ca(state_dir)
    # the real containers' traffic is filtered; another driver has no veths to filter
    enforce = args.driver == "lab.hosts:LabHosts"
    # the port first: an emulator that cannot listen must not have loaded its firewall or started its HA manager
    try:
        server = PveServer((args.host, args.port), None, cert, key, auth_delay=args.auth_delay)
    except OSError as exc:
        ap.error(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc} (--port PORT for another)")
    try:
        app = Emulator(state_dir, load_driver(args.driver), node=args.node, version=args.pve_version,
                       verify_results=args.verify_results, nodes=args.nodes, fence_delay=args.fence_delay,
                       enforce_firewall=enforce, firewall_table=table)
    except ValueError as exc:  # a bad version or cluster size (ClusterError is one)
        server.server_close()
        ap.error(str(exc))
    server.app = app

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"pve: serving https://{args.host}:{server.server_address[1]}/api2/json node={args.node} "
          f"ca={ca_file} tokens={state_dir / 'tokens.json'} pid={os.getpid()}"
          + (f" firewall=bridge {table}" if enforce else ""), file=sys.stderr, flush=True)
    app.crm.run(args.ha_round)
    firewall_stop = threading.Event()
    if enforce:
        app.firewall.run(firewall_stop, args.firewall_update)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        app.crm.stop()
        firewall_stop.set()
        server.server_close()
        if enforce and table != TABLE:
            with app.firewall.lock:  # after the update loop's last check: it must not load the table again
                nft_remove(table)  # its own table: nothing else filters through it
        print("pve: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
