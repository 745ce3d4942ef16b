"""HA rules as pve-ha-manager's Rules.pm, Rules/NodeAffinity.pm and Rules/ResourceAffinity.pm check and transform
them: which enabled rules are infeasible (the API refuses such a rule, the CRM drops it), and the rule set the CRM
places with (connected positive resource-affinity rules merged, the negative affinities a positive rule implies,
and every resource of a positive rule put into the node-affinity rule one of them is in).
"""

from __future__ import annotations

from .formats import split_list
from .ha_placement import parse_nodes


def resources_of(options: dict) -> set[str]:
    """A rule's `resources` as a set of sids."""
    return set(split_list(options.get("resources", "")))


def nodes_of(options: dict) -> dict[str, int]:
    """A node-affinity rule's `nodes` (`<node>[:<pri>]`): node -> priority (0 when not given)."""
    return parse_nodes(options.get("nodes", ""))


def enabled(rules: dict[str, dict], kind: str, affinity: str | None = None) -> dict[str, dict]:
    """The enabled rules of a type (and affinity), as foreach_rule(..., exclude_disabled_rules => 1)."""
    return {rid: o for rid, o in rules.items()
            if o.get("type") == kind and not int(o.get("disable") or 0)
            and (affinity is None or o.get("affinity") == affinity)}


def disjoint_sets(rules: dict[str, dict]) -> list[tuple[list[str], set[str]]]:
    """Helpers.pm's find_disjoint_rules_resource_sets: rules whose resources overlap, grouped, with their union."""
    order = sorted(sorted(rules), key=lambda rid: min(resources_of(rules[rid]), default=""))
    groups: list[tuple[list[str], set[str]]] = []
    for rid in order:
        res = resources_of(rules[rid])
        for ids, union in groups:
            if union & res:
                ids.append(rid)
                union |= res
                break
        else:
            groups.append(([rid], set(res)))
    return groups


def feasibility_errors(rules: dict[str, dict], nodes: list[str]) -> dict[str, dict[str, list[str]]]:
    """Rules.pm's check_feasibility: rule id -> option -> the reasons the rule cannot hold, in PVE's check order."""
    errors: dict[str, dict[str, list[str]]] = {}

    def add(rid: str, message: str) -> None:
        errors.setdefault(rid, {}).setdefault("resources", []).append(message)

    node_rules = enabled(rules, "node-affinity")
    resource_rules = enabled(rules, "resource-affinity")
    positive = enabled(rules, "resource-affinity", "positive")
    negative = enabled(rules, "resource-affinity", "negative")
    # NodeAffinity.pm: one node-affinity rule per resource
    users: dict[str, list[str]] = {}
    for rid, options in node_rules.items():
        for sid in resources_of(options):
            users.setdefault(sid, []).append(rid)
    for rid, sid in sorted((rid, sid) for sid, ids in users.items() if len(ids) > 1 for rid in ids):
        add(rid, f"resource '{sid}' is already used in another node affinity rule")
    # ResourceAffinity.pm
    for rid in sorted(resource_rules):
        if len(resources_of(resource_rules[rid])) < 2:
            add(rid, "rule is ineffective as there are less than two resources")
    for rid in sorted(negative):
        if len(resources_of(negative[rid])) > len(nodes):
            add(rid, "rule defines more resources than available nodes")
    conflicts = []
    for ids, union in disjoint_sets(positive):
        for nid, options in negative.items():
            if len(union & resources_of(options)) >= 2:
                conflicts += [("negative", nid)] + [("positive", pid) for pid in ids]
    for kind, rid in sorted(conflicts):
        other = "positive" if kind == "negative" else "negative"
        add(rid, f"rule shares two or more resources with a {other} resource affinity rule")
    _global_checks(add, node_rules, resource_rules, positive, negative)
    return errors


def _global_checks(add, node_rules: dict, resource_rules: dict, positive: dict, negative: dict) -> None:
    """Rules.pm's inter-plugin checks between node-affinity and resource-affinity rules."""
    conflicts = []
    for rid, options in resource_rules.items():
        paired = [nid for nid, o in node_rules.items() if resources_of(options) & resources_of(o)]
        if any(len(set(nodes_of(node_rules[nid]).values())) > 1 for nid in paired):
            conflicts += [("resource-affinity", rid)] + [("node-affinity", nid) for nid in paired]
    for kind, rid in sorted(conflicts):
        add(rid, "resources are in node affinity rules with multiple priorities" if kind == "resource-affinity"
            else "resources are in a resource affinity rule and cannot be in a node affinity rule with multiple "
                 "priorities")
    conflicts = []
    for ids, union in disjoint_sets(positive):
        paired = [nid for nid, o in node_rules.items() if union & resources_of(o)]
        if len(paired) > 1:
            conflicts += [("positive", pid) for pid in ids] + [("node-affinity", nid) for nid in paired]
    for kind, rid in sorted(conflicts):
        add(rid, "resources are in multiple node affinity rules" if kind == "positive"
            else "at least one resource is in a positive resource affinity rule and there are other resources in "
                 "at least one other node affinity rule already")
    conflicts = []
    for rid, options in negative.items():
        located: set[str] = set()
        allowed: set[str] = set()
        paired = []
        for nid, o in node_rules.items():
            common = resources_of(options) & resources_of(o)
            if common:
                located |= common
                allowed |= set(nodes_of(o))
                paired.append(nid)
        if len(allowed) < len(located):
            conflicts += [("negative", rid)] + [("node-affinity", nid) for nid in paired]
    for kind, rid in sorted(conflicts):
        add(rid, "two or more resources are restricted to less nodes than available to the resources"
            if kind == "negative" else "at least one resource is in a negative resource affinity rule and this "
                                       "rule would restrict these to less nodes than available to the resources")


def effective_rules(rules: dict[str, dict], nodes: list[str]) -> dict[str, dict]:
    """Rules.pm's transform: the enabled, feasible rules, with ResourceAffinity.pm's and Rules.pm's transforms
    applied (what the CRM compiles and places with)."""
    errors = feasibility_errors(rules, nodes)
    kept = {rid: dict(o) for rid, o in rules.items() if rid not in errors and not int(o.get("disable") or 0)}
    positive = enabled(kept, "resource-affinity", "positive")
    for ids, union in disjoint_sets(positive):  # merge_connected_positive_resource_affinity_rules
        if len(ids) > 1:
            for rid in ids:
                del kept[rid]
            kept["_merged-" + "-".join(ids)] = {"type": "resource-affinity", "affinity": "positive",
                                                "resources": ",".join(sorted(union))}
    positive = enabled(kept, "resource-affinity", "positive")
    negative = enabled(kept, "resource-affinity", "negative")
    for pid, options in sorted(positive.items()):  # create_implicit_negative_resource_affinity_rules
        together = resources_of(options)
        separated_from: dict[str, set[str]] = {}
        for neg in negative.values():
            for sid in together & resources_of(neg):
                for csid in resources_of(neg) - {sid}:
                    separated_from.setdefault(csid, set()).add(sid)
        for csid, sids in sorted(separated_from.items()):
            for sid in sorted(together - sids):
                kept[f"_implicit-negative-{pid}-{sid}-{csid}"] = {
                    "type": "resource-affinity", "affinity": "negative", "resources": f"{sid},{csid}"}
    node_rules = enabled(kept, "node-affinity")
    for options in positive.values():  # create_implicit_positive_resource_affinity_node_affinity_rules
        together = resources_of(options)
        for nid in sorted(node_rules):
            if together & resources_of(kept[nid]):
                kept[nid]["resources"] = ",".join(sorted(resources_of(kept[nid]) | together))
                break
    return kept


def affinitive_resources(rules: dict[str, dict], sid: str) -> tuple[set[str], set[str]]:
    """get_affinitive_resources over effective rules: the sids kept together with sid, and those kept apart."""
    together: set[str] = set()
    separate: set[str] = set()
    for options in enabled(rules, "resource-affinity").values():
        res = resources_of(options)
        if sid in res:
            (together if options.get("affinity") == "positive" else separate).update(res - {sid})
    return together, separate
