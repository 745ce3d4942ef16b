"""Firewall endpoints (pve-firewall's src/PVE/API2/Firewall/*.pm): the cluster's options, security groups, IP sets
and aliases; each CT's options, rules and IP sets. Texts of the errors are pve-firewall's."""

from __future__ import annotations

from .errors import fail, param_error
from .firewall import RULE_KEYS, digest
from .routes import Call, route

CT = "/nodes/{node}/lxc/{vmid}/firewall"
CLUSTER_OPTIONS = ("enable", "policy_in", "policy_out", "policy_forward", "ebtables", "log_ratelimit")
CT_OPTIONS = ("enable", "dhcp", "ipfilter", "log_level_in", "log_level_out", "macfilter", "ndp", "policy_in",
              "policy_out", "radv")


def _fw(call: Call):
    return call.app.firewall


def _ct_exists(call: Call) -> int:
    call.app.record(call.vmid)  # PVE: the CT's config must exist
    return call.vmid


def _bools(params: dict) -> dict:
    return {k: int(v) if isinstance(v, bool) else v for k, v in params.items()}


def _set_options(options: dict, params: dict, keys: tuple[str, ...]) -> None:
    """PVE's update_options: `delete` removes keys, the others are set."""
    for key in (params.get("delete") or "").replace(";", ",").split(","):
        if key.strip():
            options.pop(key.strip(), None)
    options.update(_bools({k: v for k, v in params.items() if k in keys}))


def _listed_rules(rules: list[dict]) -> list[dict]:
    return [{**rule, "pos": pos} for pos, rule in enumerate(rules)]


def _insert_rule(rules: list[dict], params: dict) -> None:
    """PVE's create_rule: the new rule goes at `pos` (default: first)."""
    rule = {k: params[k] for k in RULE_KEYS if k in params}
    pos = params.get("pos", 0)
    rules.insert(min(pos, len(rules)), rule)


def _delete_rule(rules: list[dict], pos: int | None) -> None:
    pos = pos or 0
    if pos >= len(rules):
        raise fail(f"no rule at position {pos}")
    del rules[pos]


# --- cluster options ---------------------------------------------------------------------------------------------
@route("GET /cluster/firewall/options")
def cluster_options(call: Call):
    """GET the datacenter's firewall options."""
    options = _fw(call).cluster()["options"]
    return {**options, "digest": digest(options)}


@route("PUT /cluster/firewall/options")
def cluster_set_options(call: Call):
    """PUT the datacenter's firewall options."""
    _fw(call).change_cluster(lambda c: _set_options(c["options"], call.params, CLUSTER_OPTIONS))


# --- security groups ---------------------------------------------------------------------------------------------
@route("GET /cluster/firewall/groups")
def groups(call: Call):
    """GET the security groups."""
    found = _fw(call).cluster()["groups"]
    return [{"group": name, "digest": digest(g), **({"comment": g["comment"]} if g.get("comment") else {})}
            for name, g in sorted(found.items())]


@route("POST /cluster/firewall/groups")
def group_create(call: Call):
    """POST a new security group (or rename one)."""
    name, rename = call.params["group"], call.params.get("rename")

    def change(cluster: dict) -> None:
        found = cluster["groups"]
        if rename:
            if rename not in found:
                raise param_error({"group": f"Security group '{rename}' does not exist"})
            if name != rename and name in found:
                raise param_error({"group": f"Security group '{name}' does already exist"})
            found[name] = found.pop(rename)
        else:
            if name in found:
                raise param_error({"group": f"Security group '{name}' already exists"})
            found[name] = {"rules": []}
        if "comment" in call.params:
            found[name]["comment"] = call.params["comment"]

    _fw(call).change_cluster(change)


def _group(cluster: dict, name: str) -> dict:
    group = cluster["groups"].get(name)
    if group is None:
        raise fail(f"no such security group '{name}'")
    return group


@route("GET /cluster/firewall/groups/{group}")
def group_rules(call: Call):
    """GET a security group's rules."""
    return _listed_rules(_group(_fw(call).cluster(), call.params["group"])["rules"])


@route("POST /cluster/firewall/groups/{group}")
def group_rule_create(call: Call):
    """POST a rule into a security group."""
    _fw(call).change_cluster(lambda c: _insert_rule(_group(c, call.params["group"])["rules"], call.params))


@route("DELETE /cluster/firewall/groups/{group}")
def group_delete(call: Call):
    """DELETE an empty security group."""
    name = call.params["group"]

    def change(cluster: dict) -> None:
        if _group(cluster, name)["rules"]:
            raise fail(f"Security group '{name}' is not empty")
        del cluster["groups"][name]

    _fw(call).change_cluster(change)


@route("DELETE /cluster/firewall/groups/{group}/{pos}")
def group_rule_delete(call: Call):
    """DELETE a security group's rule at a position."""
    _fw(call).change_cluster(lambda c: _delete_rule(_group(c, call.params["group"])["rules"], call.params.get("pos")))


# --- IP sets (the cluster's and each CT's) -------------------------------------------------------------------------
def _ipset_list(ipsets: dict) -> list[dict]:
    return [{"name": name, "digest": digest(s), **({"comment": s["comment"]} if s.get("comment") else {})}
            for name, s in sorted(ipsets.items())]


def _ipset_create(ipsets: dict, params: dict) -> None:
    name, rename = params["name"], params.get("rename")
    if rename:
        if rename not in ipsets:
            raise param_error({"name": f"IPSet '{rename}' does not exist"})
        if name != rename and name in ipsets:
            raise param_error({"name": f"IPSet '{name}' does already exist"})
        ipsets[name] = ipsets.pop(rename)
    elif name in ipsets:
        raise param_error({"name": f"IPSet '{name}' does already exist"})
    else:
        ipsets[name] = {"entries": []}
    if "comment" in params:
        ipsets[name]["comment"] = params["comment"]


def _ipset(ipsets: dict, name: str) -> dict:
    found = ipsets.get(name)
    if found is None:
        raise fail(f"no such IPSet '{name}'")
    return found


def _ipset_entries(ipsets: dict, name: str) -> list[dict]:
    entries = _ipset(ipsets, name)["entries"]
    return [{**entry, "digest": digest(entries)} for entry in entries]


def _ipset_add(ipsets: dict, params: dict) -> None:
    entries = _ipset(ipsets, params["name"])["entries"]
    cidr = params["cidr"]
    if cidr.endswith("/0"):
        raise param_error({"cidr": "a zero prefix is not allowed in ipset entries"})
    if any(e["cidr"] == cidr for e in entries):
        raise param_error({"cidr": f"address '{cidr}' already exists"})
    entry = {"cidr": cidr}
    if params.get("comment"):
        entry["comment"] = params["comment"]
    if params.get("nomatch"):
        entry["nomatch"] = 1
    entries.append(entry)


def _ipset_delete(ipsets: dict, params: dict) -> None:
    name = params["name"]
    if _ipset(ipsets, name)["entries"] and not params.get("force"):
        raise fail(f"IPSet '{name}' is not empty")
    del ipsets[name]


def _ipset_remove(ipsets: dict, params: dict) -> None:
    entries = _ipset(ipsets, params["name"])["entries"]
    kept = [e for e in entries if e["cidr"] != params["cidr"]]
    if len(kept) == len(entries):
        raise param_error({"cidr": "no such IP/Network"})
    entries[:] = kept


@route("GET /cluster/firewall/ipset")
def ipsets(call: Call):
    """GET the cluster's IP sets."""
    return _ipset_list(_fw(call).cluster()["ipsets"])


@route("POST /cluster/firewall/ipset")
def ipset_create(call: Call):
    """POST a new IP set (or rename one)."""
    _fw(call).change_cluster(lambda c: _ipset_create(c["ipsets"], call.params))


@route("GET /cluster/firewall/ipset/{name}")
def ipset_entries(call: Call):
    """GET an IP set's entries."""
    return _ipset_entries(_fw(call).cluster()["ipsets"], call.params["name"])


@route("POST /cluster/firewall/ipset/{name}")
def ipset_add(call: Call):
    """POST an entry into an IP set."""
    _fw(call).change_cluster(lambda c: _ipset_add(c["ipsets"], call.params))


@route("DELETE /cluster/firewall/ipset/{name}")
def ipset_delete(call: Call):
    """DELETE an IP set (empty, or with force)."""
    _fw(call).change_cluster(lambda c: _ipset_delete(c["ipsets"], call.params))


@route("DELETE /cluster/firewall/ipset/{name}/{cidr}")
def ipset_remove(call: Call):
    """DELETE an entry of an IP set."""
    _fw(call).change_cluster(lambda c: _ipset_remove(c["ipsets"], call.params))


@route(f"GET {CT}/ipset")
def ct_ipsets(call: Call):
    """GET a CT's IP sets."""
    return _ipset_list(_fw(call).ct(_ct_exists(call))["ipsets"])


@route(f"POST {CT}/ipset")
def ct_ipset_create(call: Call):
    """POST a new IP set of a CT."""
    _fw(call).change_ct(_ct_exists(call), lambda c: _ipset_create(c["ipsets"], call.params))


@route(f"GET {CT}/ipset/{{name}}")
def ct_ipset_entries(call: Call):
    """GET the entries of a CT's IP set."""
    return _ipset_entries(_fw(call).ct(_ct_exists(call))["ipsets"], call.params["name"])


@route(f"POST {CT}/ipset/{{name}}")
def ct_ipset_add(call: Call):
    """POST an entry into a CT's IP set."""
    _fw(call).change_ct(_ct_exists(call), lambda c: _ipset_add(c["ipsets"], call.params))


@route(f"DELETE {CT}/ipset/{{name}}")
def ct_ipset_delete(call: Call):
    """DELETE a CT's IP set."""
    _fw(call).change_ct(_ct_exists(call), lambda c: _ipset_delete(c["ipsets"], call.params))


# --- aliases -------------------------------------------------------------------------------------------------------
@route("GET /cluster/firewall/aliases")
def aliases(call: Call):
    """GET the cluster's aliases."""
    found = _fw(call).cluster()["aliases"]
    return [{"name": name, "digest": digest(found), **alias} for name, alias in sorted(found.items())]


@route("POST /cluster/firewall/aliases")
def alias_create(call: Call):
    """POST a new alias."""

    def change(cluster: dict) -> None:
        name = call.params["name"]
        if name.lower() in {n.lower() for n in cluster["aliases"]}:  # pve-firewall keys aliases lower-cased
            raise param_error({"name": f"alias '{name}' already exists"})
        alias = {"cidr": call.params["cidr"]}
        if call.params.get("comment"):
            alias["comment"] = call.params["comment"]
        cluster["aliases"][name] = alias

    _fw(call).change_cluster(change)


@route("DELETE /cluster/firewall/aliases/{name}")
def alias_delete(call: Call):
    """DELETE an alias (absent: nothing to do, as PVE)."""
    _fw(call).change_cluster(lambda c: c["aliases"].pop(call.params["name"], None))


# --- a CT's options and rules --------------------------------------------------------------------------------------
@route(f"GET {CT}/options")
def ct_options(call: Call):
    """GET a CT's firewall options."""
    options = _fw(call).ct(_ct_exists(call))["options"]
    return {**options, "digest": digest(options)}


@route(f"PUT {CT}/options")
def ct_set_options(call: Call):
    """PUT a CT's firewall options."""
    _fw(call).change_ct(_ct_exists(call), lambda c: _set_options(c["options"], call.params, CT_OPTIONS))


@route(f"GET {CT}/rules")
def ct_rules(call: Call):
    """GET a CT's rules."""
    return _listed_rules(_fw(call).ct(_ct_exists(call))["rules"])


@route(f"POST {CT}/rules")
def ct_rule_create(call: Call):
    """POST a rule into a CT's firewall."""
    _fw(call).change_ct(_ct_exists(call), lambda c: _insert_rule(c["rules"], call.params))


@route(f"DELETE {CT}/rules/{{pos}}")
def ct_rule_delete(call: Call):
    """DELETE a CT's rule at a position."""
    _fw(call).change_ct(_ct_exists(call), lambda c: _delete_rule(c["rules"], call.params.get("pos")))


@route(f"DELETE {CT}/ipset/{{name}}/{{cidr}}")
def ct_ipset_remove(call: Call):
    """DELETE an entry of a CT's IP set."""
    _fw(call).change_ct(_ct_exists(call), lambda c: _ipset_remove(c["ipsets"], call.params))
