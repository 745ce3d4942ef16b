"""net0 parsing for the lab: static addresses inside 198.18.0.0/15 only, fixed MACs."""

from __future__ import annotations

import ipaddress
import re
import urllib.parse

from . import apischema
from .errors import param_error

LAB_NET = ipaddress.ip_network("198.18.0.0/15")
MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")


def _net_keys() -> tuple[str, ...]:
    """The keys of a CT's net[n] as PVE's schema has them, in the order PVE writes them (name first)."""
    config = apischema.methods()["PUT /nodes/{node}/lxc/{vmid}/config"]["parameters"]["properties"]
    return ("name", *sorted(k for k in config["net[n]"]["format"] if k != "name"))


KEYS = _net_keys()


def default_mac(vmid: int) -> str:
    """Return a fixed MAC for a CT (PVE's BC:24:11 prefix + the vmid)."""
    return f"BC:24:11:{(vmid >> 16) & 255:02X}:{(vmid >> 8) & 255:02X}:{vmid & 255:02X}"


def _bad(msg: str):
    return param_error({"net0": msg})


def parse_net(value: str, vmid: int) -> tuple[str, dict]:
    """Return (normalized net0 string, fields incl. address/prefix) or raise a 400 on net0.

    Without hwaddr the mac is None: the driver picks the host's fixed MAC (see with_mac). The value has passed
    PVE's schema already: what is refused here is what the lab cannot do (no static address in 198.18.0.0/15).
    """
    fields: dict[str, str] = {}
    for part in value.split(","):
        key, sep, val = part.partition("=")
        if not sep or key not in KEYS:
            raise _bad(f"invalid format - format error\nnet0.{key}: property is not defined in schema")
        fields[key] = val
    fields.setdefault("name", "eth0")
    fields.setdefault("type", "veth")
    ip = fields.get("ip")
    if not ip or ip in ("dhcp", "manual"):
        raise _bad("the lab needs a static ip=198.18.x.y/nn (dhcp and manual are not served)")
    try:
        iface = ipaddress.ip_interface(ip)
    except ValueError:
        raise _bad(f"invalid format - format error\nnet0.ip: invalid format - invalid CIDR '{ip}'") from None
    if iface.ip not in LAB_NET:
        raise _bad(f"address {iface.ip} is outside the lab network {LAB_NET}; the lab never uses another")
    gw = fields.get("gw")
    if gw:
        try:
            gw_ip = ipaddress.ip_address(gw)
        except ValueError:
            raise _bad(f"invalid format - format error\nnet0.gw: invalid format - invalid IP '{gw}'") from None
        if gw_ip not in LAB_NET:
            raise _bad(f"gateway {gw_ip} is outside the lab network {LAB_NET}")
    mac = fields.get("hwaddr")
    if mac is not None and not MAC.match(mac):
        raise _bad("invalid format - format error\nnet0.hwaddr: value does not match the regex pattern")
    if mac:
        fields["hwaddr"] = mac.upper()
    text = ",".join(f"{k}={fields[k]}" for k in KEYS if k in fields)
    info = {"ip": str(iface.ip), "prefix": iface.network.prefixlen, "gateway": gw or "",
            "mac": fields.get("hwaddr"), "bridge": fields.get("bridge", "")}
    return text, info


def decode_keys(value: str) -> str:
    """Return ssh-public-keys text, decoding the percent-encoding clients apply for PVE."""
    if "%" in value and " " not in value:
        return urllib.parse.unquote(value)
    return value


def with_mac(net0: str, mac: str) -> str:
    """Return net0 with hwaddr set (after the driver chose the fixed MAC)."""
    fields = dict(part.partition("=")[::2] for part in net0.split(","))
    fields["hwaddr"] = mac.upper()
    return ",".join(f"{k}={fields[k]}" for k in KEYS if k in fields)
