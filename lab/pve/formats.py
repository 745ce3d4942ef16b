"""PVE's named string formats (`format: pve-vmid`, …), each with the text PVE dies with.

The checks and texts are those of pve-common (src/PVE/JSONSchema.pm, ParseUtils.pm), pve-container
(src/PVE/LXC/Config.pm), pve-storage (src/PVE/Storage/Plugin.pm) and pve-access-control
(src/PVE/AccessControl.pm). A route whose schema names a format missing here is refused when it is
declared (lab/pve/routes.py): add the format first, from its PVE source.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path


class FormatError(ValueError):
    """A value a format refuses; str() is PVE's message (with its trailing newline)."""


Check = Callable[[str], None]
FORMATS: dict[str, Check] = {}

_OCTET = r"(?:25[0-5]|(?:2[0-4]|1[0-9]|[1-9])?[0-9])"
IPV4RE = rf"(?:(?:{_OCTET}\.){{3}}{_OCTET})"
_H16 = r"(?:[0-9a-fA-F]{1,4})"
_LS32 = rf"(?:(?:{IPV4RE}|{_H16}:{_H16}))"
IPV6RE = (
    "(?:"
    rf"(?:(?:(?:{_H16}:){{6}}){_LS32})|"
    rf"(?:(?:::(?:{_H16}:){{5}}){_LS32})|"
    rf"(?:(?:(?:{_H16})?::(?:{_H16}:){{4}}){_LS32})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}){_LS32})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}){_LS32})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,3}}{_H16})?::(?:{_H16}:){{1}}){_LS32})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,4}}{_H16})?::){_LS32})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,5}}{_H16})?::){_H16})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,6}}{_H16})?::)))"
)
ZONE_TAB = Path("/usr/share/zoneinfo/zone.tab")


def register(name: str):
    """Register a format check under PVE's name."""

    def deco(fn: Check) -> Check:
        FORMATS[name] = fn
        return fn

    return deco


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise FormatError(message + "\n")


def _full(pattern: str, value: str, flags: int = 0) -> bool:
    return re.match(rf"^(?:{pattern})$", value, flags) is not None


def split_list(text: str) -> list[str]:
    """PVE's split_list: NUL-separated, else commas, semicolons and blanks."""
    if "\0" in text:
        return text.split("\0")
    return re.sub(r"[,;]", " ", text).split()


def check(name: str, value: str) -> None:
    """Apply a named format (with PVE's `-list` and `-opt` suffixes); raise FormatError."""
    base, _, kind = name.rpartition("-") if name.endswith(("-list", "-opt")) else (name, "", "")
    fn = FORMATS.get(base)
    if fn is None:
        raise FormatError(f"undefined format '{name}'\n")
    if kind == "list":
        for item in split_list(value):
            fn(item)
    elif kind == "opt":
        if value:
            fn(value)
    else:
        fn(value)


def known(name: str) -> bool:
    """Tell whether a named format (possibly -list/-opt, or a named property string) is implemented here."""
    base = name.rpartition("-")[0] if name.endswith(("-list", "-opt")) else name
    return base in FORMATS or name in PROPERTY_FORMATS


@register("string")
def _string(value: str) -> None:
    """Any string (allows `string-list`)."""


@register("pve-configid")
def configid(value: str) -> None:
    """A config key or snapshot name."""
    _need(_full(r"[a-z][a-z0-9_-]+", value, re.IGNORECASE), f"invalid configuration ID '{value}'")


def _parse_id(value: str, kind: str) -> None:
    _need(len(value) >= 2, f"{kind} ID '{value}' cannot be shorter than 2 characters")
    _need(_full(r"[a-z][a-z0-9\-\_\.]*[a-z0-9]", value, re.IGNORECASE), f"{kind} ID '{value}' contains illegal characters")


@register("pve-storage-id")
def storage_id(value: str) -> None:
    """A storage ID."""
    _parse_id(value, "storage")


@register("pve-vmid")
def vmid(value: str) -> None:
    """A VM/CT ID."""
    _need(_full(r"[1-9][0-9]{2,8}", value), "value does not look like a valid VM ID")


@register("pve-node")
def node(value: str) -> None:
    """A node name."""
    _need(_full(r"[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?", value), "value does not look like a valid node name")


@register("pve-ha-resource-id")
def ha_resource_id(value: str) -> None:
    """An HA resource id (ct:100) (pve-ha-manager's Tools.pm)."""
    _need(_full(r"[a-z]+:\S+", value), "value does not look like a valid ha resource id")


@register("pve-ha-resource-or-vm-id")
def ha_resource_or_vm_id(value: str) -> None:
    """An HA resource id or a bare VM/CT id."""
    _need(_full(r"[a-z]+:\S+|\d+", value), "value does not look like a valid ha resource id")


@register("pve-ha-node")
def ha_node(value: str) -> None:
    """A node name with an optional priority (node:2)."""
    _need(_full(r"[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?(:\d+)?", value), "value does not look like a valid ha node")


@register("storage-pair")
def storage_pair(value: str) -> None:
    """One entry of a storage map: `1`, a storage id, or source:target (pve-common's parse_idmap)."""
    if value == "1":
        return
    for part in value.split(":", 1):
        _need(_full(r"[a-z][a-z0-9\-\_\.]*[a-z0-9]", part, re.IGNORECASE), f"invalid storage ID '{part}'")


@register("mac-addr")
def mac_addr(value: str) -> None:
    """A unicast MAC address."""
    _need(_full(r"[a-f0-9][02468ace](?::[a-f0-9]{2}){5}", value, re.IGNORECASE),
          "value does not look like a valid unicast MAC address")


@register("ipv4")
def ipv4(value: str) -> None:
    """An IPv4 address."""
    _need(_full(IPV4RE, value), "value does not look like a valid IPv4 address")


@register("ipv6")
def ipv6(value: str) -> None:
    """An IPv6 address."""
    _need(_full(IPV6RE, value), "value does not look like a valid IPv6 address")


@register("ip")
def ip(value: str) -> None:
    """An IPv4 or IPv6 address."""
    _need(_full(f"{IPV4RE}|{IPV6RE}", value), "value does not look like a valid IP address")


def _cidr(value: str, address: str, top: int) -> bool:
    m = re.match(rf"^(?:{address})(?:/(\d+))$", value)
    return m is not None and 7 < int(m.group(1)) <= top


@register("CIDRv4")
def cidrv4(value: str) -> None:
    """An IPv4 network."""
    _need(_cidr(value, IPV4RE, 32), "value does not look like a valid IPv4 CIDR network")


@register("CIDR")
def cidr(value: str) -> None:
    """An IPv4 or IPv6 network."""
    _need(_cidr(value, IPV4RE, 32) or _cidr(value, IPV6RE, 128), "value does not look like a valid CIDR network")


@register("pve-ipv4-config")
def ipv4_config(value: str) -> None:
    """ip= of a CT's network: dhcp, manual or an IPv4 CIDR."""
    _need(value in ("dhcp", "manual") or _cidr(value, IPV4RE, 32),
          "value does not look like a valid ipv4 network configuration")


@register("pve-ipv6-config")
def ipv6_config(value: str) -> None:
    """ip6= of a CT's network: auto, dhcp, manual or an IPv6 CIDR."""
    _need(value in ("auto", "dhcp", "manual") or _cidr(value, IPV6RE, 128),
          "value does not look like a valid ipv6 network configuration")


@register("lxc-ip-with-ll-iface")
def ip_with_ll_iface(value: str) -> None:
    """A nameserver: an IP, or a link-local IPv6 with %iface."""
    m = re.match(r"^(fe80:[^%]+)%(.*)$", value)
    if m and _full(f"{IPV4RE}|{IPV6RE}", m.group(1)) and _full(r"[a-z][a-z0-9_]{1,20}([:\.]\d+)?", m.group(2),
                                                              re.IGNORECASE):
        return
    ip(value)


@register("dns-name")
def dns_name(value: str) -> None:
    """A DNS name."""
    name = r"([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)"
    _need(_full(rf"({name}\.)*{name}", value), "value does not look like a valid DNS name")


@register("disk-size")
def disk_size(value: str) -> None:
    """A size with an optional K/M/G/T unit."""
    _need(_full(r"(\d+(\.\d+)?)([KMGT](?:iB)?)?", value), f"value does not look like a valid disk size: {value}")


@register("pve-startup-order")
def startup_order(value: str) -> None:
    """startup: [order=]N,up=N,down=N."""
    parts = [p for p in value.split(",") if not re.match(r"^\s*$", p)]
    ok = bool(value) and all(re.match(r"^((order=)?\d+|up=\d+|down=\d+)$", p) for p in parts)
    _need(ok, "unable to parse startup options")


@register("pve-tag")
def tag(value: str) -> None:
    """One tag."""
    _need(_full(r"[a-z0-9_][a-z0-9_\-\+\.]*", value, re.IGNORECASE), "invalid characters in tag")


@register("pve-task-status-type")
def task_status_type(value: str) -> None:
    """ok, error, warning or unknown."""
    _need(_full("ok|error|warning|unknown", value, re.IGNORECASE), f"invalid status '{value}'")


@register("timezone")
def timezone(value: str) -> None:
    """A zone of zone.tab, or UTC."""
    if value == "UTC":
        return
    zones = set()
    if ZONE_TAB.exists():
        for line in ZONE_TAB.read_text().splitlines():
            if not line.lstrip().startswith("#") and len(line.split("\t")) > 2:
                zones.add(line.split("\t")[2])
    _need(value in zones, f"invalid time zone '{value}'")


@register("pve-ct-timezone")
def ct_timezone(value: str) -> None:
    """A CT's timezone: `host` or a zone."""
    if value != "host":
        timezone(value)


@register("pve-lxc-mp-string")
def mp_string(value: str) -> None:
    """A mount point path without /./ or /../."""
    _need(not (re.search(r"/\.\.?/", value) or re.search(r"/\.\.?$", value) or value.startswith("../")),
          f"{value} contains illegal character sequences")


@register("pve-lxc-dev-string")
def dev_string(value: str) -> None:
    """A device path under /dev/."""
    _need(not re.search(r"/\.\.?(?:/|$)", value) and value.startswith("/dev/"), f"{value} is not a valid device path")


@register("pve-volume-id")
def volume_id(value: str) -> None:
    """storage:volume."""
    _need(_full(r"([a-z][a-z0-9\-\_\.]*[a-z0-9]):(.+)", value, re.IGNORECASE | re.DOTALL),
          f"unable to parse volume ID '{value}'")


@register("pve-poolid")
def poolid(value: str) -> None:
    """A pool name, at most three levels."""
    _need(len(value.split("/")) <= 3, f"pool name '{value}' nested too deeply (max levels = 3)")
    _need(_full(r"[A-Za-z0-9\.\-_]+(?:/[A-Za-z0-9\.\-_]+){0,2}", value),
          f"pool name '{value}' contains invalid characters")


@register("pve-storage-content")
def storage_content(value: str) -> None:
    """A storage content type (those of a `dir` storage, which has them all)."""
    _need(value in ("images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import"),
          f"invalid content type '{value}'")


_EMAIL_USER = r"[\w\+\-\~]+(\.[\w\+\-\~]+)*"
_EMAIL = rf"{_EMAIL_USER}@[a-zA-Z0-9\-]+(\.[a-zA-Z0-9\-]+)*"


@register("email-or-username")
def email_or_username(value: str) -> None:
    """A mail address or a user name (vzdump's mailto)."""
    _need(_full(_EMAIL, value) or _full(_EMAIL_USER, value),
          "value does not look like a valid email address or user name")


@register("pve-day-of-week")
def day_of_week(value: str) -> None:
    """mon..sun (pve-manager PVE/API2/Backup.pm)."""
    _need(_full("mon|tue|wed|thu|fri|sat|sun", value), f"invalid day '{value}'")


@register("pve-iface")
def iface(value: str) -> None:
    """A network interface name."""
    _need(_full(r"[a-z][a-z0-9_]{1,20}([:\.]\d+)?", value, re.IGNORECASE), f"invalid network interface name '{value}'")


@register("address")
def address(value: str) -> None:
    """An IP address or a DNS name."""
    name = r"([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)"
    _need(_full(f"{IPV4RE}|{IPV6RE}", value) or _full(rf"({name}\.)*{name}", value),
          f"value does not look like a valid address: {value}")

CALENDAR_WORDS = ("minutely", "hourly", "daily", "weekly", "monthly", "yearly", "annually", "quarterly",
                  "semiannually", "semi-annually")
_DAYS = "mon|tue|wed|thu|fri|sat|sun|monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_WEEKDAYS = rf"(?:{_DAYS})(?:\.\.(?:{_DAYS}))?(?:,(?:{_DAYS})(?:\.\.(?:{_DAYS}))?)*"
_VALUE = r"(?:\*|\d{1,4}(?:\.\.\d{1,4})?)(?:/\d{1,4})?"
_COMPONENT = rf"{_VALUE}(?:,{_VALUE})*"


@register("pve-calendar-event")
def calendar_event(value: str) -> None:
    """A job schedule: systemd-like `[WEEKDAYS] [[YEAR-]MONTH-DAY] [HOUR:]MINUTE[:SECOND]`, or daily, weekly, ….

    PVE parses it in Rust (proxmox-time); this accepts that grammar's documented forms, and the part of the
    message after the dash is this emulator's, not PVE's.
    """
    text = value.strip().lower()
    if text in CALENDAR_WORDS:
        return
    parts = text.split()
    ok = bool(parts)
    if parts and re.fullmatch(_WEEKDAYS, parts[0]):
        parts = parts[1:]
    if ok and parts and "-" in parts[0]:
        ok = re.fullmatch(rf"(?:{_COMPONENT}-)?{_COMPONENT}-{_COMPONENT}", parts[0]) is not None
        parts = parts[1:]
    if ok and parts:
        ok = len(parts) == 1 and re.fullmatch(rf"{_COMPONENT}(?::{_COMPONENT}){{0,2}}", parts[0]) is not None
    _need(ok, f"invalid calendar event '{value}' - unable to parse calendar event")


_KEEP = {"optional": 1, "type": "integer", "minimum": "0"}
# Named property-string formats (PVE registers a hash, which the api-viewer leaves as a name): the keys'
# schemas and the validator PVE runs on the parsed result.
PROPERTY_FORMATS: dict[str, dict] = {
    "prune-backups": {"keep-all": {"optional": 1, "type": "boolean"}, "keep-last": _KEEP, "keep-hourly": _KEEP,
                      "keep-daily": _KEEP, "keep-weekly": _KEEP, "keep-monthly": _KEEP, "keep-yearly": _KEEP},
    # pve-guest-common src/PVE/VZDump/Common.pm: $fleecing_fmt and $performance_fmt
    "backup-fleecing": {"enabled": {"optional": 1, "type": "boolean", "default": 0},
                        "storage": {"optional": 1, "type": "string", "format": "pve-storage-id"}},
    "backup-performance": {"max-workers": {"optional": 1, "type": "integer", "minimum": 1, "maximum": 256},
                           "pbs-entries-max": {"optional": 1, "type": "integer", "minimum": 1}},
}


def _prune_backups(parsed: dict) -> None:
    """pve-storage's validate_prune_backups: keep-all excludes every other option."""
    others = [k for k, v in parsed.items() if k != "keep-all" and int(v) > 0]
    if others and parsed.get("keep-all") == "1":
        raise FormatError("keep-all cannot be set together with other options.\n")


PROPERTY_VALIDATORS = {"prune-backups": _prune_backups}


# --- pve-firewall's formats (src/PVE/Firewall.pm): addresses, ports, protocols, ICMP types ---------------------
FW_NAME = r"[A-Za-z][A-Za-z0-9\-\_]+"  # $ip_alias_pattern, $ipset_name_pattern, $security_group_name_pattern
_ICMP_TYPES = frozenset(str.split(
    "any echo-reply destination-unreachable network-unreachable host-unreachable protocol-unreachable "
    "port-unreachable fragmentation-needed source-route-failed network-unknown host-unknown network-prohibited "
    "host-prohibited communication-prohibited host-precedence-violation precedence-cutoff source-quench redirect "
    "network-redirect host-redirect echo-request router-advertisement router-solicitation time-exceeded "
    "ttl-zero-during-transit ttl-zero-during-reassembly parameter-problem ip-header-bad required-option-missing "
    "timestamp-request timestamp-reply address-mask-request address-mask-reply no-route beyond-scope "
    "address-unreachable failed-policy reject-route packet-too-big bad-header unknown-header-type unknown-option "
    "neighbor-solicitation neighbour-solicitation neighbor-advertisement neighbour-advertisement"))


def _etc_names(path: str, column: int) -> set[str]:
    """Names and numbers of /etc/services or /etc/protocols (pve-firewall's get_etc_services/protocols)."""
    names: set[str] = set()
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return names
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) > column:
            names.add(fields[0])
            names.add(fields[column].split("/")[0])
            names.update(fields[column + 1:])
    return names


def _net_ip_ok(text: str) -> bool:
    """Net::IP->new: an address, a network (host bits zero), or a range a-b."""
    try:
        if "-" in text:
            first, last = (ipaddress.ip_address(p.strip()) for p in text.split("-", 1))
            return first.version == last.version and first <= last
        ipaddress.ip_network(text, strict=True)
        return True
    except ValueError:
        return False


@register("IPorCIDR")
def ip_or_cidr(value: str) -> None:
    """pve_verify_ip_or_cidr: an address or a network (host bits may be set: clean_cidr clears them)."""
    _need(_full(rf"(?:{IPV6RE}|{IPV4RE})(?:/\d+)?", value),
          "value does not look like a valid IP address or CIDR network")
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        _need(False, f"Invalid prefix length in {value}")


@register("IPorCIDRorAlias")
def ip_or_cidr_or_alias(value: str) -> None:
    """pve_verify_ip_or_cidr_or_alias: an alias name ([dc/|guest/]name), else IPorCIDR."""
    if _full(rf"(dc/|guest/)?{FW_NAME}", value):
        return
    ip_or_cidr(value)


@register("pve-fw-addr-spec")
def fw_addr_spec(value: str) -> None:
    """parse_address_list: +ipset, an alias, or a comma list of addresses/networks (one range alone)."""
    if re.match(r"^\+\S+$", value):
        _need(len(value) <= 65, "ipset name too long")
        return
    if _full(rf"(dc/|guest/)?{FW_NAME}", value):
        _need(len(value) <= 64, "alias name too long")
        return
    elements = value.split(",")
    _need(",".join(e for e in elements if e) == value, "extraneous commas in list")
    for element in elements:
        _need(_net_ip_ok(element), f"invalid IP address: Invalid IP {element}")
    _need(not (len(elements) > 1 and any("-" in e for e in elements)), "you can't use a range in a list")


def _port_list(value: str, dport: bool) -> None:
    """parse_port_name_number_or_range: numbers, ranges a:b, /etc/services names; at most 15 numbers."""
    services = _etc_names("/etc/services", 1)
    elements = value.split(",")
    _need(",".join(e for e in elements if e) == value, "extraneous commas in list")
    count, icmp = 0, False
    for item in elements:
        if m := re.fullmatch(r"([0-9]+):([0-9]+)", item):
            first, last = int(m.group(1)), int(m.group(2))
            count += 2
            _need(first <= 65535, f"invalid port '{m.group(1)}'")
            _need(last <= 65535, f"invalid port '{m.group(2)}'")
            _need(first <= last, f"backwards range '{first}:{last}' not allowed, did you mean '{last}:{first}'?")
        elif re.fullmatch(r"[0-9]+", item):
            count += 1
            _need(int(item) <= 65535, f"invalid port '{item}'")
        elif dport and item in _ICMP_TYPES:
            icmp = True
        else:
            _need(item in services, f"invalid port '{item}'")
    _need(not (icmp and count > 0), "ICMP ports not allowed in port range")
    _need(count <= 15, "too many entries in port list (> 15 numbers)")


@register("pve-fw-dport-spec")
def fw_dport_spec(value: str) -> None:
    """A destination port list."""
    _port_list(value, dport=True)


@register("pve-fw-sport-spec")
def fw_sport_spec(value: str) -> None:
    """A source port list."""
    _port_list(value, dport=False)


@register("pve-fw-protocol-spec")
def fw_protocol_spec(value: str) -> None:
    """A protocol of /etc/protocols, by name or number."""
    _need(not value or value in _etc_names("/etc/protocols", 1), f"unknown protocol '{value}'")


@register("pve-fw-icmp-type-spec")
def fw_icmp_type_spec(value: str) -> None:
    """An ICMP or ICMPv6 type name."""
    _need(not value or value in _ICMP_TYPES, f"invalid icmp-type value '{value}'")
