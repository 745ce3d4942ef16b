"""The node's firewall: pve-firewall's configuration (cluster.fw, <vmid>.fw) kept as JSON, and enforced with nftables.

Sections as in pve-firewall's files: the cluster's [OPTIONS], [ALIASES], [IPSET name] and [group name]; each CT's
[OPTIONS], [RULES] and [IPSET name]. Every change is enforced at once, as pve-firewall's compile/apply loop does:
one nftables table of the lab's own (TABLE) filters what reaches each CT's host-side veth, the interface
pve-firewall's bridge rules match. The lab's kernel has no bridge conntrack, so the table is stateless: it filters
new TCP connections (SYN without ACK) and lets replies, UDP and ICMP through (docs/reference/firewall.md).
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from .errors import fail

TABLE = "homelab_lab_pve_fw"  # `bridge` family; created by the lab's emulator, removed by `lab down`
# Loading a table replaces it whole: an emulator other than the lab's (the lab's tests start some) owns a table of
# its own (table_for), or it would wipe the lab's rules with its own empty set.
TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
UPDATE_TIME = 10.0  # pve-firewall's $updatetime: seconds between its checks that the loaded rules are its own
VETH_PREFIX = "vlab"  # lab/hosts.py names each CT's host-side veth vlab<vmid> (lxc.net.0.veth.pair)
RULE_KEYS = ("type", "action", "macro", "source", "dest", "proto", "dport", "sport", "iface", "log", "icmp-type",
             "enable", "comment")


def table_for(state_dir: str | os.PathLike, lab_state_dir: str | os.PathLike) -> str:
    """The table an emulator on this state directory loads: TABLE for the lab's own, one named after the directory
    for any other (two emulators on two state directories never load one table)."""
    state = Path(state_dir).resolve()
    if state == Path(lab_state_dir).resolve():
        return TABLE
    return f"{TABLE}_{hashlib.sha256(str(state).encode()).hexdigest()[:12]}"


def empty_cluster() -> dict:
    """cluster.fw with nothing in it (the firewall off)."""
    return {"options": {}, "aliases": {}, "ipsets": {}, "groups": {}}


def empty_ct() -> dict:
    """<vmid>.fw with nothing in it."""
    return {"options": {}, "rules": [], "ipsets": {}}


def digest(value) -> str:
    """A SHA1 over a section, as pve-firewall gives to detect concurrent changes."""
    return hashlib.sha1(json.dumps(value, sort_keys=True).encode()).hexdigest()


class FirewallStore:
    """cluster.json and <vmid>.json under <root>/firewall; `enforce` gets the nftables text after every change."""

    def __init__(self, root: str | os.PathLike, enforce: Callable[[str], None] | None = None, table: str = TABLE,
                 loaded: Callable[[str], int | None] | None = None):
        """`loaded` gives the kernel's handle of a loaded table (None when none is): how update() tells that the
        table was removed or replaced by someone else since this store loaded it."""
        self.dir = Path(root) / "firewall"
        self.table = table
        self.loaded = loaded
        self.handle: int | None = None  # the table's handle when this store last loaded it
        self.dir.mkdir(parents=True, exist_ok=True)
        self.enforce = enforce
        self.lock = threading.RLock()

    def _path(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def _read(self, name: str, empty: dict) -> dict:
        try:
            return {**empty, **json.loads(self._path(name).read_text())}
        except FileNotFoundError:
            return copy.deepcopy(empty)

    def _write(self, name: str, value: dict) -> None:
        path = self._path(name)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(value, indent=1, sort_keys=True))
        os.replace(tmp, path)

    def cluster(self) -> dict:
        """cluster.fw as a dict."""
        return self._read("cluster", empty_cluster())

    def ct(self, vmid: int) -> dict:
        """<vmid>.fw as a dict."""
        return self._read(str(int(vmid)), empty_ct())

    def change_cluster(self, change: Callable[[dict], object]) -> object:
        """Apply a change to cluster.fw under the lock, save, enforce; give what the change returned."""
        with self.lock:
            value = self.cluster()
            out = change(value)
            self._write("cluster", value)
            self.apply()
            return out

    def change_ct(self, vmid: int, change: Callable[[dict], object]) -> object:
        """Apply a change to <vmid>.fw under the lock, save, enforce."""
        with self.lock:
            value = self.ct(vmid)
            out = change(value)
            self._write(str(int(vmid)), value)
            self.apply()
            return out

    def remove_ct(self, vmid: int) -> None:
        """Drop <vmid>.fw and enforce what is left (pve-firewall's remove_vmfw_conf, on a CT's destroy)."""
        with self.lock:
            path = self._path(str(int(vmid)))
            if path.exists():
                path.unlink()
                self.apply()

    def apply(self) -> str:
        """Compile every file into the nftables table and hand it to the enforcer; give the text."""
        with self.lock:
            cts = {int(p.stem): self.ct(int(p.stem)) for p in self.dir.glob("*.json") if p.stem.isdigit()}
            text = compile_ruleset(self.cluster(), cts, self.table)
            if self.enforce is not None:
                try:
                    self.enforce(text)
                except RuntimeError as exc:  # pve-firewall logs it; an API call here says it
                    raise fail(str(exc)) from None
                self.handle = self.loaded(self.table) if self.loaded else None
            return text

    def update(self) -> bool:
        """Load the rules again when the table is not the one this store loaded (removed, or replaced by another
        process), as pve-firewall's update loop does; True when it did."""
        with self.lock:
            if self.enforce is None or self.loaded is None or self.loaded(self.table) == self.handle:
                return False
            self.apply()
            return True

    def run(self, stop: threading.Event, period: float = UPDATE_TIME) -> threading.Thread:
        """Call update() every `period` seconds in a daemon thread (the lab's server), until `stop` is set."""

        def loop() -> None:
            while not stop.wait(period):
                try:
                    if self.update():
                        print(f"pve-firewall: table bridge {self.table} was removed or replaced outside the "
                              "emulator: its rules are loaded again", file=sys.stderr, flush=True)
                except Exception as exc:  # noqa: BLE001 - one failed check must not end the loop
                    print(f"pve-firewall: update failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

        thread = threading.Thread(target=loop, name="pve-firewall", daemon=True)
        thread.start()
        return thread


def _resolve(spec: str, cluster: dict, ct: dict) -> list[str]:
    """The networks an address spec names: +ipset (the CT's, then the cluster's), an alias, or a list."""
    if not spec:
        return []
    if spec.startswith("+"):
        name = spec[1:].split("/", 1)[-1]
        ipset = (ct["ipsets"].get(name) if not spec.startswith("+dc/") else None) or cluster["ipsets"].get(name)
        if ipset is None:
            return []
        out = []
        for entry in ipset["entries"]:
            if not entry.get("nomatch"):  # nomatch entries are not emulated: left out
                out.extend(_resolve(entry["cidr"], cluster, ct))
        return out
    alias = cluster["aliases"].get(spec.split("/", 1)[-1])
    if alias is not None:
        return [alias["cidr"]]
    return [_network(part) for part in spec.split(",")]


def _network(part: str) -> str:
    """An address stays an address (a /32 network is written as its address), a range a-b stays a range."""
    if "-" in part:
        return part
    network = ipaddress.ip_network(part, strict=False)
    return str(network.network_address) if network.prefixlen == network.max_prefixlen else str(network)


def _ports(spec: str) -> str:
    return ", ".join(p.replace(":", "-") for p in spec.split(","))


def _rule_lines(rule: dict, cluster: dict, ct: dict) -> list[str]:
    """nftables lines for one enabled `in` rule (a group's rules in its place)."""
    if not int(rule.get("enable", 0) or 0):
        return []
    if rule.get("type") == "group":
        group = cluster["groups"].get(rule["action"], {"rules": []})
        return [line for inner in group["rules"] for line in _rule_lines(inner, cluster, ct)]
    if rule.get("type") != "in" or rule.get("macro"):  # out/forward rules and macros are not emulated
        return []
    match = []
    sources = [s for s in _resolve(rule.get("source", ""), cluster, ct) if ":" not in s]
    if rule.get("source"):
        if not sources:
            return []  # an empty set matches nothing
        match.append(f"ip saddr {{ {', '.join(sources)} }}")
    proto = rule.get("proto", "")
    if proto and proto not in ("tcp", "6"):
        return []  # only TCP is filtered (stateless): other protocols pass anyway
    if rule.get("dport"):
        match.append(f"tcp dport {{ {_ports(rule['dport'])} }}")
    verdict = "accept" if rule["action"] == "ACCEPT" else "drop"  # the bridge family has no reject
    return [" ".join([*match, verdict])]


def compile_ruleset(cluster: dict, cts: dict[int, dict], table: str = TABLE) -> str:
    """The whole nftables table (replacing the previous one atomically): one chain per firewalled CT."""
    lines = [f"table bridge {table} {{}}", f"delete table bridge {table}", f"table bridge {table} {{"]
    jumps = []
    enabled = int(cluster["options"].get("enable", 0) or 0)
    for vmid, ct in sorted(cts.items()):
        if not enabled or not int(ct["options"].get("enable", 0) or 0):
            continue
        chain = f"ct{vmid}_in"
        lines.append(f"  chain {chain} {{")
        lines.append("    meta protocol != ip accept")
        lines.append("    meta l4proto != tcp accept")
        lines.append("    tcp flags & (syn | ack) != syn accept")
        lines += [f"    {line}" for rule in ct["rules"] for line in _rule_lines(rule, cluster, ct)]
        if ct["options"].get("policy_in", "DROP") != "ACCEPT":
            lines.append("    drop")
        lines.append("  }")
        jumps.append(f'    oifname "{VETH_PREFIX}{vmid}" jump {chain}')
    for chain, hook in (("forward_in", "forward"), ("local_out", "output")):
        lines += [f"  chain {chain} {{", f"    type filter hook {hook} priority 0; policy accept;", *jumps, "  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def nft_enforce(text: str) -> None:
    """Load the table with `nft -f -` (one transaction: the old table goes, the new one comes)."""
    done = subprocess.run(["nft", "-f", "-"], input=text, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"nft refused the firewall table: {done.stderr.strip()}")


def nft_table_handle(table: str = TABLE) -> int | None:
    """The kernel's handle of a loaded bridge table (a table deleted and loaded again gets a new one); None if none."""
    done = subprocess.run(["nft", "-a", "list", "table", "bridge", table], capture_output=True, text=True, check=False)
    found = re.search(r"# handle (\d+)", done.stdout) if done.returncode == 0 else None
    return int(found.group(1)) if found else None


def nft_table_exists(table: str = TABLE) -> bool:
    """Tell whether the lab's firewall table (or another emulator's) is loaded."""
    return nft_table_handle(table) is not None


def nft_remove(table: str = TABLE) -> bool:
    """Delete the table if it exists; True when one was removed."""
    done = subprocess.run(["nft", "delete", "table", "bridge", table], capture_output=True, check=False)
    return done.returncode == 0
