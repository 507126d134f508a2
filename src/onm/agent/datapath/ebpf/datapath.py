"""The eBPF datapath: tc programs forward what they can in the kernel; the rest is the
userspace datapath's loop over the same core.

Python decides, BPF looks up. `node_ingress` is attached (tc ingress, `BPF_TC_F_REPLACE`) to
every node port's host-side interface once its entries are written, `substrate_ingress` to the
substrate interface at start; after every snapshot, resolution and timer the maps are brought
to what `entries.wanted` computes from the core's tables and resolution cache (deltas only). At
stop the programs are detached and the objects closed.

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

Counters: the programs' per-CPU drop and slow-path counts are summed over CPUs and both
objects at each scrape (`kernel_counts`).
"""

from __future__ import annotations

import ctypes
import datetime as dt
import logging
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Final

from onm.agent.core import AgentCore
from onm.agent.datapath.ebpf import entries, layout
from onm.agent.datapath.ebpf.libbpf import BpfObject, BpfProgram, TcAttachPoint, TcHook
from onm.agent.datapath.ebpf.maps import DatapathMaps
from onm.agent.datapath.userspace import UserspaceDatapath
from onm.agent.io.interfaces import interface_info
from onm.agent.io.netns import run_in_netns_value
from onm.agent.io.packet_socket import open_packet_socket
from onm.agent.link import ManagerLink
from onm.errors import OnmError
from onm.model.clock import utcnow
from onm.netlink.kernel import Kernel
from onm.packet.drop import DropReason
from onm.packet.ethernet import EtherType

log = logging.getLogger("onm.agent.datapath")

NODE_PROGRAM: Final = ("node_ingress", "onm_node_ingress")
SUBSTRATE_PROGRAM: Final = ("substrate_ingress", "onm_substrate_ingress")
"""(object file stem, program name) of each attach point."""
IDENT_SEED: Final = 1
"""Where the first CPU's IPv4 Identification generator starts."""


def default_objects() -> Path:
    """build/bpf of the checkout this package runs from (`make bpf` writes it there)."""
    return Path(__file__).resolve().parents[5] / "build" / "bpf"


class KernelCounts:
    """The programs' counters, summed over CPUs and objects; read when asked (a scrape)."""

    def __init__(self, maps: tuple[DatapathMaps, ...]) -> None:
        self._maps = maps

    def drops(self) -> Mapping[DropReason, int]:
        total: dict[DropReason, int] = {}
        for each in self._maps:
            for reason, count in each.drops().items():
                total[reason] = total.get(reason, 0) + count
        return total

    def slow_paths(self) -> Mapping[layout.SlowPath, int]:
        total: dict[layout.SlowPath, int] = {}
        for each in self._maps:
            for why, count in each.slow_paths().items():
                total[why] = total.get(why, 0) + count
        return total


@contextmanager
def _loaded(directory: Path) -> Iterator[tuple[BpfObject, BpfObject]]:
    with ExitStack() as stack:
        objects = []
        for stem, _program in (NODE_PROGRAM, SUBSTRATE_PROGRAM):
            path = directory / f"{stem}.o"
            if not path.is_file():
                raise OnmError(f"no eBPF object {path} (`make bpf` builds it)")
            objects.append(stack.enter_context(BpfObject(path)))
        node, sub = objects
        yield node, sub
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
    ) -> None:
        """Load the programs and attach the substrate's (any failure raises, nothing left
        behind: the caller may fall back to userspace), then start the userspace loop's side."""
        directory = objects or default_objects()
        with _loaded(directory) as (node, sub):
            try:
                self._node, self._sub = node, sub
                self.maps = (DatapathMaps(node), DatapathMaps(sub))
                self._node_program = node.program(NODE_PROGRAM[1])
                sub_program = sub.program(SUBSTRATE_PROGRAM[1])
                self._substrate_ifindex = interface_info(substrate_if, netns=netns).index
                for each in self.maps:
                    each.set_config(self._substrate_ifindex)
                self.maps[1].spread_identification(IDENT_SEED)
                self._held: dict[str, entries.Entries] = {n: {} for n in entries.WRITTEN_MAPS}
                self.ifindexes: dict[str, int] = {}
                self.veths: set[str] = set()
                self._netns = netns
                self._tc(self._substrate_ifindex, sub_program)
            except BaseException:
                node.close()
                sub.close()
                raise
        try:
            super().__init__(core, link, substrate_if, netns, clock, external_if)
        except BaseException:
            self._release()
            raise
        self.kernel = KernelCounts(self.maps)
        log.info("eBPF datapath: programs from %s, attached to %s", directory, substrate_if)

    # --- tc ----------------------------------------------------------------------------------

    def _tc(self, ifindex: int, program: BpfProgram) -> None:
        """Attach `program` at tc ingress of `ifindex` in the host's namespace (a child there:
        libbpf's netlink socket is of the namespace it is made in)."""

        def attach() -> int:
            hook = TcHook(ifindex, TcAttachPoint.INGRESS)
            hook.create()
            return hook.attach(program)

        run_in_netns_value(self._netns, attach)

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
            self._tc(ifindex, self._node_program)
        except OnmError as error:
            log.warning(
                "port %s: node_ingress not attached (%s); its frames take the slow path",
                interface,
                error,
            )

    def _port_closed(self, interface: str) -> None:
        ifindex = self.ifindexes.pop(interface, None)
        self.veths.discard(interface)
        if ifindex is not None:
            self._untc(ifindex, whole=True)
            self._decided()

    # --- maps --------------------------------------------------------------------------------

    def _decided(self) -> None:
        """Bring every written map to what the core's tables and cache say (deltas)."""
        want = entries.wanted(
            self.core.tables, self.core.resolver.cache, self.ifindexes, self.veths
        )
        for name in entries.WRITTEN_MAPS:
            change = entries.delta(self._held[name], want[name])
            if change:
                self._apply(name, change)
                self._held[name] = want[name]

    def _apply(self, name: str, change: entries.Delta) -> None:
        spec = layout.MAP_BY_NAME[name]
        for key in change.delete:
            for each in self.maps:
                each[name].delete(spec.key.from_buffer_copy(key))
        for key, value in change.write.items():
            raw = ctypes.create_string_buffer(value, len(value))
            for each in self.maps:
                each[name].update(spec.key.from_buffer_copy(key), raw)

    # --- the end -----------------------------------------------------------------------------

    def _release(self) -> None:
        self._untc(self._substrate_ifindex, whole=False)
        self._node.close()
        self._sub.close()

    def close(self) -> None:
        super().close()  # the ports' programs are detached as each port closes
        self._release()
