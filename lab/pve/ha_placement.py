"""Where the HA manager puts a service: pve-ha-manager's select_service_node (Manager.pm) with its node-affinity
rules (Rules/NodeAffinity.pm), its resource-affinity rules (Rules/ResourceAffinity.pm) and the basic scheduler's load
(Usage/Basic.pm: the count of HA services per node).

- A service in a node-affinity rule may run on the rule's nodes that are online (a non-strict rule adds every other
  node of the cluster at priority -1, so it falls back to them); it prefers those of the highest priority.
- Without a rule every online node is allowed and preferred alike.
- Resource affinity (ha_rules.py compiles the rules): the nodes of services kept apart are taken out of the
  preferred ones, and a service kept together with others goes to the node most of them use.
- Among the preferred nodes the least loaded wins, ties by name; `none` (the CRM's every-round check) keeps the
  service where it is while its node is preferred, `try-next` (a failed start) leaves out the nodes it failed on.
The static/dynamic schedulers are not played (docs/reference/pve-cluster.md).
"""

from __future__ import annotations

from .formats import split_list

NODE_PREFERENCES = ("none", "best-score", "try-next")


def parse_nodes(text: str) -> dict[str, int]:
    """A rule's `nodes` (`<node>[:<pri>]` entries): node -> priority (0 when not given, as parse_node_priority)."""
    nodes: dict[str, int] = {}
    for entry in split_list(text or ""):
        name, _, priority = entry.partition(":")
        nodes[name] = int(priority or 0)
    return nodes


def node_affinity(rules: dict[str, dict], sid: str, cluster_nodes: list[str]) -> dict[str, int] | None:
    """The compiled node affinity of a service (NodeAffinity.pm's plugin_compile): node -> priority, every other
    node at -1 for a non-strict rule; None when no enabled node-affinity rule names the service."""
    for _rule, options in sorted(rules.items()):
        if options.get("type") != "node-affinity" or int(options.get("disable") or 0):
            continue
        if sid not in split_list(options.get("resources", "")):
            continue
        nodes = parse_nodes(options.get("nodes", ""))
        if not int(options.get("strict") or 0):
            for name in cluster_nodes:
                nodes.setdefault(name, -1)
        return nodes
    return None


def allowed_and_preferred(affinity: dict[str, int] | None, online: list[str]) -> tuple[set[str], set[str]]:
    """get_node_affinity: the online nodes the service may run on, and those of them with the highest priority."""
    if affinity is None:
        return set(online), set(online)
    allowed = {node for node in affinity if node in online}
    if not allowed:
        return set(), set()
    top = max(affinity[node] for node in allowed)
    return allowed, {node for node in allowed if affinity[node] == top}


def used_nodes(state: str, node: str | None, target: str | None, online: list[str]) -> tuple[str | None, str | None]:
    """Usage.pm's get_used_service_nodes: the online node a service uses now and the one it is moving to."""
    if state in ("stopped", "request_start"):
        return None, None
    current = node if node in online and state in (
        "started", "request_stop", "fence", "freeze", "error", "recovery", "migrate", "relocate") else None
    moving = target if target in online and state in ("migrate", "relocate", "request_start_balance") else None
    return current, moving


def resource_affinity(together: set[str], separate: set[str], services: dict[str, tuple], online: list[str]
                      ) -> tuple[dict[str, int], set[str]]:
    """get_resource_affinity: node -> how many services kept together with this one use it, and the nodes
    services kept apart from it use; `services` is sid -> (state, node, target) of the manager status."""
    with_it: dict[str, int] = {}
    apart: set[str] = set()
    for sid in together:
        if sid in services:
            current, moving = used_nodes(*services[sid], online)
            node = moving or current  # the target only: a service moved already must not pull it back
            if node is not None:
                with_it[node] = with_it.get(node, 0) + 1
    for sid in separate:
        if sid in services:
            apart.update(n for n in used_nodes(*services[sid], online) if n is not None)
    return with_it, apart


def select_service_node(affinity: dict[str, int] | None, online: list[str], load: dict[str, int], current: str,
                        preference: str, tried: list[str] = (), failback: bool = True,
                        together: dict[str, int] | None = None, separate: set[str] = frozenset()) -> str | None:
    """Manager.pm's select_service_node: the node the service should run on, or None (no allowed node online)."""
    if preference not in NODE_PREFERENCES:
        raise ValueError(f"'{preference}' is not a valid node_preference for select_service_node")
    together = dict(together or {})
    allowed, preferred = allowed_and_preferred(affinity, online)
    if not preferred:
        return None
    if preference == "none" and not failback and current in allowed \
            and (together.get(current) or current not in separate):  # ResourceAffinity.pm's is_allowed_on_node
        return current  # stay on the current node if possible (avoids random migrations)
    if preference == "try-next":
        preferred -= set(tried)
    preferred -= set(separate)  # apply_negative_resource_affinity
    together = {node: count for node, count in together.items() if node in preferred}
    if together:  # apply_positive_resource_affinity: the node most of its companions use
        majority = min(sorted(together), key=lambda node: -together[node])  # ties: the first by name
        preferred = {majority}
    if preference == "none" and current in preferred:
        return current
    ranked = sorted(preferred, key=lambda node: (load.get(node, 0), node))
    if not ranked:
        return None
    if preference == "try-next" and current in ranked and ranked.index(current) < len(ranked) - 1:
        return ranked[ranked.index(current) + 1]
    return ranked[0]
