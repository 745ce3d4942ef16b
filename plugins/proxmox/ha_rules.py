"""PVE's HA node-affinity rules through its API: the suite's own rules (`homelab-suite-<hostname>`, one per HA host
that declares `ha.nodes`) read and made the wanted ones with the fewest calls.

A rule is {resources, nodes, strict} as PVE 9 keeps it in rules.cfg (`nodes` written `<node>[:<pri>]` by name,
priority 0 without its number, as NodeAffinity.pm's encode_plugin_value writes it). Only rules whose id starts with
the suite's prefix are read into the state and touched: the owner's own rules are left alone. PVE refuses a second
node-affinity rule for one resource, so a resource the owner already placed by a rule fails the create in one line.
A rule names HA resources only: the deploy creates the resources first, and removing a resource drops it from its
rules (PVE's purge), so the caller reads the rules after it converged the resources.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Call = Callable[..., Any]  # ProxmoxClient.api_call
PREFIX = "homelab-suite-"
FIELDS = ("resources", "nodes", "strict")


def rule_id(hostname: str) -> str:
    """The id of the suite's node-affinity rule for a host."""
    return f"{PREFIX}{hostname}"


def rule(options: dict) -> dict:
    """A rule's options as compared: its resources, its nodes by name, strict as 0/1."""
    nodes = {}
    for entry in str(options.get("nodes", "")).replace(";", ",").split(","):
        name, _, priority = entry.strip().partition(":")
        if name:
            nodes[name] = int(priority or 0)
    resources = sorted(r.strip() for r in str(options.get("resources", "")).split(",") if r.strip())
    shown = [f"{name}:{pri}" if pri else name for name, pri in sorted(nodes.items())]  # by name, as PVE writes it
    return {"resources": ",".join(resources), "nodes": ",".join(shown),
            "strict": 1 if str(options.get("strict", 0)) in ("1", "True", "true") else 0}


def read_state(call: Call) -> dict[str, dict]:
    """{rule id: options} of the suite's node-affinity rules PVE holds (one call, /cluster/ha/rules)."""
    found = {}
    for row in call("list the HA rules", "GET", "cluster/ha/rules", type="node-affinity") or []:
        name = str(row.get("rule", ""))
        if name.startswith(PREFIX):
            found[name] = rule(row)
    return found


def changes(current: dict[str, dict], wanted: dict[str, dict]) -> list[str]:
    """One line per rule that converge would change (empty: PVE already holds the wanted ones)."""
    return [line for line, _ in _steps(current, wanted)]


def converge(call: Call, current: dict[str, dict], wanted: dict[str, dict]) -> list[str]:
    """Make PVE hold the wanted suite rules; give one line per change made."""
    done = []
    for line, step in _steps(current, wanted):
        step(call)
        done.append(line)
    return done


def _shown(options: dict) -> str:
    return ", ".join(f"{key}={options[key]}" for key in FIELDS if key in options)


def _ours(state: dict[str, dict]) -> dict[str, dict]:
    return {name: rule(options) for name, options in state.items() if name.startswith(PREFIX)}


def _steps(current: dict[str, dict], wanted: dict[str, dict]) -> list[tuple[str, Callable]]:
    """(what, how): removals first (a rule freed of its resource lets another take it), then creations and updates,
    each in rule id order."""
    current, wanted = _ours(current), _ours(wanted)
    steps: list[tuple[str, Callable]] = []
    for name in sorted(set(current) - set(wanted)):
        steps.append((f"remove rule {name}", _remove(name)))
    for name, options in sorted(wanted.items()):
        now = current.get(name)
        if now is None:
            steps.append((f"create rule {name}: node-affinity, {_shown(options)}", _create(name, options)))
        elif now != options:
            changed = {key: value for key, value in options.items() if now[key] != value}
            steps.append((f"update rule {name}: {_shown(changed)}", _update(name, changed)))
    return steps


def _create(name: str, options: dict):
    def step(call: Call) -> None:
        call(f"create HA rule {name}", "POST", "cluster/ha/rules", rule=name, type="node-affinity", **options)
    return step


def _update(name: str, changed: dict):
    def step(call: Call) -> None:
        call(f"update HA rule {name}", "PUT", f"cluster/ha/rules/{name}", type="node-affinity", **changed)
    return step


def _remove(name: str):
    def step(call: Call) -> None:
        call(f"remove HA rule {name}", "DELETE", f"cluster/ha/rules/{name}")
    return step


def wanted_rules(hosts: Iterable[Any]) -> dict[str, dict]:
    """{rule id: options} an inventory's hosts declare: one per `ha:` host with `nodes`."""
    return {rule_id(h.hostname): rule({"resources": f"ct:{h.vmid}", "nodes": h.ha.rule_nodes(),
                                       "strict": int(h.ha.strict)})
            for h in hosts if h.ha is not None and h.ha.nodes}
