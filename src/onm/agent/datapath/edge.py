"""An edge host's side of the userspace datapath: one TUN device per network its gateways
serve, and the kernel state behind them (SNAT, firewall, conntrack zones, policy routing).

What the core decides (`Tables.duties`) becomes kernel state here, after every snapshot: TUN
devices made or closed, brought up with the network's MTU; then `onm.netlink.gateway_plan`
computes the ruleset and routing for all of them at once and `onm.netlink.gateway` applies it
(one nftables transaction; conntrack state survives a re-apply). A failure to apply is logged
and tried again at the next snapshot; the devices already made keep working meanwhile. The
namespace's conntrack counters (`onm.agent.io.conntrack`) are opened with the first duty, for
the metrics.

Addresses new on the external interface (a public IP taken over from a gateway judged down,
say) are announced by ARP (RFC 5227 section 3), so the external network follows at once; every
address is, at a sync `REANNOUNCE_AFTER` or more after the last such (a start included).

The pool's firewall rules and the public IPs this gateway holds (`Duty.rules`, `public_ips`)
go into the same plan. What each rule (and each default) matched is the kernel's named
counters: `firewall_counts` reads them, for the agent's metrics
(`onm_agent_gateway_rule_packets_total`) and its gateway reports to the manager (`link`).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import selectors
import socket
import time

from onm.agent.io import conntrack
from onm.agent.io.conntrack import ConntrackStats
from onm.agent.io.netns import run_in_netns, run_in_netns_fds
from onm.agent.io.packet_socket import open_packet_socket
from onm.agent.io.tun import open_tun, read_datagram, write_datagram
from onm.agent.tables import Duty, Tables
from onm.errors import OnmError
from onm.model.edge_pool import Nat
from onm.netlink import gateway, nftables
from onm.netlink.gateway_plan import (
    Counter,
    FirewallRule,
    GatewayKernel,
    GatewayPlan,
    PublicIp,
    TenantEdge,
    realise,
)
from onm.netlink.kernel import Kernel
from onm.packet import arp, ethernet
from onm.packet.ethernet import BROADCAST, EthernetFrame, EtherType

log = logging.getLogger("onm.agent.edge")

BATCH = 64
REANNOUNCE_AFTER = 10.0
"""Seconds after which a sync announces every external address again, not only the new ones:
an agent that was stopped or cut off cannot know which of its addresses another gateway held
meanwhile, and whose neighbours still point there."""


class EdgeSide:
    def __init__(self, netns: str | None, external_if: str, selector: selectors.BaseSelector):
        self.netns = netns
        self.external_if = external_if
        self.selector = selector
        self.tuns: dict[int, int] = {}
        """Network id -> its TUN device's descriptor (registered with the selector, data = id)."""
        self.applied: GatewayKernel | None = None
        self.failed_writes = 0
        self._conntrack: int | None = None
        self._announced_all: float | None = None
        """When every external address was last announced (monotonic seconds)."""

    def sync(self, tables: Tables) -> None:
        """Make the devices and the kernel state what `tables.duties` asks for."""
        duties = tables.duties
        for vni in [v for v in self.tuns if v not in duties]:
            self._close(vni)
        for vni, duty in duties.items():
            if vni not in self.tuns:
                try:
                    self._open(duty)
                except (OnmError, OSError) as error:
                    log.warning("could not make %s for network %d: %s", duty.interface, vni, error)
        if not duties and self.applied is None:
            return
        plan = GatewayPlan(
            self.external_if, tuple(_tenant(d) for v, d in sorted(duties.items()) if v in self.tuns)
        )
        try:
            wanted = realise(plan)
            gateway.apply(self.netns, wanted)
            if self.applied is not None:
                gateway.withdraw(self.netns, self.applied, wanted)
        except OnmError as error:
            log.warning("gateway state not applied (%s): tried again at the next snapshot", error)
            return
        held = set(wanted.addresses)
        claimed = held - set(() if self.applied is None else self.applied.addresses)
        self.applied = wanted
        now = time.monotonic()
        last = self._announced_all
        if held and (last is None or now - last >= REANNOUNCE_AFTER):
            claimed, self._announced_all = held, now
        if claimed:
            self._announce(sorted(claimed))
        log.info(
            "gateway serves %d network(s) on %s: %d firewall rule(s), %d public IP(s)",
            len(plan.tenants),
            self.external_if,
            sum(len(t.rules) for t in plan.tenants),
            sum(len(t.public_ips) for t in plan.tenants),
        )
        if self._conntrack is None and plan.tenants:
            try:
                self._conntrack = conntrack.open_stats(self.netns)
            except (OnmError, OSError) as error:
                log.warning("no conntrack counters for the metrics: %s", error)

    def _announce(self, addresses: list[ipaddress.IPv4Address]) -> None:
        """Tell the external network's neighbours that `addresses` (newly on the external
        interface: a public IP moved here from a gateway gone down, a changed address, or all
        of them at a start) are here now, so none keeps sending to a stale MAC until its cache
        expires (tens of seconds). The kernel announces nothing when an address is added."""

        def opener() -> list[socket.socket]:
            return [open_packet_socket(self.external_if, EtherType.ARP)]

        try:
            [sock] = run_in_netns(self.netns, opener)
        except (OnmError, OSError) as error:
            log.warning("no ARP announcement for %s: %s", ", ".join(map(str, addresses)), error)
            return
        with sock:
            mac: bytes = sock.getsockname()[4]
            for address in addresses:
                payload = arp.build(arp.announcement(mac, address.packed))
                frame = ethernet.build(EthernetFrame(BROADCAST, mac, EtherType.ARP, payload))
                try:
                    sock.send(frame)
                except OSError as error:
                    log.warning("ARP announcement for %s not sent: %s", address, error)
        log.info("announced %s on %s", ", ".join(map(str, addresses)), self.external_if)

    def firewall_counts(self) -> list[tuple[Counter, int, int]]:
        """Each named counter of the applied ruleset with its (packets, bytes) now; empty when
        nothing is applied or the kernel does not answer (logged). Safe from another thread:
        it reads `applied` once and forks a child for the kernel."""
        applied = self.applied
        if applied is None:
            return []
        try:
            found = nftables.counters(self.netns)
        except OnmError as error:
            log.warning("firewall counters not read: %s", error)
            return []
        return [(c, *found.get(c.name, (0, 0))) for c in applied.counters]

    def conntrack(self) -> ConntrackStats | None:
        """The namespace's conntrack counters now (None before the first duty, or unreadable).
        Safe from another thread: it reads its own descriptor."""
        fd = self._conntrack
        return None if fd is None else conntrack.read_stats(fd)

    def _open(self, duty: Duty) -> None:
        name = duty.interface
        [fd] = run_in_netns_fds(self.netns, lambda: [open_tun(name)])
        try:
            with Kernel(self.netns) as kernel:
                kernel.set_link(name, mtu=duty.network.siit.ipv4_mtu)
        except BaseException:
            os.close(fd)
            raise
        self.tuns[duty.network.vni] = fd
        self.selector.register(fd, selectors.EVENT_READ, duty.network.vni)
        log.info("network %d enters the kernel by %s", duty.network.vni, name)

    def _close(self, vni: int) -> None:
        fd = self.tuns.pop(vni)
        self.selector.unregister(fd)
        os.close(fd)

    def read(self, vni: int) -> list[bytes]:
        """What the kernel sent out of network `vni`'s device, up to a batch."""
        fd = self.tuns.get(vni)
        out: list[bytes] = []
        if fd is None:
            return out
        for _ in range(BATCH):
            try:
                packet = read_datagram(fd)
            except OSError as error:
                log.warning("reading network %d's device failed: %s", vni, error)
                break
            if packet is None:
                break
            out.append(packet)
        return out

    def write(self, vni: int, packet: bytes) -> bool:
        fd = self.tuns.get(vni)
        return fd is not None and write_datagram(fd, packet)

    def close(self) -> None:
        for vni in list(self.tuns):
            self._close(vni)
        if self._conntrack is not None:
            os.close(self._conntrack)
            self._conntrack = None


def _tenant(duty: Duty) -> TenantEdge:
    return TenantEdge(
        duty.network.vni,
        duty.interface,
        duty.network.cidrs,
        ipaddress.IPv4Address(duty.gateway.external_ip),
        tuple(
            FirewallRule(r.id, r.direction, r.action, r.proto, r.ports, r.remote)
            for r in duty.rules
        ),
        tuple(PublicIp(p.node_ip, p.public_ip) for p in duty.public_ips),
        routed=duty.pool.nat is Nat.NONE,
    )
