"""Object identifiers: opaque strings with a kind prefix (`net-3f9a...`), typed apart."""

from __future__ import annotations

import secrets
from typing import NewType

TenantId = NewType("TenantId", str)
NetworkId = NewType("NetworkId", str)
HostId = NewType("HostId", str)
NodeId = NewType("NodeId", str)
TokenId = NewType("TokenId", str)
EventSeq = NewType("EventSeq", int)

# The prefix of each kind's ids; a reader of a log knows what an id names.
PREFIXES = {"tenant": "ten", "network": "net", "host": "hst", "node": "nod", "token": "tok"}


def new_id(kind: str) -> str:
    """A fresh random id of `kind` (48 random bits: collisions are not a practical concern)."""
    return f"{PREFIXES[kind]}-{secrets.token_hex(6)}"
