"""Running the compiled eBPF programs on frames (BPF_PROG_TEST_RUN) beside the Python core.

`Outcome` is what a program did to one frame: redirected with new bytes, dropped for a counted
reason, or handed to the slow path untouched for a counted reason. `node_run` and
`substrate_run` fill the maps so that the program sees the same two endpoints the agent's
`PairMapper` would, run the frame, and read the counters back.
"""

from __future__ import annotations

import ctypes
import ipaddress
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from onm.addressing import embed_ipv4
from onm.agent.datapath.ebpf import layout
from onm.agent.datapath.ebpf.libbpf import (
    TC_ACT_OK,
    TC_ACT_REDIRECT,
    TC_ACT_SHOT,
    BpfObject,
    BpfProgram,
)
from onm.agent.datapath.ebpf.maps import (
    DatapathMaps,
    gateway_key,
    mapping_key,
    mapping_value,
    network_settings,
    source_key,
)
from onm.packet.drop import DropReason
from onm.packet.siit import SiitConfig, UdpZeroChecksum

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "bpf"
LOOPBACK = 1
"""BPF_PROG_TEST_RUN hands tc programs an skb on the loopback device: the port's ifindex."""
SUBSTRATE_IFINDEX = 2
VNI = 7
PORT_MAC = bytes.fromhex("020000000001")
TARGET_MAC = bytes.fromhex("020000000002")
SENDER_MAC = bytes.fromhex("02000000000a")
ROUTER_MAC = b"\x0a\x00\x00" + VNI.to_bytes(3, "big")
IDENTIFICATION = 0x1234
HOST_A = 0xFD00_0000_0102_0300
HOST_B = 0xFD00_0000_0102_0400
AGENT = SiitConfig(
    lowest_ipv6_mtu=1500,
    ipv6_mtu=1500,
    ipv4_mtu=1480,
    decrement_ttl=False,
    udp_zero_checksum=UdpZeroChecksum.COMPUTE,
    icmp_source_v4=bytes((10, 0, 0, 254)),
)
"""What `onm.agent.tables` gives a network on a 1500-octet substrate."""
NODE = "10.0.0.1"
PEER = "10.0.0.2"


def v4(address: str) -> bytes:
    return ipaddress.IPv4Address(address).packed


def substrate(host: int, address: bytes) -> bytes:
    return embed_ipv4(host, VNI, address)


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: int
    packet: bytes
    drop: DropReason | None = None
    slow: layout.SlowPath | None = None


class Loaded:
    """One object file loaded, its program and maps; counters read as deltas per run."""

    def __init__(self, name: str, program: str) -> None:
        path = BUILD / f"{name}.o"
        if not path.exists():
            raise FileNotFoundError(f"{path}: run `make bpf` first")
        self.obj = BpfObject(path)
        self.program: BpfProgram = self.obj.program(program)
        self.maps = DatapathMaps(self.obj)
        self.written: list[tuple[str, ctypes.Structure]] = []

    def clear(self) -> None:
        """Remove every entry `put` wrote (counters stay: runs read deltas)."""
        for name, key in self.written:
            self.maps[name].delete(key)
        self.written.clear()

    def put(self, name: str, key: ctypes.Structure, value: ctypes.Structure) -> None:
        self.maps[name].update(key, value)
        self.written.append((name, key))

    def run(self, frame: bytes) -> Outcome:
        drops = self.maps.drops()
        slows = self.maps.slow_paths()
        result = self.program.test_run(frame)
        drop = _changed(drops, self.maps.drops())
        slow = _changed(slows, self.maps.slow_paths())
        if result.verdict == TC_ACT_SHOT:
            assert slow is None and drop is not None, "a drop is counted, once"
        elif result.verdict == TC_ACT_OK:
            assert drop is None and slow is not None, "a hand-over is counted, once"
            assert result.packet == frame, "the slow path gets the frame untouched"
        else:
            assert result.verdict == TC_ACT_REDIRECT, result.verdict
            assert drop is None and slow is None
        return Outcome(
            result.verdict,
            result.packet,
            DropReason(drop) if drop is not None else None,
            layout.SlowPath(slow) if slow is not None else None,
        )

    def close(self) -> None:
        self.obj.close()


def verdicts_of(
    check: Callable[[Loaded, SiitConfig, bytes], Outcome],
    loaded: Loaded,
    config: SiitConfig,
    vectors: Iterable[tuple[str, bytes]],
) -> dict[int, int]:
    """`check` on every named vector (a failure names it): how many got each verdict."""
    verdicts: dict[int, int] = {}
    for name, packet in vectors:
        try:
            out = check(loaded, config, packet)
        except AssertionError as exc:
            raise AssertionError(f"vector {name}: {exc}") from None
        verdicts[out.verdict] = verdicts.get(out.verdict, 0) + 1
    return verdicts


def _changed(before: Mapping[int, int], after: Mapping[int, int]) -> int | None:
    moved = [k for k in after if after[k] != before.get(k, 0)]
    assert len(moved) <= 1, moved
    for k in moved:
        assert after[k] == before.get(k, 0) + 1
    return moved[0] if moved else None


@pytest.fixture(scope="module", name="node")
def node_fixture() -> Iterator[Loaded]:
    """node_ingress.o, loaded once per module."""
    loaded = Loaded("node_ingress", "onm_node_ingress")
    yield loaded
    loaded.close()


@pytest.fixture(scope="module", name="sub")
def sub_fixture() -> Iterator[Loaded]:
    """substrate_ingress.o, loaded once per module."""
    loaded = Loaded("substrate_ingress", "onm_substrate_ingress")
    yield loaded
    loaded.close()


def network_value(config: SiitConfig, encap: bool = False) -> layout.NetworkValue:
    return network_settings(config, ROUTER_MAC, encap=encap)


def _octets(data: bytes) -> ctypes.Array[ctypes.c_uint8]:
    return (ctypes.c_uint8 * len(data)).from_buffer_copy(data)


def fill_node(
    node: Loaded,
    config: SiitConfig,
    local4: bytes,
    local6: bytes,
    remote4: bytes,
    remote6: bytes | None,
    *,
    port_flags: int = 0,
    mapping_flags: int = 0,
    encap: bool = False,
) -> None:
    """The maps as the agent writes them for a node (local4 at local6) that resolved remote4."""
    node.clear()
    node.maps.set_config(SUBSTRATE_IFINDEX)
    node.put(
        "onm_ports",
        layout.PortKey(LOOPBACK),
        layout.PortValue(
            vni=VNI,
            ip=_octets(local4),
            substrate=_octets(local6),
            mac=_octets(PORT_MAC),
            flags=int(port_flags),
            network=network_value(config, encap),
        ),
    )
    if remote6 is not None:
        node.put(
            "onm_mappings",
            mapping_key(LOOPBACK, remote4),
            mapping_value(remote6, TARGET_MAC, layout.MappingFlag(mapping_flags)),
        )


def fill_substrate(
    sub: Loaded,
    config: SiitConfig,
    destination: bytes,
    node_ip: bytes,
    source: bytes,
    *,
    vni: int | None = None,
    allowed: bool = True,
    gateway: bool = False,
    local_flags: int = 0,
    encap: bool = False,
) -> None:
    """The maps for a local node (node_ip at `destination`) and a resident sending from `source`."""
    vni = int.from_bytes(destination[9:12], "big") if vni is None else vni
    sub.clear()
    sub.maps.set_identification(IDENTIFICATION)
    sub.put(
        "onm_locals",
        layout.LocalKey(_octets(destination)),
        layout.LocalValue(
            ifindex=LOOPBACK,
            vni=vni,
            ip=_octets(node_ip),
            mac=_octets(PORT_MAC),
            flags=int(local_flags),
            network=network_value(config, encap),
        ),
    )
    if allowed:
        sub.put(
            "onm_sources",
            source_key(vni, source[12:16], source),
            layout.SourceValue(mac=_octets(SENDER_MAC)),
        )
    if gateway:
        sub.put("onm_gateways", gateway_key(vni, source[:8]), layout.GatewayValue(1))


def ethernet(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> bytes:
    return dst + src + ethertype.to_bytes(2, "big") + payload


def write_wanted(loaded: Loaded, maps: Mapping[str, Mapping[bytes, bytes]]) -> None:
    """Every map's entries as the adapter writes them (`entries.wanted`), raw."""
    loaded.clear()
    loaded.maps.set_config(SUBSTRATE_IFINDEX)
    for name, written in maps.items():
        spec = layout.MAP_BY_NAME[name]
        for key, value in written.items():
            loaded.put(name, spec.key.from_buffer_copy(key), spec.value.from_buffer_copy(value))
