"""Object identifiers: opaque strings with a kind prefix (`net-3f9a...`), typed apart."""

from __future__ import annotations

import secrets
from typing import NewType

TenantId = NewType("TenantId", str)
NetworkId = NewType("NetworkId", str)
HostId = NewType("HostId", str)
NodeId = NewType("NodeId", str)
TokenId = NewType("TokenId", str)
PoolId = NewType("PoolId", str)
ExternalId = NewType("ExternalId", str)
EdgePoolId = NewType("EdgePoolId", str)
GatewayId = NewType("GatewayId", str)
RouteId = NewType("RouteId", str)
RuleId = NewType("RuleId", str)
PublicIpId = NewType("PublicIpId", str)
EventSeq = NewType("EventSeq", int)

# The prefix of each kind's ids; a reader of a log knows what an id names.
PREFIXES = {
    "tenant": "ten",
    "network": "net",
    "host": "hst",
    "node": "nod",
    "token": "tok",
    "pool": "pol",
    "external": "ext",
    "edge_pool": "edg",
    "gateway": "gwy",
    "route": "rte",
    "rule": "rul",
    "public_ip": "pip",
}
ID_HEX_DIGITS = 12
"""48 random bits after the prefix: collisions are not a practical concern."""


def new_id(kind: str) -> str:
    """A fresh random id of `kind`, e.g. `net-3f9a0c1d2e4b`."""
    return f"{PREFIXES[kind]}-{secrets.token_hex(ID_HEX_DIGITS // 2)}"
