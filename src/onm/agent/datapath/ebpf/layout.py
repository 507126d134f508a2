"""What the eBPF programs and Python share, defined once: map keys and values, flags, verdicts.

The C header `bpf/include/generated/defs.h` is generated from this module (`onm.agent.datapath.
ebpf.cheader`, run by make); a unit test fails when the checked-in header differs, and the header
carries `_Static_assert`s of every size and offset computed here by ctypes, so the C compiler
refuses a struct whose layout disagrees with its Python mirror. Drop codes are
`onm.packet.drop.DropReason`'s, unchanged.

Every struct is laid out with natural alignment and explicit padding fields, so ctypes and clang
agree without packing pragmas. Addresses and MACs are kept in network order, as on the wire.
"""

from __future__ import annotations

import ctypes
import enum
from typing import Final

from onm.agent.flows import CAPACITY, IDLE, IDLE_OTHER
from onm.packet.drop import DropReason
from onm.packet.ipproto import IpProtocol
from onm.selection import maglev


class PortFlag(enum.IntFlag):
    """Properties of a local node's port: most send its traffic to the slow path."""

    POOL_MEMBER = 1
    """The node may send from pool IPs (`onm_pool_sources`); what node_ingress forwards of
    its frames is counted (`onm_member_sent`: the core's passive liveness sees it)."""
    PUBLIC_IP = 2
    """The node holds a public IP on an edge pool: its flows through that pool go to the
    holder while it is alive (`onm_holders`), else as any node's."""
    VETH = 4
    """The port is a veth (`onm_locals`): frames for the node go straight into its namespace's
    ingress with `bpf_redirect_peer`, skipping the port's transmit and the backlog."""
    POOL_ADDRESS = 8
    """An `onm_locals` entry of a member's pool address (`Tables.by_substrate`: its IP is the
    pool IP): each packet delivered there is counted in `onm_pool_deliveries`, as the core's
    `CoreState.count_delivery`."""


class NetworkFlag(enum.IntFlag):
    """A network's translator settings (`SiitConfig`) and encoding, as the programs test them."""

    DECREMENT_TTL = 1
    COPY_TOS = 2
    ENCAP = 4
    """RFC 2473 encapsulation, not SIIT (`bpf/include/encap.h`)."""


class MappingFlag(enum.IntFlag):
    """What a requester's resolution leads to besides a remote substrate address."""

    LOCAL = 1
    """The target lives on this host: delivered node to node by the slow path, for now."""
    POOL = 2
    """A rotating pool's target (`Mapping.rotation`): the core counts what it is sent
    (`Resolver.sent_to_pool`) and moves the requester on. Other pools' members are reached in
    the kernel as any node (a local one's deliveries counted, `PortFlag.POOL_ADDRESS`)."""


class SlowPath(enum.IntEnum):
    """Why a program handed a frame to the userspace core (TC_ACT_OK, counted per reason).

    Never a drop: these are what the kernel path does not build, and the core decides them.
    """

    NOT_IPV4 = 1
    ARP = 2
    IPV4_OPTIONS = 3
    FRAGMENT = 4
    HEADER_UNUSUAL = 5
    """Lengths, version or hop limit the core judges (and drops with its own reason)."""
    PROTOCOL = 6
    ICMP_NOT_ECHO = 7
    FOREIGN_SOURCE = 8
    ROUTED = 9
    """To the router MAC: routes, gateways, edge pools."""
    NO_MAPPING = 10
    MAC_MISMATCH = 11
    LOCAL_TARGET = 12
    POOL = 13
    TOO_BIG = 14
    UDP_ZERO_CHECKSUM = 15
    ENCAP = 16
    """An encap network's packet the kernel leaves to the core: routed, to or from a gateway,
    or one whose outer addresses or inner datagram it does not accept (the core drops it)."""
    NOT_IPV6 = 17
    EXTENSION_HEADER = 18
    NOT_LOCAL = 19
    FROM_GATEWAY = 20
    TRUNCATED = 21
    EDGE_CHOICE = 22
    """An edge pool choosing by load (the core keeps the loads)."""
    EDGE_SPLIT = 23
    """A routed edge pool that splits heavy pairs (the core meters them)."""
    EDGE_ANYCAST = 24
    """An anycast pool's flow from a source that cannot be steered (U/L set): the core's."""
    EDGE_PUBLIC_IP = 25
    """The node's public IP's holder (`onm_holders`) names a gateway slot that is not the
    holder's any more (written in between): the core decides."""
    EDGE_NO_GATEWAY = 26
    """No live gateway takes the flow: the core answers host unreachable."""
    EDGE_OVERFLOW = 27
    """A pool or gateway beyond the maps' slots, or a table larger than `MAGLEV_STRIDE`."""
    GATEWAY_CIDRS = 28
    """A gateway's network of more than `DUTY_CIDRS` CIDRs: the core's `onm.agent.gateway`."""
    GATEWAY_SENDER = 29
    """To a gateway from a sender `onm_sources` does not hold (a local node, a steered
    variant outside anycast mode, a spoofer): the core judges it."""
    NO_RESIDENT = 30
    """From a gateway's TUN to an address `onm_residents` does not hold (none, or a pool IP
    with no member): the core drops it."""


class EdgePoolFlag(enum.IntFlag):
    """How an edge pool's new flows choose, and what makes them the slow path's
    (`PoolValue.flags`)."""

    LEAST_LOADED = 1
    """`choice: least-loaded`: the core keeps the loads (`SlowPath.EDGE_CHOICE`)."""
    SPLIT = 2
    ANYCAST = 4
    """Anycast mode: a new flow goes to the pool's shared /64 (`PoolValue.anycast`) from the
    node's address steered to the flow's slot; the host's multipath route picks the gateway
    (`onm_anycast_sent` counts it per pool)."""
    OVERFLOW = 8
    RANDOM = 16
    """`choice: random`: a new flow takes the table's entry for a random number (as
    `Egress.gateway_for`'s `pick`), pinned as a hashed one."""
    DIRECT = 32
    """Anycast mode while a gateway of the pool is dead or draining (or it has none), which
    the router cannot know: new flows go in direct mode, as the core's `Egress.anycast`."""


class HashFlag(enum.IntFlag):
    """`HashField`s as the bits of `PoolValue.fields` (`onm.selection.flow.flow_hash`)."""

    SRC = 1
    DST = 2
    PROTO = 4
    SPORT = 8
    DPORT = 16


class EdgeGatewayFlag(enum.IntFlag):
    ALIVE = 1
    """Probed alive: keeps its pinned flows."""
    ACTIVE = 2
    """Takes new flows (not draining); the Maglev table holds only alive active ones."""


class DutyFlag(enum.IntFlag):
    """What makes a served network's gateway traffic the slow path's (`DutyValue.flags`)."""

    SLOW = 1
    """More CIDRs than `DUTY_CIDRS`."""
    ANYCAST = 2
    """The pool is in anycast mode: steered variants of a resident's own address are its
    (`SourceFlag.STEERED`), and replies go to the variant the flow's sender used
    (`DutyValue.fields`: the pool's hash fields, as `onm.agent.gateway._reply_to`)."""


class SourceFlag(enum.IntFlag):
    """`SourceValue.flags`."""

    STEERED = 1
    """The source is a resident's own address (`ResidentEntry.steered`): a gateway in anycast
    mode takes its steered variants too (looked up `unsteered`)."""


VERDICT_SLOTS: Final = max(SlowPath) + 1
"""Entries of the per-CPU slow-path counter array, indexed by `SlowPath`."""
DROP_SLOTS: Final = max(DropReason) + 1
"""Entries of the per-CPU drop counter array, indexed by `DropReason`."""
POOL_SLOTS: Final = 64
"""Edge pools the maps hold (a pool beyond them goes to the slow path)."""
GATEWAY_SLOTS: Final = 4096
MAGLEV_STRIDE: Final = maglev.SIZES[0]
"""Entries of one pool's Maglev table in `onm_maglev` (`selection.maglev.SIZES[0]`: pools of
up to 163 gateways; a larger table goes to the slow path)."""
PIN_SLOTS: Final = CAPACITY
"""The flow-pinning LRU map's size, as the core's `FlowTable`."""
IDLE_NS: Final = {
    "TCP": int(IDLE[IpProtocol.TCP].total_seconds() * 1e9),
    "UDP": int(IDLE[IpProtocol.UDP].total_seconds() * 1e9),
    "OTHER": int(IDLE_OTHER.total_seconds() * 1e9),
}
"""A pin idle this long is gone (`onm.agent.flows.IDLE`), in bpf_ktime_get_ns units."""
ROUTE_INSIDE: Final = 0xFFFFFFFF
"""`RouteValue.pool` of a network's own prefixes: routed inside it (the slow path's)."""
ROUTE_NO_POOL: Final = 0xFFFFFFFE
"""No route (each written network has one at 0.0.0.0/0 at least), or a route whose pool this
agent does not know: dropped as `NO_ROUTE`, as the core does. A lookup that finds nothing is a
network not written: the slow path's (`ROUTED`)."""
ROUTE_SLOW: Final = 0xFFFFFFFD
"""A route to a pool beyond `POOL_SLOTS`: the slow path's."""
LOCAL_SLOTS: Final = 4096
"""Local substrate addresses (`onm_locals`): nodes' own and members' pool addresses."""
DUTY_CIDRS: Final = 8
"""A served network's CIDRs one `DutyValue` holds (a network with more is the slow path's)."""
ICMP_SUM_WORDS: Final = 1024
"""The programs checksum ICMP messages of at most this many 16-bit words; longer ones go slow."""

u8 = ctypes.c_uint8
u16 = ctypes.c_uint16
u32 = ctypes.c_uint32
u64 = ctypes.c_uint64


class PortKey(ctypes.Structure):
    """`onm_ports` key: the host-side interface of a node (the program's ingress ifindex)."""

    _fields_ = (("ifindex", u32),)


class NetworkKey(ctypes.Structure):
    _fields_ = (("vni", u32),)


class NetworkValue(ctypes.Structure):
    """A network's translator settings (`NetworkEntry.siit`) and router MAC: in `onm_networks` for
    a served network (a gateway's), inside each port's and local's value for a node's."""

    _fields_ = (
        ("lowest_ipv6_mtu", u16),
        ("ipv6_mtu", u16),
        ("ipv4_mtu", u16),
        ("router_mac", u8 * 6),
        ("flags", u32),
    )


class PortValue(ctypes.Structure):
    """A local node's port: what its frames must carry and what they leave from, and its
    network's settings (a copy of its `onm_networks` value: one lookup fewer per packet, cold
    lookups being the programs' main cost)."""

    _fields_ = (
        ("vni", u32),
        ("ip", u8 * 4),
        ("substrate", u8 * 16),
        ("mac", u8 * 6),
        ("flags", u16),
        ("network", NetworkValue),
    )


class MappingKey(ctypes.Structure):
    """`onm_mappings` key: a requester (its port) and a target IPv4, as `Resolver.cache`."""

    _fields_ = (("ifindex", u32), ("target", u8 * 4))


class MappingValue(ctypes.Structure):
    """Where the target lives and the MAC the requester was told (the frame must carry it).
    `used` is the program's, written in place: `bpf_ktime_get_ns() >> USED_SHIFT` (CLOCK_MONOTONIC)
    at the last frame that found the entry, 0 never; the agent's timer reads it to refresh
    resolutions in use (`refresh.py`), as traffic through the core does."""

    _fields_ = (
        ("substrate", u8 * 16),
        ("mac", u8 * 6),
        ("flags", u16),
        ("used", u32),
    )


USED_SHIFT: Final = 30
"""`MappingValue.used` counts 2**30 ns (about 1.07 s): a store at most once a unit per entry."""


class LocalKey(ctypes.Structure):
    """`onm_locals` key: a local node's substrate address (`Tables.by_substrate`)."""

    _fields_ = (("substrate", u8 * 16),)


class LocalValue(ctypes.Structure):
    """The port a substrate packet for that address is delivered to, with its network's
    settings (as `PortValue.network`)."""

    _fields_ = (
        ("ifindex", u32),
        ("vni", u32),
        ("ip", u8 * 4),
        ("mac", u8 * 6),
        ("flags", u16),
        ("network", NetworkValue),
    )


class PoolSourceKey(ctypes.Structure):
    """`onm_pool_sources` key: a member's port and a pool IP it may send from."""

    _fields_ = (("ifindex", u32), ("ip", u8 * 4))


class PoolSourceValue(ctypes.Structure):
    """The member's pool address (`Port.pool_sources`): its frames from the pool IP leave
    from there, as `onm.agent.forwarding` sends them."""

    _fields_ = (("substrate", u8 * 16),)


class SourceKey(ctypes.Structure):
    """`onm_sources` key: (network, resident IPv4, substrate source): one allowed sender.

    The writer leaves out local nodes' addresses (their packets never cross the substrate), so a
    hit here is exactly receive.py's "resident and source in resident.sources and not local".
    """

    _fields_ = (("vni", u32), ("ip", u8 * 4), ("source", u8 * 16))


class SourceValue(ctypes.Structure):
    """The MAC the resident is known by (the delivered frame's source)."""

    _fields_ = (("mac", u8 * 6), ("flags", u16))


class GatewayKey(ctypes.Structure):
    """`onm_gateways` key: (network, a gateway host's /64), `Tables.gateway_sources`."""

    _fields_ = (("vni", u32), ("prefix", u8 * 8))


class GatewayValue(ctypes.Structure):
    _fields_ = (("present", u32),)


class ConfigValue(ctypes.Structure):
    """`onm_settings[0]`: host-wide settings."""

    _fields_ = (("substrate_ifindex", u32), ("flags", u32))


class IndexKey(ctypes.Structure):
    """The key of every array map."""

    _fields_ = (("index", u32),)


class CounterValue(ctypes.Structure):
    """One CPU's count in a per-CPU array."""

    _fields_ = (("count", u64),)


class IdentValue(ctypes.Structure):
    """One CPU's next IPv4 Identification for translated IPv6 packets (RFC 7915 5.1)."""

    _fields_ = (("next", u32),)


class RouteKey(ctypes.Structure):
    """`onm_routes` (LPM trie) key: (vni, IPv4) in network order, `prefixlen` = 32 + the route's
    length, so a lookup with 64 finds the longest route of that network (`Tables.routes`)."""

    _fields_ = (("prefixlen", u32), ("vni", u8 * 4), ("ip", u8 * 4))


class RouteValue(ctypes.Structure):
    """The route's pool slot, or `ROUTE_INSIDE` / `ROUTE_NO_POOL` / `ROUTE_SLOW`."""

    _fields_ = (("pool", u32),)


class PoolValue(ctypes.Structure):
    """`onm_edge_pools[slot]`: one edge pool's settings as the program tests them; its Maglev
    table is `table_size` entries at slot * MAGLEV_STRIDE (0: no live active gateway); in
    anycast mode `anycast` is its shared /64."""

    _fields_ = (
        ("table_size", u32),
        ("generation", u32),
        ("fields", u16),
        ("flags", u16),
        ("nat", u8),
        ("mode", u8),
        ("choice", u8),
        ("pad", u8),
        ("anycast", u8 * 8),
    )


class MaglevValue(ctypes.Structure):
    """One Maglev table entry: a gateway slot."""

    _fields_ = (("gateway", u32),)


class EdgeGatewayValue(ctypes.Structure):
    """`onm_edge_gateways[slot]`: a gateway's /64, pool slot, and a serial never reused, so a
    pin to a gateway that left is never taken for the one given its slot later."""

    _fields_ = (
        ("prefix", u8 * 8),
        ("pool", u32),
        ("serial", u32),
        ("flags", u32),
    )


class PinKey(ctypes.Structure):
    """`onm_pins` key: pool slot and the flow (`selection.flow.Flow`; ports in host order)."""

    _fields_ = (
        ("pool", u32),
        ("src", u8 * 4),
        ("dst", u8 * 4),
        ("sport", u16),
        ("dport", u16),
        ("proto", u8),
        ("pad", u8 * 3),
    )


class PinValue(ctypes.Structure):
    """A pinned flow: its gateway (slot and serial), the pool's generation, last packet (ns of
    bpf_ktime_get_ns)."""

    _fields_ = (
        ("gateway", u32),
        ("serial", u32),
        ("generation", u32),
        ("pad", u32),
        ("last_seen", u64),
    )


class HolderKey(ctypes.Structure):
    """`onm_holders` key: a local node (its network and own IPv4, the port's) and the slot of
    an edge pool on which it has a public IP."""

    _fields_ = (("vni", u32), ("ip", u8 * 4), ("pool", u32))


class HolderValue(ctypes.Structure):
    """The gateway holding that public IP (`Tables.public_owners`), slot and serial: every flow
    of the node through the pool goes there while it is alive (`onm.agent.egress.held_by`)."""

    _fields_ = (("gateway", u32), ("serial", u32))


class EdgeSentValue(ctypes.Structure):
    """`onm_edge_sent[gateway slot]`, one CPU's: what node_ingress sent the gateway (IPv4
    datagrams and their octets, as `onm.agent.egress.GatewayCounts`) and the flows it pinned
    to it (a new pin, or one moved there)."""

    _fields_ = (("packets", u64), ("bytes", u64), ("flows", u64))


class DutyValue(ctypes.Structure):
    """A network this edge host's gateway serves (`Tables.duties`), keyed in `onm_duties` by
    each /64 senders address it by and in `onm_tuns` by its TUN's ifindex: the TUN its
    packets enter the kernel by, the gateway's own /64 (what it sends from), the network's
    CIDRs (address and mask in network order, `cidrs` of them); in anycast mode the pool's
    hash fields (`HashFlag`: where its replies are steered)."""

    _fields_ = (
        ("ifindex", u32),
        ("vni", u32),
        ("prefix", u8 * 8),
        ("flags", u16),
        ("cidrs", u16),
        ("cidr_ips", u32 * DUTY_CIDRS),
        ("cidr_masks", u32 * DUTY_CIDRS),
        ("fields", u16),
        ("pad", u16),
    )


class ResidentKey(ctypes.Structure):
    """`onm_residents` key: (network, IPv4), `Tables.residents`."""

    _fields_ = (("vni", u32), ("ip", u8 * 4))


class ResidentValue(ctypes.Structure):
    """Where the resident lives: a gateway's replies go there (`ResidentEntry.substrate`)."""

    _fields_ = (("substrate", u8 * 16),)


class TenantCountsValue(ctypes.Structure):
    """`onm_tenant_counts[network]`, one CPU's: what a gateway carried in the kernel, as
    `onm.agent.gateway.TenantCounts` (IPv4 datagrams and their octets, each way)."""

    _fields_ = (
        ("egress_packets", u64),
        ("egress_bytes", u64),
        ("ingress_packets", u64),
        ("ingress_bytes", u64),
    )


STRUCTS: Final[tuple[type[ctypes.Structure], ...]] = (
    NetworkKey,
    NetworkValue,
    PortKey,
    PortValue,
    MappingKey,
    MappingValue,
    LocalKey,
    LocalValue,
    PoolSourceKey,
    PoolSourceValue,
    SourceKey,
    SourceValue,
    GatewayKey,
    GatewayValue,
    ConfigValue,
    IndexKey,
    CounterValue,
    IdentValue,
    RouteKey,
    RouteValue,
    PoolValue,
    MaglevValue,
    EdgeGatewayValue,
    PinKey,
    PinValue,
    EdgeSentValue,
    HolderKey,
    HolderValue,
    DutyValue,
    ResidentKey,
    ResidentValue,
    TenantCountsValue,
)


class MapKind(enum.Enum):
    HASH = "BPF_MAP_TYPE_HASH"
    ARRAY = "BPF_MAP_TYPE_ARRAY"
    PERCPU_ARRAY = "BPF_MAP_TYPE_PERCPU_ARRAY"
    PERCPU_HASH = "BPF_MAP_TYPE_PERCPU_HASH"
    LPM_TRIE = "BPF_MAP_TYPE_LPM_TRIE"
    LRU_HASH = "BPF_MAP_TYPE_LRU_HASH"

    @property
    def keyed(self) -> bool:
        """Keyed by a struct (arrays by a plain 32-bit index)."""
        return self not in (MapKind.ARRAY, MapKind.PERCPU_ARRAY)


class MapSpec:
    """One map both sides know: its name in the object, kind, key, value and size."""

    __slots__ = ("flags", "key", "kind", "max_entries", "name", "value")

    def __init__(
        self,
        name: str,
        kind: MapKind,
        key: type[ctypes.Structure],
        value: type[ctypes.Structure],
        max_entries: int,
        flags: str = "",
    ) -> None:
        self.name = name
        self.kind = kind
        self.key = key
        self.value = value
        self.max_entries = max_entries
        self.flags = flags
        """`map_flags` as C names (an LPM trie must be BPF_F_NO_PREALLOC)."""


MAPS: Final[tuple[MapSpec, ...]] = (
    MapSpec("onm_ports", MapKind.HASH, PortKey, PortValue, 4096),
    MapSpec("onm_networks", MapKind.HASH, NetworkKey, NetworkValue, 4096),
    MapSpec("onm_mappings", MapKind.HASH, MappingKey, MappingValue, 262144),
    MapSpec("onm_locals", MapKind.HASH, LocalKey, LocalValue, LOCAL_SLOTS),
    MapSpec("onm_sources", MapKind.HASH, SourceKey, SourceValue, 262144),
    MapSpec("onm_gateways", MapKind.HASH, GatewayKey, GatewayValue, 4096),
    MapSpec("onm_settings", MapKind.ARRAY, IndexKey, ConfigValue, 1),
    MapSpec("onm_drops", MapKind.PERCPU_ARRAY, IndexKey, CounterValue, DROP_SLOTS),
    MapSpec("onm_slowpath", MapKind.PERCPU_ARRAY, IndexKey, CounterValue, VERDICT_SLOTS),
    MapSpec("onm_ident", MapKind.PERCPU_ARRAY, IndexKey, IdentValue, 1),
    MapSpec("onm_routes", MapKind.LPM_TRIE, RouteKey, RouteValue, 65536, "BPF_F_NO_PREALLOC"),
    MapSpec("onm_edge_pools", MapKind.ARRAY, IndexKey, PoolValue, POOL_SLOTS),
    MapSpec("onm_maglev", MapKind.ARRAY, IndexKey, MaglevValue, POOL_SLOTS * MAGLEV_STRIDE),
    MapSpec("onm_edge_gateways", MapKind.ARRAY, IndexKey, EdgeGatewayValue, GATEWAY_SLOTS),
    MapSpec("onm_pins", MapKind.LRU_HASH, PinKey, PinValue, PIN_SLOTS),
    MapSpec("onm_edge_sent", MapKind.PERCPU_ARRAY, IndexKey, EdgeSentValue, GATEWAY_SLOTS),
    MapSpec("onm_anycast_sent", MapKind.PERCPU_ARRAY, IndexKey, EdgeSentValue, POOL_SLOTS),
    MapSpec("onm_holders", MapKind.HASH, HolderKey, HolderValue, 4096),
    MapSpec("onm_pool_deliveries", MapKind.PERCPU_HASH, LocalKey, CounterValue, LOCAL_SLOTS),
    MapSpec("onm_pool_sources", MapKind.HASH, PoolSourceKey, PoolSourceValue, LOCAL_SLOTS),
    MapSpec("onm_member_sent", MapKind.PERCPU_HASH, PortKey, CounterValue, LOCAL_SLOTS),
    MapSpec("onm_duties", MapKind.HASH, GatewayKey, DutyValue, 4096),
    MapSpec("onm_tuns", MapKind.HASH, PortKey, DutyValue, 4096),
    MapSpec("onm_residents", MapKind.HASH, ResidentKey, ResidentValue, 262144),
    MapSpec("onm_tenant_counts", MapKind.PERCPU_HASH, NetworkKey, TenantCountsValue, 4096),
)
"""Every map of the programs, as `bpf/include/maps.h` declares it (generated)."""
MAP_BY_NAME: Final = {spec.name: spec for spec in MAPS}
