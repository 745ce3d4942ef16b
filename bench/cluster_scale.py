"""Benchmark the suite on the 3-node emulated cluster: the health suite on N containers spread over the nodes
against the bare-login floor of the same run, and a deploy's time on 3 nodes against 1 node with the same hosts.

    sudo .venv/bin/python -m lab up --nodes 3
    sudo .venv/bin/python bench/cluster_scale.py [--per-node 50] [--skip-deploy] [--baseline WORKTREE]

Health: N small containers, --per-node on each node (3 x 50 by default: VMIDs 830.., the last address
198.18.0.199), created through the emulator's API, one node after the other in turn (`POST /nodes/{node}/lxc`, root's key as `ssh-public-keys`), prepared as bench/health_scale.py's
are (deploy user, one Docker container, here without a healthcheck, an HTTP service); `pytest suites/health` on an inventory
naming the 3 nodes and each host's node, and N bare SSH logins in parallel (the floor), interleaved, medians of
--repeat runs of each;
each destroyed through the API at the end. Deploy: the lab inventory's cluster variant with fewer services
(lab/scenarios.py cluster_light_variant) deployed from an empty lab spread over the 3 nodes, then the same hosts
all on `homelab`, each from empty; the lab emptied after.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from health_scale import LAST_OCTET, HealthFleet, prepare_script, run_login_floor, run_suite

from lab import orchestrate, scenarios
from plugins.inventory import load_inventory
from plugins.proxmox.client import ProxmoxClient

TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"
CREATE_TIMEOUT = 300


class ClusterFleet(HealthFleet):
    """HealthFleet's hosts, created through the emulator's API on the cluster's nodes in turn."""

    def __init__(self, lab_hosts, count: int, workdir: Path, proxmox: ProxmoxClient, nodes: list[str]):
        """Plan the hosts (node i of the cluster for host i, addresses up to 198.18.0.199) and their keys; nothing
        is created yet."""
        super().__init__(lab_hosts, count, workdir, first_octet=LAST_OCTET + 1 - count)
        self.proxmox, self.nodes = proxmox, nodes
        self.node_of = {vmid: nodes[i % len(nodes)] for i, (vmid, _, _) in enumerate(self.hosts)}

    def create(self) -> None:
        """Create and start every host on its node (PVE tasks, checked), then prepare them in parallel."""
        ours = {vmid for vmid, _, _ in self.hosts}
        taken = {info.ip for info in self.lab.list() if info.vmid not in ours}
        clash = [ip for _, _, ip in self.hosts if ip in taken]
        if clash:
            raise RuntimeError(f"lab hosts already hold {', '.join(clash)}: refusing to create duplicates")
        existing = self.proxmox.placement()
        for vmid, _, _ in self.hosts:
            if vmid in existing:  # left over by a killed run: ours by VMID range
                self._delete(vmid, existing[vmid])
        admin_pub = self.admin_key.with_suffix(".pub").read_text()
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda host: self._create_one(host, admin_pub), self.hosts))
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self._prepare, self.hosts))

    def _create_one(self, host: tuple[int, str, str], admin_pub: str) -> None:
        vmid, hostname, ip = host
        node = self.node_of[vmid]
        self.created.append(vmid)
        upid = self.proxmox.api_call(f"create CT {vmid} on {node}", "POST", f"nodes/{node}/lxc", vmid=vmid,
                                     ostemplate=TEMPLATE, hostname=hostname, memory=256, start=1,
                                     net0=f"name=eth0,bridge=labbr0,ip={ip}/24,gw=198.18.0.1",
                                     **{"ssh-public-keys": admin_pub})
        self.proxmox.wait_task(node, upid, CREATE_TIMEOUT)

    def _prepare(self, host: tuple[int, str, str]) -> None:
        vmid, _, ip = host
        self.lab.wait_ssh(vmid, timeout=120)
        key = self.deploy_key.with_suffix(".pub").read_text().strip()
        # no healthcheck: at 150 containers on 2 cores, their healthchecks every 20 s are most of a core of background
        # that is neither the suite's nor the floor's; the check reads the container's state the same way
        self.root(ip, prepare_script(shlex.quote(key), healthcheck=False), timeout=300)

    def inventory(self, path: Path, runner_host: str | None = None) -> Path:
        """The one-node bench's inventory plus the cluster's nodes and each host's node."""
        super().inventory(path, runner_host)
        document = yaml.safe_load(path.read_text())
        cluster = yaml.safe_load(scenarios.CLUSTER_INVENTORY.read_text())
        document["nodes"] = cluster["nodes"]
        for host in document["hosts"]:
            host["node"] = self.node_of[host["vmid"]]
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    def _delete(self, vmid: int, node: str) -> None:
        upid = self.proxmox.api_call(f"destroy CT {vmid}", "DELETE", f"nodes/{node}/lxc/{vmid}", force=1, purge=1)
        self.proxmox.wait_task(node, upid, CREATE_TIMEOUT)

    def destroy(self) -> None:
        """Destroy every host this fleet created through the API, on the node it is on now (also after a failure)."""
        errors = []
        where = self.proxmox.placement()
        for vmid in self.created:
            try:
                if vmid in where:
                    self._delete(vmid, where[vmid])
            except Exception as exc:  # noqa: BLE001 - keep destroying the others, report at the end
                errors.append(f"{vmid}: {exc}")
        self.created.clear()
        if errors:
            raise RuntimeError("could not destroy lab hosts: " + "; ".join(errors))


def bench_health(count: int, repeat: int, nodes: list[str], proxmox: ProxmoxClient,
                 baseline: Path | None = None) -> None:
    """Create the fleet over the nodes, time the health suite and the login floor, print them, destroy it."""
    from lab.hosts import LabHosts

    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
        fleet = ClusterFleet(LabHosts(), count, Path(tmp), proxmox, nodes)
        ours = {vmid for vmid, _, _ in fleet.hosts}
        others = [vmid for vmid, row in proxmox.guests().items() if vmid not in ours and row.get("status") == "running"]
        if others:  # a deployed stack's services share the 2 cores with the suite and the floor
            print(f"health: {len(others)} other CT(s) running ({', '.join(map(str, sorted(others)))}): their CPU "
                  "is background to both figures; an empty lab measures the suite alone", flush=True)
        try:
            started = time.monotonic()
            fleet.create()
            setup = time.monotonic() - started
            inventory = fleet.inventory(Path(tmp) / "inventory.yml")
            known = Path(tmp) / "known_hosts_suite"
            trees = [ROOT] + ([baseline] if baseline else [])
            for tree in trees:
                run_suite(inventory, known, "--co", tree=tree)  # warm the import caches, not the SSH side
            runs, floors, before = [], [], []
            for _ in range(repeat):  # interleaved: the machine's load drifts, and the ratio compares the two
                floors.append(run_login_floor(fleet))
                runs.append(run_suite(inventory, known))
                if baseline:
                    before.append(run_suite(inventory, known, tree=baseline))
                for run in (runs[-1], *before[-1:]):
                    if run[1] != 0:
                        print(run[2][-3000:], file=sys.stderr)
                        raise SystemExit(f"pytest suites/health failed on {count} healthy hosts over {len(nodes)} nodes")
            suite, floor = statistics.median(r[0] for r in runs), statistics.median(floors)
            per_node = {node: sum(1 for n in fleet.node_of.values() if n == node) for node in nodes}
            print(f"health: {count} hosts over {len(nodes)} nodes ({', '.join(f'{n} {c}' for n, c in per_node.items())}"
                  f"): setup {setup:.1f} s | pytest suites/health {suite:.2f} s (median of "
                  f"{', '.join(f'{r[0]:.2f}' for r in runs)}) | bare logins {floor:.2f} s (median of "
                  f"{', '.join(f'{f:.2f}' for f in floors)}) | {suite / floor:.2f}x the floor (target <= 1.5; "
                  # each round's suite against the floor run just before it: the machine's speed drifts from minute
                  # to minute, and the spread of these says how far the median can be trusted
                  f"rounds {', '.join(f'{r[0] / f:.2f}' for r, f in zip(runs, floors, strict=True))}) | "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
            if baseline:
                base = statistics.median(r[0] for r in before)
                print(f"health: baseline {baseline}: pytest suites/health {base:.2f} s (median of "
                      f"{', '.join(f'{r[0]:.2f}' for r in before)}) | {base / floor:.2f}x the floor", flush=True)
        finally:
            fleet.destroy()


def bench_deploy() -> None:
    """Deploy the light cluster variant from empty on 3 nodes, then the same hosts on 1 node; print both times."""
    with tempfile.TemporaryDirectory(prefix="cluster-deploy-") as tmp:
        spread = scenarios.cluster_light_variant(Path(tmp), "three-nodes")
        single = scenarios.cluster_light_variant(Path(tmp), "one-node", node="homelab")
        times = {}
        try:
            for name, inventory in (("3 nodes", spread), ("1 node", single)):
                scenarios.empty_lab(inventory)
                run = scenarios.run_suite("deploy", inventory=inventory)
                if run.rc != 0:
                    print(run.tail(60), file=sys.stderr)
                    raise SystemExit(f"deploy on {name} failed (rc {run.rc})")
                times[name] = run.seconds
                hosts = load_inventory(inventory).hosts
                print(f"deploy from empty, {len(hosts)} hosts on {name}: {run.seconds:.1f} s "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
        finally:
            scenarios.empty_lab(single)
        print(f"deploy: 3 nodes take {times['3 nodes'] / times['1 node']:.2f}x the time of 1 node with the same hosts")


def main(argv: list[str]) -> int:
    """Run the health bench (and the deploy bench unless skipped) on the running 3-node lab."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-node", type=int, default=50, help="containers on each node (3 x 50 by default)")
    parser.add_argument("--repeat", type=int, default=3, help="suite and floor runs; medians are reported")
    parser.add_argument("--skip-health", action="store_true", help="only the deploy bench")
    parser.add_argument("--skip-deploy", action="store_true", help="only the health bench")
    parser.add_argument("--baseline", type=Path, help="another checkout (a worktree of an earlier commit): its health "
                                                      "suite timed on the same hosts, interleaved, for a before/after")
    args = parser.parse_args(argv)
    status = orchestrate.status()
    if not status["up"]:
        raise SystemExit("the lab is not up: sudo .venv/bin/python -m lab up --nodes 3")
    os.environ.update(orchestrate.suite_env(status))
    proxmox = ProxmoxClient.from_inventory(load_inventory(scenarios.CLUSTER_INVENTORY), env=scenarios.suite_env())
    nodes = proxmox.nodes()
    if len(nodes) < 3:
        raise SystemExit(f"the lab has {len(nodes)} node(s): sudo .venv/bin/python -m lab up --nodes 3")
    nodes = sorted(nodes)
    if not args.skip_health:
        bench_health(args.per_node * len(nodes), args.repeat, nodes, proxmox, args.baseline)
    if not args.skip_deploy:
        bench_deploy()
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench/cluster_scale.py needs root (it creates LXC lab hosts)")
    sys.exit(main(sys.argv[1:]))
