"""A CT's firewall as pve-firewall writes and reads /etc/pve/firewall/<vmid>.fw: what vzdump archives as
./etc/vzdump/pct.fw and a restore puts back (pve-container src/PVE/VZDump/LXC.pm assemble copies the file, an
empty one when the CT has none; LXC/Create.pm restore_configuration copies it back).

The text follows pve-firewall's write_vm_config: `[OPTIONS]` (`key: value`), each `[IPSET name] # comment` (its
entries sorted, `!` for nomatch, `# comment`), then `[RULES]` (`|` before a disabled rule, IN/OUT/GROUP, the
action or `Macro(ACTION)`, then -i, -source, -dest, -p, -dport, -sport, -log, -icmp-type, `# comment`).
"""

from __future__ import annotations

import shlex

from .firewall import empty_ct

_FLAGS = (("iface", "-i"), ("source", "-source"), ("dest", "-dest"), ("proto", "-p"), ("dport", "-dport"),
          ("sport", "-sport"), ("log", "-log"), ("icmp-type", "-icmp-type"))


def _comment(text: str | None) -> str:
    return f" # {text}" if text and text.strip() else ""


def _rule_line(rule: dict) -> str:
    enabled = rule.get("enable")
    line = "|" if enabled is not None and not int(enabled) else ""
    line += str(rule.get("type", "in")).upper()
    line += f" {rule['macro']}({rule['action']})" if rule.get("macro") else f" {rule['action']}"
    for key, flag in _FLAGS:
        if rule.get(key) and (rule.get("type") != "group" or key == "iface"):
            line += f" {flag} {rule[key]}"
    return line + _comment(rule.get("comment"))


def render(ct: dict) -> str:
    """The <vmid>.fw text of a CT's firewall ('' when it has nothing: as vzdump writes a CT without one)."""
    out = ""
    if ct.get("options"):
        out += "[OPTIONS]\n\n" + "".join(f"{key}: {value}\n" for key, value in ct["options"].items()) + "\n"
    for name, ipset in sorted((ct.get("ipsets") or {}).items()):
        out += f"[IPSET {name}]{_comment(ipset.get('comment'))}\n\n"
        for entry in sorted(ipset.get("entries", []), key=lambda e: e["cidr"]):
            out += f"{'!' if entry.get('nomatch') else ''}{entry['cidr']}{_comment(entry.get('comment'))}\n"
        out += "\n"
    if ct.get("rules"):
        out += "[RULES]\n\n" + "".join(_rule_line(rule) + "\n" for rule in ct["rules"]) + "\n"
    return out


def _parse_rule(line: str) -> dict:
    rule: dict = {}
    text, _, comment = line.partition(" # ")
    if comment.strip():
        rule["comment"] = comment.strip()
    text = text.strip()
    rule["enable"] = 0 if text.startswith("|") else 1
    words = shlex.split(text.lstrip("|"))
    rule["type"], action = words[0].lower(), words[1]
    if "(" in action and action.endswith(")"):
        rule["macro"], action = action[:-1].split("(", 1)
    rule["action"] = action
    flags = {flag: key for key, flag in _FLAGS}
    for flag, value in zip(words[2::2], words[3::2], strict=False):
        if flag in flags:
            rule[flags[flag]] = value
    return rule


def parse(text: str) -> dict:
    """A CT's firewall from its <vmid>.fw text (the emulator's dict: options, rules, ipsets)."""
    ct = empty_ct()
    section, ipset = "", None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or (line.startswith("#") and section != "ipset"):
            continue
        if line.startswith("["):
            head, _, comment = line.partition("]")
            head = head[1:].strip()
            if head.upper().startswith("IPSET "):
                section, name = "ipset", head.split(None, 1)[1]
                ipset = ct["ipsets"].setdefault(name, {"entries": []})
                comment = comment.partition("#")[2].strip()
                if comment:
                    ipset["comment"] = comment
            else:
                section = head.lower()
            continue
        if section == "options":
            key, _, value = line.partition(":")
            value = value.strip()
            ct["options"][key.strip()] = int(value) if value.isdigit() else value
        elif section == "rules":
            ct["rules"].append(_parse_rule(line))
        elif section == "ipset" and ipset is not None:
            cidr, _, comment = line.partition("#")
            entry: dict = {"cidr": cidr.strip().lstrip("!")}
            if cidr.strip().startswith("!"):
                entry["nomatch"] = 1
            if comment.strip():
                entry["comment"] = comment.strip()
            ipset["entries"].append(entry)
    return ct
