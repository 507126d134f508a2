"""The edge maps kept in step with the core: after every snapshot, answer, probe result and
timer, `EdgeSync.sync` brings the programs' routes, pools, Maglev tables and gateways to what
`edge_maps.edge_maps` computes from the core's tables and the gateways' liveness
(`onm.agent.probes`), writing only the differences (`edge_maps.write_edge`).

Rules:
- Nothing is computed while the inputs are those last written: the same `Tables` object (a
  snapshot replaces it whole) and the same gateways found dead. A gateway dying or answering
  again is such a change, so its pool's table and alive flags are rewritten at once, and only
  its flows move (the survivors' pins stay valid: slots and serials are kept).
- Adopted maps (a restarted agent's): what they hold is read back, and the first sync keeps
  the slots and serials of the pools and gateways still there, so the kernel's pins stay valid.
- A write that fails is logged and done again whole at the next sync (the slots and serials
  already handed out are kept, so no pin is taken for another gateway).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from onm.agent.datapath.ebpf.edge_maps import EdgeMaps, adopt, edge_maps, write_edge
from onm.agent.datapath.ebpf.maps import DatapathMaps
from onm.agent.probes import Probes
from onm.agent.tables import Tables
from onm.errors import OnmError
from onm.model.ids import GatewayId

log = logging.getLogger("onm.agent.datapath")


def dead_of(probes: Probes) -> frozenset[GatewayId]:
    """The gateways probed and found dead now."""
    return frozenset(g for g, target in probes.targets.items() if not target.alive)


@dataclass(slots=True)
class EdgeSync:
    maps: DatapathMaps
    held: EdgeMaps | None = None
    """What was last computed (its slots and serials are kept by the next computation)."""
    written: bool = False
    """`held` is in the maps (False after a failed write: the next writes everything)."""
    writes: int = 0
    """Entries written so far (updates and deletions), for the logs and tests."""
    fresh: Callable[[list[int]], None] | None = None
    """Told the gateway slots handed to a new gateway, before they are written
    (`edge_kernel.KernelPins.zero`: the slot's counts start again)."""
    adopted: EdgeMaps | None = None
    """What a stopped agent left in the pinned maps (`edge_maps.read_edge`), named after the
    first tables synced (`edge_maps.adopt`): its slots and serials kept, its stale entries
    removed."""
    _inputs: tuple[Tables, frozenset[GatewayId]] | None = field(default=None, repr=False)

    def sync(self, tables: Tables, probes: Probes) -> int:
        """Write what changed since the last sync; the entries written."""
        if self.adopted is not None:
            self.held, self.written, self.adopted = adopt(self.adopted, tables), True, None
        dead = dead_of(probes)
        last = self._inputs
        if last is not None and last[0] is tables and last[1] == dead and self.written:
            return 0
        new = edge_maps(tables, lambda g: g not in dead, self.held)
        old = self.held if self.written else None
        before = set() if self.held is None else set(self.held.gateway_slots.values())
        written = 0
        try:
            if self.fresh is not None:
                self.fresh(
                    [s for s, serial in new.gateway_slots.values() if (s, serial) not in before]
                )
            written += write_edge(self.maps, new, old)
        except OnmError as error:
            log.warning("edge maps not written (%s): written whole at the next sync", error)
            self.held, self.written, self._inputs = new, False, None
            return written
        self.held, self.written, self._inputs = new, True, (tables, dead)
        self.writes += written
        if written:
            log.debug("edge maps: %d entries written (%d gateway(s) dead)", written, len(dead))
        return written
