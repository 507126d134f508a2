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

from onm.packet.drop import DropReason


class PortFlag(enum.IntFlag):
    """Properties of a local node's port that send its traffic to the slow path."""

    POOL_MEMBER = 1
    """The node may send from pool IPs and its deliveries are counted per member."""


class NetworkFlag(enum.IntFlag):
    """A network's translator settings (`SiitConfig`) and encoding, as the programs test them."""

    DECREMENT_TTL = 1
    COPY_TOS = 2
    ENCAP = 4
    """RFC 2473 encapsulation, not SIIT: the slow path's, for now."""


class MappingFlag(enum.IntFlag):
    """What a requester's resolution leads to besides a remote substrate address."""

    LOCAL = 1
    """The target lives on this host: delivered node to node by the slow path, for now."""
    POOL = 2
    """A pool target: the slow path counts rotation and deliveries."""


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
    NOT_IPV6 = 17
    EXTENSION_HEADER = 18
    NOT_LOCAL = 19
    FROM_GATEWAY = 20
    TRUNCATED = 21


VERDICT_SLOTS: Final = max(SlowPath) + 1
"""Entries of the per-CPU slow-path counter array, indexed by `SlowPath`."""
DROP_SLOTS: Final = max(DropReason) + 1
"""Entries of the per-CPU drop counter array, indexed by `DropReason`."""
ICMP_SUM_WORDS: Final = 1024
"""The programs checksum ICMP messages of at most this many 16-bit words; longer ones go slow."""

u8 = ctypes.c_uint8
u16 = ctypes.c_uint16
u32 = ctypes.c_uint32
u64 = ctypes.c_uint64


class PortKey(ctypes.Structure):
    """`onm_ports` key: the host-side interface of a node (the program's ingress ifindex)."""

    _fields_ = (("ifindex", u32),)


class PortValue(ctypes.Structure):
    """A local node's port: what its frames must carry and what they leave from."""

    _fields_ = (
        ("vni", u32),
        ("ip", u8 * 4),
        ("substrate", u8 * 16),
        ("mac", u8 * 6),
        ("flags", u16),
    )


class NetworkKey(ctypes.Structure):
    _fields_ = (("vni", u32),)


class NetworkValue(ctypes.Structure):
    """A network's translator settings (`NetworkEntry.siit`) and router MAC."""

    _fields_ = (
        ("lowest_ipv6_mtu", u16),
        ("ipv6_mtu", u16),
        ("ipv4_mtu", u16),
        ("router_mac", u8 * 6),
        ("flags", u32),
    )


class MappingKey(ctypes.Structure):
    """`onm_mappings` key: a requester (its port) and a target IPv4, as `Resolver.cache`."""

    _fields_ = (("ifindex", u32), ("target", u8 * 4))


class MappingValue(ctypes.Structure):
    """Where the target lives and the MAC the requester was told (the frame must carry it)."""

    _fields_ = (
        ("substrate", u8 * 16),
        ("mac", u8 * 6),
        ("flags", u16),
    )


class LocalKey(ctypes.Structure):
    """`onm_locals` key: a local node's substrate address (`Tables.by_substrate`)."""

    _fields_ = (("substrate", u8 * 16),)


class LocalValue(ctypes.Structure):
    """The port a substrate packet for that address is delivered to."""

    _fields_ = (
        ("ifindex", u32),
        ("vni", u32),
        ("ip", u8 * 4),
        ("mac", u8 * 6),
        ("flags", u16),
    )


class SourceKey(ctypes.Structure):
    """`onm_sources` key: (network, resident IPv4, substrate source): one allowed sender.

    The writer leaves out local nodes' addresses (their packets never cross the substrate), so a
    hit here is exactly receive.py's "resident and source in resident.sources and not local".
    """

    _fields_ = (("vni", u32), ("ip", u8 * 4), ("source", u8 * 16))


class SourceValue(ctypes.Structure):
    """The MAC the resident is known by (the delivered frame's source)."""

    _fields_ = (("mac", u8 * 6), ("pad", u16))


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


STRUCTS: Final[tuple[type[ctypes.Structure], ...]] = (
    PortKey,
    PortValue,
    NetworkKey,
    NetworkValue,
    MappingKey,
    MappingValue,
    LocalKey,
    LocalValue,
    SourceKey,
    SourceValue,
    GatewayKey,
    GatewayValue,
    ConfigValue,
    IndexKey,
    CounterValue,
    IdentValue,
)


class MapKind(enum.Enum):
    HASH = "BPF_MAP_TYPE_HASH"
    ARRAY = "BPF_MAP_TYPE_ARRAY"
    PERCPU_ARRAY = "BPF_MAP_TYPE_PERCPU_ARRAY"


class MapSpec:
    """One map both sides know: its name in the object, kind, key, value and size."""

    __slots__ = ("key", "kind", "max_entries", "name", "value")

    def __init__(
        self,
        name: str,
        kind: MapKind,
        key: type[ctypes.Structure],
        value: type[ctypes.Structure],
        max_entries: int,
    ) -> None:
        self.name = name
        self.kind = kind
        self.key = key
        self.value = value
        self.max_entries = max_entries


MAPS: Final[tuple[MapSpec, ...]] = (
    MapSpec("onm_ports", MapKind.HASH, PortKey, PortValue, 4096),
    MapSpec("onm_networks", MapKind.HASH, NetworkKey, NetworkValue, 4096),
    MapSpec("onm_mappings", MapKind.HASH, MappingKey, MappingValue, 262144),
    MapSpec("onm_locals", MapKind.HASH, LocalKey, LocalValue, 4096),
    MapSpec("onm_sources", MapKind.HASH, SourceKey, SourceValue, 262144),
    MapSpec("onm_gateways", MapKind.HASH, GatewayKey, GatewayValue, 4096),
    MapSpec("onm_settings", MapKind.ARRAY, IndexKey, ConfigValue, 1),
    MapSpec("onm_drops", MapKind.PERCPU_ARRAY, IndexKey, CounterValue, DROP_SLOTS),
    MapSpec("onm_slowpath", MapKind.PERCPU_ARRAY, IndexKey, CounterValue, VERDICT_SLOTS),
    MapSpec("onm_ident", MapKind.PERCPU_ARRAY, IndexKey, IdentValue, 1),
)
"""Every map of the programs, as `bpf/include/maps.h` declares it (generated)."""
MAP_BY_NAME: Final = {spec.name: spec for spec in MAPS}
