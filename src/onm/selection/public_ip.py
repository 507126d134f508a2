"""Which gateway of an edge pool holds a public IP (issue #10; DESIGN.md section 5).

A public IP is a node's 1:1 address on the external network. Exactly one gateway may answer
ARP for it there and keep its DNAT state, so the pool's gateways agree on one **owner**: the
entry of the pool's Maglev table (`onm.selection.maglev`, over the sorted ids of the pool's
*active* gateways on the public IP's external network) that a digest of the address picks.
The manager computes it when it compiles snapshots and ships it to the gateways (which put the
address on their external interface and DNAT it) and to the node's host (whose agent sends the
node's flows through the owner, so replies leave where the connection's state is). The rule is
the flows' own, so a gateway joining or being drained moves about its share of public IPs; a
draining gateway keeps none (its established connections through a public IP end with the
move, as they would at any 1:1 NAT whose owner changes). No active gateway: no owner.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from onm.selection import maglev
from onm.selection.hashing import digest64


def owner(ip: ipaddress.IPv4Address, gateways: Iterable[str]) -> str | None:
    """The id of the gateway (among the active `gateways`, any order) that holds `ip`."""
    return maglev.lookup(maglev.build(gateways), digest64("public-ip", str(ip)))
