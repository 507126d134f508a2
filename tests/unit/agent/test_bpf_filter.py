"""onm.agent.io.cbpf: the hand-written classic BPF programs, checked without privileges.

The instructions are compared with the listing they were written from, the encoding with the
struct sock_filter layout, and the programs are run over scapy frames by a tiny interpreter of
the subset they use (semantics: Documentation/networking/filter.rst, "BPF engine and
instruction set"; an out-of-range load ends the program with 0, net/core/filter.c).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from onm.agent.io.cbpf import (
    ACCEPT_SNAPLEN,
    BPF_MAXINSNS,
    MAX_PREFIXES,
    BpfInsn,
    encode_program,
    ethertype_filter,
    ipv6_dst_prefix_filter,
    ipv6_dst_prefixes_filter,
)
from onm.errors import InvalidInputError

PREFIX = bytes.fromhex("fd00000012345678")
"""fd00:0:1234:5678::/64, a host /64 under the default organisation (DESIGN.md section 2)."""


def run_cbpf(program: Sequence[tuple[int, int, int, int]], frame: bytes) -> int:
    """What the kernel's classic BPF engine returns for `frame` (the subset our filters use)."""
    accumulator = 0
    pc = 0
    while True:
        code, jt, jf, k = program[pc]
        pc += 1
        if code in (0x20, 0x28, 0x30):  # ld/ldh/ldb [k]: BPF_LD | BPF_W/H/B | BPF_ABS
            size = {0x20: 4, 0x28: 2, 0x30: 1}[code]
            if k + size > len(frame):
                return 0
            accumulator = int.from_bytes(frame[k : k + size], "big")
        elif code == 0x15:  # jeq #k: BPF_JMP | BPF_JEQ | BPF_K
            pc += jt if accumulator == k else jf
        elif code == 0x06:  # ret #k: BPF_RET | BPF_K
            return k
        else:
            raise AssertionError(f"opcode {code:#x} is outside the interpreted subset")


def frame6(destination: str) -> bytes:
    return bytes(
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IPv6(src="fd00:0:1234:9999::1", dst=destination)
        / UDP(sport=1, dport=2)
        / Raw(b"payload")
    )


def test_prefix_program_is_the_listing() -> None:
    # ldh [12]; jeq #0x86dd; ld [38]; jeq #hi32; ld [42]; jeq #lo32; ret #262144; ret #0
    assert ipv6_dst_prefix_filter(PREFIX) == [
        (0x28, 0, 0, 12),
        (0x15, 0, 5, 0x86DD),
        (0x20, 0, 0, 38),
        (0x15, 0, 3, 0xFD000000),
        (0x20, 0, 0, 42),
        (0x15, 0, 1, 0x12345678),
        (0x06, 0, 0, 262144),
        (0x06, 0, 0, 0),
    ]


def test_every_false_branch_lands_on_drop() -> None:
    program = ipv6_dst_prefix_filter(PREFIX)
    for position, (code, _jt, jf, _k) in enumerate(program):
        if code == 0x15:
            assert program[position + 1 + jf] == BpfInsn(0x06, 0, 0, 0)


def test_offset_38_is_the_ipv6_destination() -> None:
    destination = "fd00:0:1234:5678:a00:1:c0a8:105"
    frame = frame6(destination)
    assert frame[38:54] == socket.inet_pton(socket.AF_INET6, destination)
    assert frame[38:46] == PREFIX


def test_ethertype_program_is_the_listing() -> None:
    assert ethertype_filter(0x88B5) == [
        (0x28, 0, 0, 12),
        (0x15, 0, 1, 0x88B5),
        (0x06, 0, 0, ACCEPT_SNAPLEN),
        (0x06, 0, 0, 0),
    ]


def test_encoding_is_struct_sock_filter() -> None:
    program = ethertype_filter(0x86DD)
    encoded = encode_program(program)
    assert len(encoded) == 8 * len(program)
    assert list(struct.iter_unpack("=HBBI", encoded)) == program
    assert encoded[8:16] == struct.pack("=HBBI", 0x15, 0, 1, 0x86DD)


@pytest.mark.parametrize(
    ("destination", "kept"),
    [
        ("fd00:0:1234:5678::1", ACCEPT_SNAPLEN),
        ("fd00:0:1234:5678:a00:1:c0a8:105", ACCEPT_SNAPLEN),
        ("fd00:0:1234:5678:ffff:ffff:ffff:ffff", ACCEPT_SNAPLEN),
        ("fd00:0:1234:5679::1", 0),  # low 32 bits of the /64 differ
        ("fd00:1:1234:5678::1", 0),  # high 32 bits differ
        ("fd00:0:1234:9999::1", 0),  # the source's /64, not ours
        ("ff02::1", 0),
    ],
)
def test_prefix_filter_over_ipv6_frames(destination: str, kept: int) -> None:
    assert run_cbpf(ipv6_dst_prefix_filter(PREFIX), frame6(destination)) == kept


def test_prefix_filter_drops_everything_else() -> None:
    program = ipv6_dst_prefix_filter(PREFIX)
    matching = frame6("fd00:0:1234:5678::1")
    others = [
        bytes(Ether() / IP(dst="10.0.0.1") / UDP() / Raw(b"\xfd\x00" * 40)),
        bytes(Ether() / ARP(pdst="10.0.0.1")),
        # A VLAN tag still in the frame moves everything by 4 bytes: not ours.
        bytes(Ether() / Dot1Q(vlan=5) / IPv6(dst="fd00:0:1234:5678::1") / UDP()),
        matching[:40],  # cut inside the destination: the load runs off the end
        matching[:13],
    ]
    for frame in others:
        assert run_cbpf(program, frame) == 0
    assert run_cbpf(program, matching[:46]) == ACCEPT_SNAPLEN  # the /64 is all it reads


def test_ethertype_filter_over_frames() -> None:
    program = ethertype_filter(0x0806)
    assert run_cbpf(program, bytes(Ether() / ARP())) == ACCEPT_SNAPLEN
    assert run_cbpf(program, frame6("fd00::1")) == 0
    assert run_cbpf(program, b"\x00" * 12) == 0


@pytest.mark.parametrize("prefix", [b"", b"\x00" * 7, b"\x00" * 9, b"\x00" * 16])
def test_prefix_must_be_a_64(prefix: bytes) -> None:
    with pytest.raises(InvalidInputError, match="prefix"):
        ipv6_dst_prefix_filter(prefix)


def test_bad_programs_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        ethertype_filter(0x10000)
    with pytest.raises(InvalidInputError):
        encode_program([])
    with pytest.raises(InvalidInputError):
        encode_program([(0x06, 0, 0, 0)] * (BPF_MAXINSNS + 1))
    with pytest.raises(InvalidInputError, match="instruction 1"):
        encode_program([(0x06, 0, 0, 0), (0x15, 256, 0, 0)])


ANYCAST = bytes.fromhex("fd00000040000000")
"""fd00:0:4000::/64, the first anycast /64 (onm.addressing.anycast_prefix(0))."""


def test_several_prefixes_accept_each_and_nothing_else() -> None:
    program = ipv6_dst_prefixes_filter((PREFIX, ANYCAST))
    assert len(program) == 2 + 4 * 2 + 2
    assert ipv6_dst_prefixes_filter((PREFIX,)) == ipv6_dst_prefix_filter(PREFIX)
    for destination, kept in (
        ("fd00:0:1234:5678::1", ACCEPT_SNAPLEN),
        ("fd00:0:4000:0:fc00:1:1e00:202", ACCEPT_SNAPLEN),
        ("fd00:0:4000:1::1", 0),  # the next anycast /64
        ("fd00:0:1234:5679::1", 0),
    ):
        assert run_cbpf(program, frame6(destination)) == kept, destination
    arp = bytes(Ether() / ARP())
    assert run_cbpf(program, arp) == 0


def test_prefix_lists_out_of_range_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="prefixes"):
        ipv6_dst_prefixes_filter(())
    with pytest.raises(InvalidInputError, match="prefixes"):
        ipv6_dst_prefixes_filter([PREFIX] * (MAX_PREFIXES + 1))
    with pytest.raises(InvalidInputError, match="prefix"):
        ipv6_dst_prefixes_filter((PREFIX, b"short"))
    longest = ipv6_dst_prefixes_filter([PREFIX] * MAX_PREFIXES)
    assert all(jt <= 255 and jf <= 255 for _c, jt, jf, _k in longest)
    encode_program(longest)
