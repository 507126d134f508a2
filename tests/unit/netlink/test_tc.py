"""Tests for onm.netlink.tc: the delay tree's handles and the u32 keys of a destination /64,
and the selector the kernel reports back (a TCA_U32_SEL captured from `tc filter show` of
the tree `Kernel.ensure_delay_classes` built: 800::1 -> 1:1 matching fd00:0:1:2::/64)."""

from __future__ import annotations

import ipaddress

import pytest

from onm.netlink import tc
from onm.netlink.tc import U32Key

CAPTURED = bytes.fromhex(
    "34000500"  # nla: length 52, TCA_U32_SEL
    "01000200000000000000000000000000"  # tc_u32_sel: TC_U32_TERMINAL, 2 keys
    "fffffffffd0000001800000000000000"  # mask ffffffff, value fd000000, at 24
    "ffffffff000100021c00000000000000"  # mask ffffffff, value 00010002, at 28
)


def test_handles() -> None:
    assert tc.ROOT == 0x10000
    assert [tc.band_class(i) for i in range(3)] == [0x10001, 0x10002, 0x10003]
    assert [tc.band_leaf(i) for i in range(2)] == [0x100000, 0x110000]
    assert tc.filter_handle(0) == 0x80000001  # 800::1
    assert tc.filter_handle(0xFFE) == 0x80000FFF
    with pytest.raises(ValueError, match="at most 4095"):
        tc.filter_handle(0xFFF)
    assert tc.is_filter_node(0x80000001)
    assert not tc.is_filter_node(0x80000000)  # the table itself
    assert not tc.is_filter_node(0)  # the classifier's head


def test_destination_keys_of_a_host_prefix() -> None:
    keys = tc.destination_keys(ipaddress.IPv6Network("fd00:0:1:2::/64"))
    assert keys == (U32Key(0xFD000000, 0xFFFFFFFF, 24), U32Key(0x00010002, 0xFFFFFFFF, 28))
    assert [k.notation() for k in keys] == ["0xfd000000/0xffffffff+24", "0x00010002/0xffffffff+28"]


def test_destination_keys_of_other_lengths() -> None:
    assert tc.destination_keys(ipaddress.IPv6Network("fd00:ab00::/24")) == (
        U32Key(0xFD00AB00, 0xFFFFFF00, 24),
    )
    assert len(tc.destination_keys(ipaddress.IPv6Network("::1/128"))) == 4
    assert tc.destination_keys(ipaddress.IPv6Network("::/0")) == ()


def test_the_kernels_selector_reads_back_as_written() -> None:
    written = tc.destination_keys(ipaddress.IPv6Network("fd00:0:1:2::/64"))
    assert tc.parse_selector(CAPTURED) == written
    with pytest.raises(ValueError, match="too short"):
        tc.parse_selector(CAPTURED[:-1])
    with pytest.raises(ValueError, match="shorter than its header"):
        tc.parse_selector(CAPTURED[:10])
