"""What a lab is made of, as data: namespaces, links, addresses, routes (no I/O here).

`build` turns a topology, the lab's name and what the manager allocated (host /64s, node MACs
and host-side interface names, gateways) into a `Plan`; `onm.lab.netns` applies it. The shape:

    onm-LAB-sub            bridge br0 (substrate MTU); one port hK per host, IPv6 off
    onm-LAB-h-HOST         sub0 <-> hK on br0, fd00:ffff::K/64 (K = host index + 1), routes to
                           every other host's /64 via its transit address; forwarding, RA and
                           DAD off; the host's own /64 is on no interface (its agent owns it);
                           one interface per node, named as the manager chose, no address
    onm-LAB-n-NODE         eth0 <-> that interface: the node's virtual MAC and IP, MTU =
                           substrate MTU - the encoding's overhead, default route via the
                           network's gateway; IPv6 off (nodes are IPv4 only)
    onm-LAB-x-EXTERNAL     bridge br0 (EXTERNAL_MTU), the external network's switch; one port
                           hK per edge host on it (K as above), one port sJ per server
                           (J = the server's index in it + 1); IPv6 off
    onm-LAB-s-SERVER       eth0 <-> sJ on its external's br0, the server's IP with the
                           external CIDR's prefix length, and a route to the CIDRs of each
                           network behind a routed edge pool (`nat: none`) of that external
                           via the pool's first gateway; IPv6 off

An edge host (`role: edge`) is a host as above, with no nodes, and one more interface: ext0
<-> hK on its external's br0, up, with no address of its own but an on-link route to the
external CIDR. Its agent adds the gateways' external /32s to ext0 (and its NAT and firewall).

An edge pool in anycast mode (seed 1: a router spreading a shared address by ECMP) has a /64 of
its own; every host that is not an edge host is the substrate router for its own packets: it
routes that /64 by one multipath route with a next hop per gateway host (its transit address),
and hashes on addresses (`MULTIPATH_HASH_POLICY`). Edge hosts get no route to it: their agents
take it as their own.

With `substrate.latency`, each host's `sub0` also holds one delay per other host's /64 it must
wait toward (`Delays`: the topology's one-way delay for the two hosts' locations), grouped into
one band per distinct delay so `onm.lab.netns` builds one qdisc tree per device.

Every namespace has `lo` up. Veth pairs are created with both ends already in their namespaces
and named (one atomic `ip link add`), so nothing ever lives in the root namespace, not even for a
moment, and no interface name is shared between namespaces.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from onm.agent.tables import node_mtu
from onm.lab.topology import TRANSIT, Topology
from onm.model.edge_pool import Nat
from onm.model.host import HostRole

BRIDGE: Final = "br0"
"""The substrate switch, in the substrate namespace."""
SUBSTRATE_IF: Final = "sub0"
"""Each host's interface on the substrate (the agent's `--substrate-if`)."""
NODE_IF: Final = "eth0"
"""Each node's interface, and each server's."""
EXTERNAL_IF: Final = "ext0"
"""Each edge host's interface on its external network (the agent's `--external-if`)."""
EXTERNAL_MTU: Final = 1500
"""Link MTU of the external networks: plain Ethernet, as outside networks are."""
MULTIPATH_HASH_POLICY: Final = 0
"""net.ipv6.fib_multipath_hash_policy 0, layer 3 (Documentation/networking/ip-sysctl.rst):
source and destination address, flow label and next header. The kernel's default, written
down: the agent steers by the source, and the flow label cannot undo that, since it is 0 in
every packet an agent translates (RFC 7915 section 5.1) and 0 in the route lookup of what the
agent's raw socket sends (no IPV6_FLOWINFO_SEND). Policy 1 would add ports, which a packet
the agent sends already spreads by; 0 keeps each flow's path a function of its addresses."""


class Role(enum.StrEnum):
    """What a namespace stands for; the middle word of its name."""

    SUBSTRATE = "sub"
    HOST = "h"
    NODE = "n"
    EXTERNAL = "x"
    SERVER = "s"


def namespace_name(lab: str, role: Role, owner: str = "") -> str:
    """`onm-LAB-sub`, `onm-LAB-h-HOST`, `onm-LAB-n-NODE`, `onm-LAB-x-EXTERNAL` or
    `onm-LAB-s-SERVER`."""
    return f"onm-{lab}-{role.value}" if role is Role.SUBSTRATE else f"onm-{lab}-{role}-{owner}"


def transit_address(index: int) -> ipaddress.IPv6Interface:
    """Host number `index` (from 0)'s address on the transit link."""
    return ipaddress.IPv6Interface((int(TRANSIT.network_address) + index + 1, TRANSIT.prefixlen))


def _ipv6_sysctls(*settings: tuple[str, int]) -> tuple[tuple[str, int], ...]:
    """Each IPv6 setting for `all` interfaces and as the `default` of interfaces made later."""
    return tuple(
        (f"net.ipv6.conf.{scope}.{key}", value)
        for key, value in settings
        for scope in ("all", "default")
    )


SYSCTLS: Final[Mapping[Role, tuple[tuple[str, int], ...]]] = {
    Role.SUBSTRATE: _ipv6_sysctls(("disable_ipv6", 1)),
    Role.HOST: (
        *_ipv6_sysctls(("forwarding", 0), ("accept_ra", 0), ("accept_dad", 0)),
        ("net.ipv6.fib_multipath_hash_policy", MULTIPATH_HASH_POLICY),
    ),
    Role.NODE: _ipv6_sysctls(("disable_ipv6", 1)),
    Role.EXTERNAL: _ipv6_sysctls(("disable_ipv6", 1)),
    Role.SERVER: _ipv6_sysctls(("disable_ipv6", 1)),
}
"""Set right after a namespace is made, before any interface enters it."""


@dataclass(frozen=True, slots=True)
class NodeAllocation:
    """What the manager chose for one node."""

    mac: str
    """The node's virtual MAC, given to its eth0."""
    interface: str
    """The host-side interface name the agent expects."""
    gateway: ipaddress.IPv4Address
    """The gateway of the node's CIDR in its network."""


@dataclass(frozen=True, slots=True)
class AnycastAllocation:
    """An edge pool in anycast mode: the /64 the manager gave it, and its gateways' hosts."""

    prefix: ipaddress.IPv6Network
    hosts: tuple[str, ...]
    """The hosts its gateways run on, in the topology's host order."""


@dataclass(frozen=True, slots=True)
class Allocations:
    """What the manager chose for the lab's objects, by name."""

    host_prefixes: Mapping[str, ipaddress.IPv6Network]
    nodes: Mapping[str, NodeAllocation]
    anycast: tuple[AnycastAllocation, ...] = ()


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    role: Role
    owner: str
    """The host, node, external network or server it stands for ("" for the substrate)."""
    sysctls: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Bridge:
    namespace: str
    name: str
    mtu: int


@dataclass(frozen=True, slots=True)
class End:
    """One end of a veth pair, as it must end up."""

    namespace: str
    name: str
    mtu: int
    mac: str | None = None
    """None: keep the random one the kernel chose."""
    master: str | None = None
    """The bridge to enslave it to, if any."""


@dataclass(frozen=True, slots=True)
class Veth:
    a: End
    b: End


@dataclass(frozen=True, slots=True)
class Address:
    namespace: str
    device: str
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass(frozen=True, slots=True)
class Route:
    namespace: str
    destination: ipaddress.IPv4Network | ipaddress.IPv6Network
    via: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    """None: on-link out of `device` (scope link, no gateway)."""
    device: str


@dataclass(frozen=True, slots=True)
class MultipathRoute:
    """One route with several next hops (ECMP), all out of `device`."""

    namespace: str
    destination: ipaddress.IPv6Network
    via: tuple[ipaddress.IPv6Address, ...]
    device: str


@dataclass(frozen=True, slots=True)
class DelayBand:
    """Packets toward any of `destinations` wait `delay_us` before they leave."""

    delay_us: int
    """One way, microseconds (more than 0)."""
    destinations: tuple[ipaddress.IPv6Network, ...]
    """Other hosts' /64s, in the topology's host order."""


@dataclass(frozen=True, slots=True)
class Delays:
    """Everything delayed on one device: one band per distinct delay, shortest first."""

    namespace: str
    device: str
    bands: tuple[DelayBand, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything to create, in the order to create it."""

    namespaces: tuple[Namespace, ...]
    bridges: tuple[Bridge, ...]
    veths: tuple[Veth, ...]
    addresses: tuple[Address, ...]
    routes: tuple[Route, ...]
    delays: tuple[Delays, ...] = ()
    """Only for hosts that wait toward some other host."""
    multipath: tuple[MultipathRoute, ...] = ()
    """Anycast /64s, on every host that is not an edge host."""


def build(topology: Topology, lab: str, allocations: Allocations) -> Plan:
    """The plan for `topology` as lab `lab`, with the manager's `allocations`."""
    mtu = topology.substrate.mtu
    sub = namespace_name(lab, Role.SUBSTRATE)
    namespaces = [Namespace(sub, Role.SUBSTRATE, "", SYSCTLS[Role.SUBSTRATE])]
    bridges = [Bridge(sub, BRIDGE, mtu)]
    veths: list[Veth] = []
    addresses: list[Address] = []
    routes: list[Route] = []
    delays: list[Delays] = []

    host_ns = {h.name: namespace_name(lab, Role.HOST, h.name) for h in topology.hosts}
    for index, host in enumerate(topology.hosts):
        ns = host_ns[host.name]
        namespaces.append(Namespace(ns, Role.HOST, host.name, SYSCTLS[Role.HOST]))
        port = End(sub, f"h{index + 1}", mtu, master=BRIDGE)
        veths.append(Veth(End(ns, SUBSTRATE_IF, mtu), port))
        addresses.append(Address(ns, SUBSTRATE_IF, transit_address(index)))
        for other_index, other in enumerate(topology.hosts):
            if other is not host:
                prefix = allocations.host_prefixes[other.name]
                via = transit_address(other_index).ip
                routes.append(Route(ns, prefix, via, SUBSTRATE_IF))
        bands = delay_bands(topology, host.name, allocations)
        if bands:
            delays.append(Delays(ns, SUBSTRATE_IF, bands))
    multipath = anycast_routes(topology, lab, allocations)

    for node in topology.nodes:
        ns = namespace_name(lab, Role.NODE, node.name)
        allocated = allocations.nodes[node.name]
        network = topology.network(node.network)
        cidr = next(c for c in network.cidrs if node.ip in c)
        namespaces.append(Namespace(ns, Role.NODE, node.name, SYSCTLS[Role.NODE]))
        eth0 = End(ns, NODE_IF, node_mtu(mtu, network.encoding), mac=allocated.mac)
        veths.append(Veth(eth0, End(host_ns[node.host], allocated.interface, mtu)))
        addresses.append(Address(ns, NODE_IF, ipaddress.IPv4Interface((node.ip, cidr.prefixlen))))
        default = ipaddress.IPv4Network("0.0.0.0/0")
        routes.append(Route(ns, default, allocated.gateway, NODE_IF))

    for pool in topology.pools:  # a member answers for the pool IP with its own stack
        for member in pool.members:
            ns = namespace_name(lab, Role.NODE, member)
            addresses.append(Address(ns, NODE_IF, ipaddress.IPv4Interface((pool.ip, 32))))

    for external in topology.externals:
        ns = namespace_name(lab, Role.EXTERNAL, external.name)
        namespaces.append(Namespace(ns, Role.EXTERNAL, external.name, SYSCTLS[Role.EXTERNAL]))
        bridges.append(Bridge(ns, BRIDGE, EXTERNAL_MTU))
        for index, host in enumerate(topology.hosts):
            if host.external == external.name:
                ext0 = End(host_ns[host.name], EXTERNAL_IF, EXTERNAL_MTU)
                veths.append(Veth(ext0, End(ns, f"h{index + 1}", EXTERNAL_MTU, master=BRIDGE)))
                routes.append(Route(host_ns[host.name], external.cidr, None, EXTERNAL_IF))
        for index, server in enumerate(external.servers):
            server_ns = namespace_name(lab, Role.SERVER, server.name)
            namespaces.append(Namespace(server_ns, Role.SERVER, server.name, SYSCTLS[Role.SERVER]))
            eth0 = End(server_ns, NODE_IF, EXTERNAL_MTU)
            veths.append(Veth(eth0, End(ns, f"s{index + 1}", EXTERNAL_MTU, master=BRIDGE)))
            addresses.append(Address(server_ns, NODE_IF, external.interface(server.ip)))
            routes += _routed_back(topology, external.name, server_ns)

    return Plan(
        tuple(namespaces),
        tuple(bridges),
        tuple(veths),
        tuple(addresses),
        tuple(routes),
        tuple(delays),
        multipath,
    )


def anycast_routes(
    topology: Topology, lab: str, allocations: Allocations
) -> tuple[MultipathRoute, ...]:
    """Each anycast /64 on each host that is not an edge host: a next hop per gateway host."""
    index = {h.name: i for i, h in enumerate(topology.hosts)}
    return tuple(
        MultipathRoute(
            namespace_name(lab, Role.HOST, host.name),
            anycast.prefix,
            tuple(transit_address(index[h]).ip for h in anycast.hosts),
            SUBSTRATE_IF,
        )
        for anycast in allocations.anycast
        for host in topology.hosts
        if host.role is not HostRole.EDGE and anycast.hosts
    )


def _routed_back(topology: Topology, external: str, server_ns: str) -> list[Route]:
    """A server's way back to the networks behind routed edge pools (`nat: none`) whose
    gateways are on its external network: through the pool's first gateway, as a site's
    router would be told. NAT pools need none: their gateways' addresses are on the link."""
    out: list[Route] = []
    hosts = {h.name: h for h in topology.hosts}
    for pool in topology.edge_pools:
        if pool.nat is not Nat.NONE or not pool.gateways:
            continue
        first = pool.gateways[0]
        if hosts[first.host].external != external:
            continue
        for cidr in topology.network(pool.network).cidrs:
            out.append(Route(server_ns, cidr, first.external_ip, NODE_IF))
    return out


def delay_bands(topology: Topology, host: str, allocations: Allocations) -> tuple[DelayBand, ...]:
    """What `host` delays toward each other host's /64, one band per distinct delay."""
    latency = topology.substrate.latency
    mine = topology.host(host).prefix
    toward: dict[int, list[ipaddress.IPv6Network]] = {}
    for other in topology.hosts:
        delay = latency.between(mine, other.prefix) if other.name != host else 0
        if delay:
            toward.setdefault(delay, []).append(allocations.host_prefixes[other.name])
    return tuple(DelayBand(delay, tuple(toward[delay])) for delay in sorted(toward))
