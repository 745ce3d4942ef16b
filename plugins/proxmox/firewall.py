"""PVE's firewall through its API: read what it holds, and make it hold a wanted state with the fewest calls.

The state is plugins/stack/firewall.py's shape: {cluster: {options, aliases, ipsets, groups}, cts: {vmid:
{options, rules}}}. `converge` changes only what differs (a second run changes nothing), touches only the objects
the wanted state names or that carry the suite's mark, and serves both the deploy (wanted = the inventory's) and
the rollback (wanted = what `read_state` recorded before the deploy: a CT's .fw file is not in its snapshot).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

RULE_KEYS = ("type", "action", "macro", "source", "dest", "proto", "dport", "sport", "iface", "log", "icmp-type",
             "enable", "comment")
Call = Callable[..., Any]  # ProxmoxClient.api_call


def _clean(row: dict, keys: Iterable[str]) -> dict:
    return {k: (int(row[k]) if k == "enable" else row[k]) for k in keys if row.get(k) not in (None, "")}


def _options(row: dict | None) -> dict:
    return {k: v for k, v in (row or {}).items() if k != "digest"}


def read_state(call: Call, cts: dict[int, str]) -> dict:
    """The firewall PVE holds now: the cluster's objects and, for each {vmid: node}, its options and rules."""
    cluster = {
        "options": _options(call("read the datacenter firewall options", "GET", "cluster/firewall/options")),
        "aliases": {row["name"]: _clean(row, ("cidr", "comment"))
                    for row in call("list firewall aliases", "GET", "cluster/firewall/aliases") or []},
        "ipsets": {},
        "groups": {},
    }
    for row in call("list firewall IP sets", "GET", "cluster/firewall/ipset") or []:
        entries = call(f"read IP set {row['name']}", "GET", f"cluster/firewall/ipset/{row['name']}") or []
        cluster["ipsets"][row["name"]] = {**_clean(row, ("comment",)),
                                          "entries": sorted(e["cidr"] for e in entries)}
    for row in call("list security groups", "GET", "cluster/firewall/groups") or []:
        rules = call(f"read security group {row['group']}", "GET", f"cluster/firewall/groups/{row['group']}") or []
        cluster["groups"][row["group"]] = {**_clean(row, ("comment",)),
                                           "rules": [_clean(r, RULE_KEYS) for r in sorted(rules, key=_pos)]}
    found = {}
    for vmid, node in sorted(cts.items()):
        base = f"nodes/{node}/lxc/{vmid}/firewall"
        found[vmid] = {
            "options": _options(call(f"read CT {vmid}'s firewall options", "GET", f"{base}/options")),
            "rules": [_clean(r, RULE_KEYS) for r in sorted(call(f"read CT {vmid}'s firewall rules", "GET",
                                                                 f"{base}/rules") or [], key=_pos)],
        }
    return {"cluster": cluster, "cts": found}


def _pos(row: dict) -> int:
    return int(row.get("pos", 0))


def normalized(state: dict) -> dict:
    """The state as read_state gives it (sorted IP set entries, rules' own keys), to compare with one read."""
    cluster = state["cluster"]
    return {
        "cluster": {
            "options": dict(cluster["options"]),
            "aliases": {n: _clean(a, ("cidr", "comment")) for n, a in cluster["aliases"].items()},
            "ipsets": {n: {**_clean(s, ("comment",)), "entries": sorted(s["entries"])}
                       for n, s in cluster["ipsets"].items()},
            "groups": {n: {**_clean(g, ("comment",)), "rules": [_clean(r, RULE_KEYS) for r in g["rules"]]}
                       for n, g in cluster["groups"].items()},
        },
        "cts": {int(v): {"options": dict(c["options"]), "rules": [_clean(r, RULE_KEYS) for r in c["rules"]]}
                for v, c in state["cts"].items()},
    }


def changes(current: dict, wanted: dict, mark: str) -> list[str]:
    """One line per object that converge would change (empty: PVE already holds the wanted state)."""
    return [line for line, _ in _steps(normalized(current), normalized(wanted), mark)]


def converge(call: Call, current: dict, wanted: dict, mark: str, nodes: dict[int, str]) -> list[str]:
    """Make PVE hold the wanted state; give one line per change made."""
    done = []
    for line, step in _steps(normalized(current), normalized(wanted), mark):
        step(call, nodes)
        done.append(line)
    return done


def _marked(obj: dict, mark: str) -> bool:
    return str(obj.get("comment", "")).startswith(mark)


def _steps(current: dict, wanted: dict, mark: str) -> list[tuple[str, Callable[[Call, dict], None]]]:
    """(what, how) in an order that never leaves a rule naming a missing object: aliases, IP sets, groups, the CTs'
    rules and options, the datacenter's options, then what is no longer wanted."""
    have, want = current["cluster"], wanted["cluster"]
    steps: list = []
    for name, alias in want["aliases"].items():
        if have["aliases"].get(name) != alias:
            steps.append((f"alias {name} = {alias['cidr']}", _put_alias(name, alias, name in have["aliases"])))
    for name, ipset in want["ipsets"].items():
        if have["ipsets"].get(name) != ipset:
            steps.append((f"IP set {name}: {', '.join(ipset['entries']) or 'empty'}",
                          _put_ipset(name, ipset, have["ipsets"].get(name))))
    for name, group in want["groups"].items():
        if have["groups"].get(name) != group:
            steps.append((f"security group {name}: {len(group['rules'])} rule(s)",
                          _put_group(name, group, have["groups"].get(name))))
    for vmid, ct in wanted["cts"].items():
        now = current["cts"].get(vmid, {"options": {}, "rules": []})
        if now["rules"] != ct["rules"]:
            steps.append((f"CT {vmid} rules: {len(ct['rules'])}", _put_rules(vmid, ct["rules"], len(now["rules"]))))
        if now["options"] != ct["options"]:
            steps.append((f"CT {vmid} options: {_shown(ct['options'])}", _put_options(vmid, now["options"], ct["options"])))
    if have["options"] != want["options"]:
        steps.append((f"datacenter options: {_shown(want['options'])}",
                      _put_options(None, have["options"], want["options"])))
    for kind, remove in (("groups", _remove_group), ("ipsets", _remove_ipset), ("aliases", _remove_alias)):
        for name, obj in have[kind].items():
            if name not in want[kind] and _marked(obj, mark):
                steps.append((f"remove {kind[:-1].replace('ipset', 'IP set')} {name}", remove(name, obj)))
    return steps


def _shown(options: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(options.items())) or "none"


def _put_alias(name: str, alias: dict, exists: bool):
    def step(call: Call, nodes: dict) -> None:
        if exists:
            call(f"remove alias {name}", "DELETE", f"cluster/firewall/aliases/{name}")
        call(f"create alias {name}", "POST", "cluster/firewall/aliases", name=name, **alias)
    return step


def _put_ipset(name: str, ipset: dict, now: dict | None):
    def step(call: Call, nodes: dict) -> None:
        if now is None:
            call(f"create IP set {name}", "POST", "cluster/firewall/ipset", name=name, comment=ipset.get("comment", ""))
        elif now.get("comment") != ipset.get("comment"):
            call(f"comment IP set {name}", "POST", "cluster/firewall/ipset", name=name, rename=name,
                 comment=ipset.get("comment", ""))
        old = set(now["entries"]) if now else set()
        for cidr in sorted(old - set(ipset["entries"])):
            call(f"remove {cidr} from IP set {name}", "DELETE", f"cluster/firewall/ipset/{name}/{cidr}")
        for cidr in [c for c in ipset["entries"] if c not in old]:
            call(f"add {cidr} to IP set {name}", "POST", f"cluster/firewall/ipset/{name}", cidr=cidr)
    return step


def _put_group(name: str, group: dict, now: dict | None):
    def step(call: Call, nodes: dict) -> None:
        path = f"cluster/firewall/groups/{name}"
        if now is None:
            call(f"create security group {name}", "POST", "cluster/firewall/groups", group=name,
                 comment=group.get("comment", ""))
        elif now.get("comment") != group.get("comment"):
            call(f"comment security group {name}", "POST", "cluster/firewall/groups", group=name, rename=name,
                 comment=group.get("comment", ""))
        if now is None or now["rules"] != group["rules"]:
            for pos in reversed(range(len(now["rules"]) if now else 0)):
                call(f"remove rule {pos} of security group {name}", "DELETE", f"{path}/{pos}")
            for pos, rule in enumerate(group["rules"]):
                call(f"add rule {pos} to security group {name}", "POST", path, pos=pos, **rule)
    return step


def _put_rules(vmid: int, rules: list[dict], count: int):
    def step(call: Call, nodes: dict) -> None:
        path = f"nodes/{nodes[vmid]}/lxc/{vmid}/firewall/rules"
        for pos in reversed(range(count)):
            call(f"remove rule {pos} of CT {vmid}", "DELETE", f"{path}/{pos}")
        for pos, rule in enumerate(rules):
            call(f"add rule {pos} to CT {vmid}", "POST", path, pos=pos, **rule)
    return step


def _put_options(vmid: int | None, now: dict, options: dict):
    def step(call: Call, nodes: dict) -> None:
        path = "cluster/firewall/options" if vmid is None else f"nodes/{nodes[vmid]}/lxc/{vmid}/firewall/options"
        gone = ",".join(sorted(set(now) - set(options)))
        call(f"set firewall options of {'the datacenter' if vmid is None else f'CT {vmid}'}", "PUT", path,
             **options, **({"delete": gone} if gone else {}))
    return step


def _remove_group(name: str, group: dict):
    def step(call: Call, nodes: dict) -> None:
        for pos in reversed(range(len(group["rules"]))):
            call(f"remove rule {pos} of security group {name}", "DELETE", f"cluster/firewall/groups/{name}/{pos}")
        call(f"remove security group {name}", "DELETE", f"cluster/firewall/groups/{name}")
    return step


def _remove_ipset(name: str, ipset: dict):
    def step(call: Call, nodes: dict) -> None:
        call(f"remove IP set {name}", "DELETE", f"cluster/firewall/ipset/{name}", force=1)
    return step


def _remove_alias(name: str, alias: dict):
    def step(call: Call, nodes: dict) -> None:
        call(f"remove alias {name}", "DELETE", f"cluster/firewall/aliases/{name}")
    return step
