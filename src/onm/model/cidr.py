"""Which IPv4 CIDRs can be a tenant network: the one rule the manager and the lab loader share.

Rule: a tenant CIDR is unicast space that a node's IP stack and its gateway treat as ordinary,
forwardable addresses, and it is /8 to /30 long.

- Refused: every block below (IANA IPv4 Special-Purpose Address Registry, RFC 6890, plus the
  multicast and reserved classes), and any CIDR that overlaps one, e.g. 0.0.0.0/0, 192.0.0.0/8
  or 224.1.2.0/24. Addresses in them are not ordinary unicast: the kernel keeps loopback to
  itself, link-local is never forwarded by a router (so the agent's gateway could not route it),
  multicast and broadcast are not one node, "this network" is only a source, 240/4 is refused by
  most stacks, and 192.0.0.0/24 holds protocol roles (DS-Lite, NAT64 discovery, PCP anycast).
- Allowed: private use (10/8, 172.16/12, 192.168/16, RFC 1918), shared address space
  (100.64/10, RFC 6598, which tenants use for exactly this), benchmarking (198.18/15, RFC 2544),
  documentation (RFC 5737: a tenant overlay is not the public Internet its section 4 keeps them
  off) and public ranges (as cloud VPCs allow; the overlay keeps them apart by network id).
- Length /8 to /30: a CIDR needs its network and broadcast addresses, the gateway (its first
  address) and at least one node, so /31 and /32 hold no node (a /30 holds exactly one). Shorter
  than /8 always overlaps a refused block or spans several registry entries, and no tenant needs
  more than 16M addresses in one CIDR (a network may hold several). AWS VPC's /16../28 is
  stricter because it reserves five addresses per subnet and scales its tables; onm needs neither.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

MIN_PREFIX: Final = 8
"""The shortest tenant CIDR (the largest network)."""
MAX_PREFIX: Final = 30
"""The longest tenant CIDR: network, gateway, one node, broadcast."""


@dataclass(frozen=True, slots=True)
class RefusedBlock:
    """An IPv4 block no tenant CIDR may touch."""

    block: ipaddress.IPv4Network
    name: str
    """What the block is, as the registry names it."""
    reference: str
    """The RFC section that reserves it."""

    def describe(self) -> str:
        return f"{self.block} ({self.name}, {self.reference})"


def _block(cidr: str, name: str, reference: str) -> RefusedBlock:
    return RefusedBlock(ipaddress.IPv4Network(cidr), name, reference)


# https://www.iana.org/assignments/iana-ipv4-special-registry/ (RFC 6890 section 2.2.2) and
# https://www.rfc-editor.org/rfc/rfc5771 for multicast.
REFUSED_BLOCKS: Final = (
    _block("0.0.0.0/8", '"this network"', "RFC 1122 section 3.2.1.3"),
    _block("127.0.0.0/8", "loopback", "RFC 1122 section 3.2.1.3"),
    _block("169.254.0.0/16", "link-local", "RFC 3927 section 2.1"),
    _block("192.0.0.0/24", "IETF protocol assignments", "RFC 6890 section 2.1"),
    _block("224.0.0.0/4", "multicast", "RFC 5771 section 3"),
    _block("255.255.255.255/32", "limited broadcast", "RFC 919 section 7, RFC 8190"),
    _block("240.0.0.0/4", "reserved for future use", "RFC 1112 section 4"),
)


def refusal(cidr: ipaddress.IPv4Network) -> str | None:
    """Why `cidr` cannot be a tenant network (None: it can)."""
    inside = [b for b in REFUSED_BLOCKS if cidr.subnet_of(b.block)]
    if inside:  # the most specific block that holds it all
        refused = max(inside, key=lambda b: b.block.prefixlen)
        return f"{cidr} is inside {refused.describe()}: not ordinary unicast space"
    for refused in REFUSED_BLOCKS:
        if cidr.overlaps(refused.block):
            return f"{cidr} overlaps {refused.describe()}: not ordinary unicast space"
    if cidr.prefixlen < MIN_PREFIX:
        return f"{cidr} is too large: /{MIN_PREFIX} is the largest (give several CIDRs)"
    if cidr.prefixlen > MAX_PREFIX:
        return f"{cidr} is too small: /{MAX_PREFIX} is the smallest (gateway and one node)"
    return None
