"""The eBPF datapath: tc programs forward what they can in the kernel; the rest is the
userspace datapath's loop over the same core.

Python decides, BPF looks up. Both objects share one set of maps (the substrate object is
loaded onto the node object's, `bpf_map__reuse_fd`), pinned under `<pins>/<host>/`
(`onm.agent.datapath.ebpf.pins`). `node_ingress` is attached (tc ingress, `BPF_TC_F_REPLACE`)
to every node port's host-side interface once its entries are written, `substrate_ingress` to
the substrate interface at start; after every snapshot, resolution and timer the maps are
brought to what `entries.wanted` computes from the core's tables and resolution cache (deltas
only).

Static stability. At stop (SIGTERM, or a crash) the programs stay attached and the maps pinned:
the host forwards what the kernel path carries while no agent runs. The next agent adopts the
pins when they match the layout: the new programs are loaded onto the pinned maps, whose
entries are read back (deltas are against what the kernel holds), and swapped in place, the old
ones forwarding with the same entries until then (make before break). Until its first snapshot
has been applied it only writes, never deletes: a port not attached yet keeps its entries. A
fresh start (no pins, or pins of another layout, removed) forwards nothing for a port until its
entries are written: an empty `onm_ports` drops every frame as `unknown_port`.

The slow path. What the programs do not forward (`onm_slow`: ARP, misses, options, fragments,
routed, pools, ...) they pass on untouched with TC_ACT_OK, and the agent reads it with packet
sockets bound to one protocol each (ETH_P_IP and ETH_P_ARP on a port; ETH_P_IPV6 with the
host's /64 filter on the substrate). That is exact, not a race: the kernel hands a frame to
ETH_P_ALL taps before tc ingress (`__netif_receive_skb_core`: `ptype_all`, then
`sch_handle_ingress`), but to protocol-bound sockets (`ptype_base`, the device's
`ptype_specific`) only after it, and only if tc let the frame through. A frame the programs
redirected or dropped is never read; one they passed is read once, as in userspace, by the
same code. Sending needs nothing new: what a packet socket sends leaves by egress, which has
no program. (A redirect to a TAP device with a metadata header was the other design; it needs
more of the programs and an extra copy for the same frames.)

Refresh: what the fast path forwards never reaches the resolver; `node_ingress` stamps the
mappings it uses and the loop's tick asks again for the due ones it used (`refresh.py`).

Counters: the programs' per-CPU drop and slow-path counts are summed over CPUs at each scrape
(`kernel_counts`); adopted, they go on from where the earlier agent's were. What substrate_ingress
delivers to members' pool addresses is read into the core's delivery counts every
`DELIVERIES_EVERY` (`deliveries.KernelDeliveries`): health, load and reports see it.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Final

from onm.agent.core import AgentCore
from onm.agent.datapath.ebpf import entries, layout, pinning, refresh
from onm.agent.datapath.ebpf.deliveries import DELIVERIES_EVERY, KernelDeliveries
from onm.agent.datapath.ebpf.edge_kernel import KernelPins
from onm.agent.datapath.ebpf.edge_maps import EdgeMaps, read_edge, rebalanced
from onm.agent.datapath.ebpf.edge_sync import EdgeSync
from onm.agent.datapath.ebpf.libbpf import BpfObject, BpfProgram, TcAttachPoint, TcHook
from onm.agent.datapath.ebpf.maps import DatapathMaps
from onm.agent.datapath.ebpf.maps import mapping_key as mapping_key_of
from onm.agent.datapath.ebpf.pinning import (
    GATEWAY_PROGRAM,
    NODE_PROGRAM,
    SUBSTRATE_PROGRAM,
    ensure_bpffs,
)
from onm.agent.datapath.ebpf.pins import DEFAULT_BASE, Action, pin_dir, plan, wanted
from onm.agent.datapath.userspace import UserspaceDatapath
from onm.agent.gateway_reports import REPORT_EVERY
from onm.agent.io.interfaces import interface_info
from onm.agent.io.netns import run_in_netns_value
from onm.agent.io.packet_socket import open_packet_socket
from onm.agent.link import Event, ManagerLink, SnapshotArrived
from onm.agent.tables import tenant_interface
from onm.errors import OnmError
from onm.model.clock import utcnow
from onm.netlink.kernel import Kernel
from onm.packet.drop import DropReason
from onm.packet.ethernet import EtherType

log = logging.getLogger("onm.agent.datapath")

IDENT_SEED: Final = 1
"""Where the first CPU's IPv4 Identification generator starts."""
FIGURES_EVERY: Final = REPORT_EVERY.total_seconds() / 2
"""Seconds between two readings of the kernel's pins and sent counts into the core's figures
(its gateway reports, every `REPORT_EVERY`, and the metrics then carry them)."""


def default_objects() -> Path:
    """build/bpf of the checkout this package runs from (`make bpf` writes it there)."""
    return Path(__file__).resolve().parents[5] / "build" / "bpf"


class KernelCounts:
    """The programs' counters, summed over CPUs; read when asked (a scrape)."""

    def __init__(self, maps: DatapathMaps, held: Mapping[str, entries.Entries]) -> None:
        self._maps = maps
        self._held = held
        self.attached: dict[str, tuple[str, int]] = {}
        """Interface -> (program, kernel id) attached there."""

    def programs(self) -> list[tuple[str, str, int]]:
        return [(program, where, ident) for where, (program, ident) in self.attached.items()]

    def map_entries(self) -> dict[str, int]:
        return {name: len(written) for name, written in self._held.items()}

    def drops(self) -> Mapping[DropReason, int]:
        return self._maps.drops()

    def slow_paths(self) -> Mapping[layout.SlowPath, int]:
        return self._maps.slow_paths()


PROGRAMS: Final = (NODE_PROGRAM, SUBSTRATE_PROGRAM, GATEWAY_PROGRAM)


def _object_files(directory: Path) -> list[Path]:
    """node_ingress.o, substrate_ingress.o and gateway_egress.o of `directory`, which must be
    there."""
    paths = [directory / f"{stem}.o" for stem, _program in PROGRAMS]
    for path in paths:
        if not path.is_file():
            raise OnmError(f"no eBPF object {path} (`make bpf` builds it)")
    return paths


@contextmanager
def _loaded(paths: list[Path], reuse: Mapping[str, int]) -> Iterator[list[BpfObject]]:
    """Every object on one set of maps: the node object's own (or `reuse`'s: pinned maps
    adopted), the others made to use the node object's."""
    with ExitStack() as stack:
        node = stack.enter_context(BpfObject(paths[0], reuse))
        shared = {spec.name: node.map(spec.name).fd for spec in layout.MAPS}
        others = [stack.enter_context(BpfObject(path, shared)) for path in paths[1:]]
        yield [node, *others]
        stack.pop_all()


class EbpfDatapath(UserspaceDatapath):
    name = "ebpf"
    kernel: KernelCounts

    def __init__(
        self,
        core: AgentCore,
        link: ManagerLink,
        substrate_if: str,
        netns: str | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        external_if: str = "ext0",
        objects: Path | None = None,
        host: str = "",
        pins_base: Path = DEFAULT_BASE,
    ) -> None:
        """Load the programs onto the maps an earlier agent pinned (adopted) or new ones
        (pinned now), and attach the substrate's (any failure raises, nothing of ours left
        behind: the caller may fall back to userspace), then start the userspace loop's side."""
        directory = objects or default_objects()
        paths = _object_files(directory)  # before anything is touched
        self._pins = pin_dir(pins_base, host or socket.gethostname(), netns)
        ensure_bpffs(pins_base)
        decision = plan(pinning.found(self._pins), wanted())
        if decision.action is Action.REPLACE:
            log.warning(
                "eBPF pins at %s do not match this layout (%s): replaced",
                self._pins,
                "; ".join(decision.why),
            )
            pinning.remove(self._pins)
        self.adopted = decision.action is Action.ADOPT
        self._settled = not self.adopted
        """Deletions wait, on adoption, until the first snapshot's entries are all written."""
        self._stopping = False
        self.ifindexes: dict[str, int] = {}
        self.veths: set[str] = set()
        self._netns = netns
        reuse = pinning.opened(self._pins, wanted()) if self.adopted else {}
        try:
            with _loaded(paths, reuse) as (node, sub, gateway):
                self._node, self._sub, self._gateway = node, sub, gateway
        finally:
            for fd in reuse.values():
                os.close(fd)
        try:
            self.maps = DatapathMaps(self._node)
            for other in (self._sub, self._gateway):  # checked too: the same maps, as seen
                DatapathMaps(other)
            self._node_program = self._node.program(NODE_PROGRAM[1])
            sub_program = self._sub.program(SUBSTRATE_PROGRAM[1])
            self._gateway_program = self._gateway.program(GATEWAY_PROGRAM[1])
            self.tuns: dict[int, int] = {}
            """Served network id -> its TUN's ifindex, once the gateway program is on it."""
            self._substrate_ifindex = interface_info(substrate_if, netns=netns).index
            self._held: dict[str, entries.Entries] = {
                n: self.maps[n].entries() if self.adopted else {} for n in entries.WRITTEN_MAPS
            }
            self._forget_tuns()
            self.kernel = KernelCounts(self.maps, self._held)
            self.edge_sync = EdgeSync(self.maps, adopted=self._edge_found())
            self.pins = KernelPins(self.maps, lambda: self.edge_sync.held)
            self.edge_sync.fresh = self.pins.zero
            self.deliveries = KernelDeliveries(self.maps, self.adopted)
            self._liveness = 0
            self._figures_at = 0.0
            self._deliveries_at = 0.0
            self._review_at = dt.datetime.min.replace(tzinfo=dt.UTC)
            self.maps.set_config(self._substrate_ifindex)
            if not self.adopted:  # an adopted generator goes on where it was
                self.maps.spread_identification(IDENT_SEED)
                pinning.pin_maps(self._pins, self.maps)
            pinning.pin_programs(
                self._pins, (self._node_program, sub_program, self._gateway_program)
            )
            ident = self._tc(self._substrate_ifindex, sub_program)  # in place of the old one
            self.kernel.attached[substrate_if] = (SUBSTRATE_PROGRAM[1], ident)
        except BaseException:
            self._abandon()
            raise
        try:
            super().__init__(core, link, substrate_if, netns, clock, external_if)
        except BaseException:
            self._abandon()
            raise
        core.egress.mirror = self.pins
        log.info(
            "eBPF datapath: programs from %s, attached to %s; maps %s at %s",
            directory,
            substrate_if,
            "adopted" if self.adopted else "new",
            self._pins,
        )

    # --- tc ----------------------------------------------------------------------------------

    def _tc(
        self, ifindex: int, program: BpfProgram, point: TcAttachPoint = TcAttachPoint.INGRESS
    ) -> int:
        """Attach `program` at tc ingress (or `point`) of `ifindex` in the host's namespace (a
        child there: libbpf's netlink socket is of the namespace it is made in); its kernel
        id."""

        def attach() -> int:
            hook = TcHook(ifindex, point)
            hook.create()
            return hook.attach(program)

        return run_in_netns_value(self._netns, attach)

    def _untc(self, ifindex: int, whole: bool) -> None:
        """Detach our filter from `ifindex` (`whole`: the clsact qdisc with it, on a node's
        port, which is ours); an interface already gone is no error."""

        def detach() -> None:
            hook = TcHook(ifindex, TcAttachPoint.INGRESS)
            if whole:
                hook.destroy()
            else:
                hook.detach()

        try:
            run_in_netns_value(self._netns, detach)
        except OnmError as error:
            log.debug("detaching from ifindex %d: %s", ifindex, error)

    # --- ports -------------------------------------------------------------------------------

    def _opener(self, interface: str) -> Callable[[], list[socket.socket]]:
        """IPv4 and ARP only, bound per protocol: they see only what the program passed."""
        return lambda: [
            open_packet_socket(interface, EtherType.IPV4, vnet_hdr=True),
            open_packet_socket(interface, EtherType.ARP, vnet_hdr=True),
        ]

    def _port_attached(self, interface: str) -> None:
        """Write the port's entries, then attach the program (never before: it would drop the
        port's frames as unknown). A failure leaves the port to the slow path, logged."""
        try:
            ifindex = interface_info(interface, netns=self._netns).index
            with Kernel(self._netns) as kernel:
                link = kernel.link(interface)
            if link is not None and link.index == ifindex and link.kind == "veth":
                self.veths.add(interface)  # delivered with bpf_redirect_peer
            self.ifindexes[interface] = ifindex
            self._decided()
            ident = self._tc(ifindex, self._node_program)
            self.kernel.attached[interface] = (NODE_PROGRAM[1], ident)
        except OnmError as error:
            log.warning(
                "port %s: node_ingress not attached (%s); its frames take the slow path",
                interface,
                error,
            )

    def _port_closed(self, interface: str) -> None:
        ifindex = self.ifindexes.pop(interface, None)
        self.veths.discard(interface)
        self.kernel.attached.pop(interface, None)
        if ifindex is not None and not self._stopping:  # stopping: it keeps forwarding
            self._untc(ifindex, whole=True)
            self._decided()

    # --- maps --------------------------------------------------------------------------------

    def _control(self, events: list[Event], now: dt.datetime) -> None:
        super()._control(events, now)
        if any(isinstance(e, SnapshotArrived) for e in events):
            self._served()
            if not self._settled:
                self._settled = True  # the loop's `_decided` next deletes what is not wanted

    def _forget_tuns(self) -> None:
        """An adopted duty names a TUN that went with the agent that made it (a redirect there
        would be lost uncounted): deleted at once, so the gateway's packets take the slow path
        until this agent's TUN has the program and its entries are written."""
        for name in ("onm_duties", "onm_tuns"):
            spec = layout.MAP_BY_NAME[name]
            for key in self._held[name]:
                self.maps[name].delete(spec.key.from_buffer_copy(key))
            self._held[name] = {}

    def _served(self) -> None:
        """The gateway program on each served network's TUN the edge side made (its entries
        are written after, by `_decided`: until then it passes every datagram to the core);
        one that could not be attached leaves its network to the slow path, logged."""
        for vni in [v for v in self.tuns if v not in self.edge.tuns]:
            del self.tuns[vni]  # closed: the device and its filter went with it
            self.kernel.attached.pop(tenant_interface(vni), None)
        for vni in self.edge.tuns:
            duty = self.core.tables.duties.get(vni)
            if vni in self.tuns or duty is None:
                continue
            try:
                ifindex = interface_info(duty.interface, netns=self._netns).index
                ident = self._tc(ifindex, self._gateway_program, TcAttachPoint.EGRESS)
            except OnmError as error:
                log.warning(
                    "network %d: gateway_egress not attached to %s (%s); its gateway's "
                    "traffic takes the slow path",
                    vni,
                    duty.interface,
                    error,
                )
                continue
            self.tuns[vni] = ifindex
            self.kernel.attached[duty.interface] = (GATEWAY_PROGRAM[1], ident)

    def _decided(self) -> None:
        """Bring every written map to what the core's tables and cache say (deltas), the edge
        maps last (a route is written after the pool and gateways it names). Until adopted maps
        are settled, only writes: an entry of a port not attached yet, or of a resolution the
        first snapshot has not brought back, keeps forwarding meanwhile."""
        want = entries.wanted(
            self.core.tables, self.core.resolver.cache, self.ifindexes, self.veths, self.tuns
        )
        for name in entries.WRITTEN_MAPS:
            held = self._held[name]
            change = entries.delta(held, want[name])
            if not self._settled:
                change = entries.Delta(change.write, ())
            if change:
                self._apply(name, change)
                self._held[name] = want[name] if self._settled else {**held, **want[name]}
        if self._settled:  # adopted edge entries stay as the last agent wrote them until then
            self._edge()

    def _edge(self) -> None:
        """The edge maps brought to the core's tables and liveness; a rebalanced pool's kernel
        pins deleted first (`Egress.update` dropped the core's)."""
        egress = self.core.egress
        self._liveness = egress.changes.total()
        held = self.edge_sync.held
        if held is not None:
            pools = rebalanced(held, self.core.tables)
            if pools:
                egress.flows.rebalanced += self.pins.rebalance(pools)
        self.edge_sync.sync(self.core.tables, egress.probes)

    def _edge_found(self) -> EdgeMaps | None:
        """On adoption, the edge entries the last agent wrote (None: a fresh start, or not
        readable: then written anew, its pins' gateways chosen again)."""
        if not self.adopted:
            return None
        try:
            return read_edge(self.maps)
        except OnmError as error:
            log.warning("adopted edge maps not read (%s): written anew", error)
            return None

    def _after_batch(self, changed: bool) -> None:
        """Also when a probe's answer brought a gateway back (`Egress.changes` moved): its
        pool's table takes it again at once."""
        egress = self.core.egress
        if changed or egress.changes.total() != self._liveness:
            self._decided()
        now = time.monotonic()
        if now >= self._deliveries_at and self._settled:  # pool deliveries made in the kernel
            self._deliveries_at = now + DELIVERIES_EVERY
            members = {
                ifindex: interface
                for interface, ifindex in self.ifindexes.items()
                if interface in self.core.monitor.by_interface
            }
            at = self.clock()
            for interface in self.deliveries.senders(members):  # before what it was sent
                self.core.monitor.seen(interface, at)
            self.core.count_deliveries(self.deliveries.refresh(self.core.tables))
        if now >= self._figures_at and (self.edge_sync.held is not None or self.tuns):
            self._figures_at = now + FIGURES_EVERY
            if self.edge_sync.held is not None:
                egress.kernel_pinned, egress.kernel_sent = self.pins.refresh(egress.flows)
                egress.kernel_anycast_sent = self.pins.anycast_sent()
            if self.tuns:
                self.core.gateway.carried(self.maps.tenant_counts())

    def _timeout(self) -> float:
        """The core's, or sooner when the review is due: reviews one `REVIEW_EVERY` apart, not
        up to half a second later (a short resolution lifetime's last quarter is brief)."""
        review = (self._review_at - self.clock()).total_seconds()
        return max(0.0, min(super()._timeout(), review))

    def _tick(self, now: dt.datetime) -> None:
        """Every `REVIEW_EVERY`: ask again for the due resolutions the kernel used (the core
        would have, had their packets reached it)."""
        if now < self._review_at:
            return
        self._review_at = now + refresh.REVIEW_EVERY
        cache, tables = self.core.resolver.cache, self.core.tables
        stamps = [(key, self._used(key)) for key in refresh.due(cache, now)]
        actions = []
        for interface, target in refresh.to_ask(cache, stamps, now, time.monotonic_ns()):
            port = tables.ports.get(interface)
            if port is not None:
                actions.extend(self.core.resolver.refresh(port, target, now))
        self._execute(actions)

    def _used(self, key: tuple[str, bytes]) -> int:
        """The latest `used` stamp of mapping `key` in the kernel (0: never, or not written)."""
        ifindex = self.ifindexes.get(key[0])
        if ifindex is None:
            return 0
        mapping_key = mapping_key_of(ifindex, key[1])
        size = ctypes.sizeof(layout.MappingValue)
        value = self.maps["onm_mappings"].lookup_raw(mapping_key, size)
        return layout.MappingValue.from_buffer_copy(value).used if value else 0

    def _apply(self, name: str, change: entries.Delta) -> None:
        spec = layout.MAP_BY_NAME[name]
        bpf_map = self.maps[name]
        for key in change.delete:
            bpf_map.delete(spec.key.from_buffer_copy(key))
        for key, value in change.write.items():
            raw = ctypes.create_string_buffer(value, len(value))
            bpf_map.update(spec.key.from_buffer_copy(key), raw)

    # --- the end -----------------------------------------------------------------------------

    def _abandon(self) -> None:
        """A start that failed: new pins and the substrate program go (adopted ones stay,
        forwarding as before); the objects are closed."""
        if not self.adopted:
            if hasattr(self, "_substrate_ifindex"):
                self._untc(self._substrate_ifindex, whole=False)
            pinning.remove(self._pins)
        self._node.close()
        self._sub.close()

    def close(self) -> None:
        """Stop reading; programs stay attached and maps pinned, so the host forwards what
        the kernel path carries until the next agent adopts them (`onm agent cleanup` ends
        that)."""
        self._stopping = True
        self.core.egress.mirror = None
        super().close()
        self._node.close()
        self._sub.close()
