"""How a message names a host: by its hostname when that is safe to show and unique, else by its index."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from plugins.inventory.masking import looks_secret

_SAFE_NAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")  # a valid hostname: safe to show in a key path


def host_ref(hostnames: list[Any], index: int) -> str:
    """`hosts[app-demo]` when that valid hostname names one host only, else `hosts[2]`."""
    return host_refs(hostnames)[index] if 0 <= index < len(hostnames) else f"hosts[{index}]"


def host_refs(hostnames: list[Any]) -> list[str]:
    """host_ref of every host, in order."""
    counts = Counter(name for name in hostnames if isinstance(name, str))  # a hostname may be a list: unhashable
    return [f"hosts[{name}]" if isinstance(name, str) and _SAFE_NAME.match(name) and not looks_secret(name)
            and counts[name] == 1 else f"hosts[{index}]" for index, name in enumerate(hostnames)]
