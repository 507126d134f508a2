"""The agent core's world (`support.agent_world`) with an edge pool, for the core's edge tests
(direct and anycast mode alike): external network internet 30.0.0.0/16, edge hosts gw1 and gw2
(an `AgentCore` each), edge pool egress of znet with the settings a test gives, gateways e1
(gw1, 30.0.100.1) and e2 (gw2, 30.0.100.2), route 0.0.0.0/0 -> egress.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from onm.addressing import HostPrefix
from onm.agent.core import AgentCore
from onm.manager import edge_pools, externals, hosts, reads, routes
from onm.model.principal import ADMIN
from support.agent_world import MTU, NOW, Lab


@dataclass
class EdgeWorld:
    lab: Lab
    gw: dict[str, AgentCore]
    """Edge host name -> its agent's core."""
    prefixes: dict[str, int]
    """Edge host name -> its /64, as a number."""
    vni: int
    """znet's network id, the one network the gateways serve."""
    anycast: HostPrefix | None
    """The pool's anycast /64 (anycast mode only)."""

    def snapshot_all(self, now: dt.datetime = NOW) -> None:
        self.lab.snapshot("r", now)
        self.lab.snapshot("s", now)
        for name, core in self.gw.items():
            with self.lab.store.read(ADMIN, now) as tx:
                core.apply_snapshot(reads.snapshot(tx, name), now)


def edge_world(world: Lab, settings: Mapping[str, str]) -> EdgeWorld:
    """`world` with the edge hosts, pool egress (made with `settings`) and its route, every
    agent (the gateways' too) given its snapshot."""
    prefixes = {}
    with world.store.write(ADMIN, NOW) as tx:
        externals.create(tx, "internet", "30.0.0.0/16")
        for i, name in enumerate(("gw1", "gw2"), start=1):
            host, _ = hosts.create(
                tx, name, f"fd00:0:101:90{i}::/64", role="edge", external="internet"
            )
            prefixes[name] = host.prefix.value
        made = edge_pools.create(tx, "egress", "z/znet", dict(settings))
        edge_pools.add_gateway(tx, "z/znet/egress", "e1", "gw1", "30.0.100.1")
        edge_pools.add_gateway(tx, "z/znet/egress", "e2", "gw2", "30.0.100.2")
        routes.add(tx, "z/znet", "0.0.0.0/0", "egress")
    gateways = {"gw1": AgentCore(MTU), "gw2": AgentCore(MTU)}
    result = EdgeWorld(world, gateways, prefixes, 0, made.anycast)
    result.snapshot_all()
    [result.vni] = result.gw["gw1"].tables.duties
    return result
