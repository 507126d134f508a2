"""onm.model.cidr: every refused block (and parts and supersets of it) is refused, with its
name and RFC; ordinary unicast /8../30 is accepted; Python's own `ipaddress` agrees."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onm.model.cidr import MAX_PREFIX, MIN_PREFIX, REFUSED_BLOCKS, RefusedBlock, refusal

Net = ipaddress.IPv4Network

# The issue's own list (#7, defect 4), then one of each kind of part and superset.
REFUSED: list[tuple[str, str]] = [
    ("0.0.0.0/0", "0.0.0.0/8"),
    ("0.0.0.0/8", '"this network"'),
    ("0.0.0.0/30", "RFC 1122 section 3.2.1.3"),
    ("127.0.0.0/8", "loopback"),
    ("127.0.0.0/24", "loopback"),
    ("127.255.255.252/30", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("169.254.169.252/30", "RFC 3927"),  # the cloud metadata address's neighbourhood
    ("169.0.0.0/8", "link-local"),  # a superset
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.0.168/29", "RFC 6890"),  # NAT64 discovery, 192.0.0.170 and .171
    ("192.0.0.0/8", "192.0.0.0/24"),
    ("224.0.0.0/4", "multicast"),
    ("224.0.0.0/24", "RFC 5771"),
    ("239.255.255.0/24", "multicast"),
    ("232.0.0.0/8", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("250.0.0.0/8", "RFC 1112 section 4"),
    ("255.255.255.255/32", "limited broadcast"),
    ("255.255.255.252/30", "reserved"),
    ("255.0.0.0/8", "reserved"),
]


@pytest.mark.parametrize(("cidr", "named"), REFUSED)
def test_refused_cidrs_name_the_block_and_rfc(cidr: str, named: str) -> None:
    reason = refusal(Net(cidr))
    assert reason is not None
    assert named in reason
    assert "RFC" in reason


@pytest.mark.parametrize("block", REFUSED_BLOCKS, ids=lambda b: str(b.block))
def test_every_block_and_its_ends_are_refused(block: RefusedBlock) -> None:
    assert block.reference.startswith("RFC ")
    length = min(max(block.block.prefixlen, MIN_PREFIX), MAX_PREFIX)
    whole = Net((block.block.network_address, length), strict=False)
    last = Net((block.block.broadcast_address, length), strict=False)
    for cidr in (block.block, whole, last):
        reason = refusal(cidr)
        assert reason is not None, cidr
        named = [b for b in REFUSED_BLOCKS if f" {b.block} (" in reason]
        assert len(named) == 1 and named[0].block.overlaps(cidr), reason
        assert named[0].reference in reason


ACCEPTED = [
    "10.0.0.0/8",  # private use, RFC 1918
    "172.16.0.0/12",
    "192.168.0.0/16",
    "10.0.0.0/30",  # the smallest: one node
    "100.64.0.0/10",  # shared address space, RFC 6598
    "198.18.0.0/15",  # benchmarking, RFC 2544
    "192.0.2.0/24",  # documentation, RFC 5737
    "198.51.100.0/24",
    "203.0.113.0/24",
    "192.88.99.0/24",  # the deprecated 6to4 relay anycast: ordinary unicast again (RFC 7526)
    "192.0.1.0/24",  # right next to 192.0.0.0/24
    "1.0.0.0/8",  # public space
    "126.0.0.0/8",  # right below loopback
    "128.0.0.0/8",  # right above it
    "223.255.255.252/30",  # the last unicast /30 below multicast
    "169.253.0.0/16",
    "169.255.0.0/16",
]


@pytest.mark.parametrize("cidr", ACCEPTED)
def test_ordinary_unicast_is_accepted(cidr: str) -> None:
    assert refusal(Net(cidr)) is None


@pytest.mark.parametrize(
    ("cidr", "reason"),
    [
        ("10.0.0.0/31", "too small"),
        ("10.0.0.0/32", "too small"),
        ("8.0.0.0/7", "too large"),
        ("16.0.0.0/4", "too large"),
    ],
)
def test_prefix_length_is_8_to_30(cidr: str, reason: str) -> None:
    found = refusal(Net(cidr))
    assert found is not None and reason in found


def _special(address: ipaddress.IPv4Address) -> bool:
    """What Python's `ipaddress` itself says cannot be a node's ordinary unicast address."""
    return (
        address.is_multicast
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
        or address in Net("0.0.0.0/8")
    )


@given(st.integers(0, (1 << 32) - 1), st.integers(MIN_PREFIX, MAX_PREFIX), st.data())
def test_accepted_cidrs_hold_no_special_address(
    start: int, length: int, data: st.DataObject
) -> None:
    cidr = Net((start, length), strict=False)
    if refusal(cidr) is not None:
        return
    offset = data.draw(st.integers(0, cidr.num_addresses - 1))
    assert not _special(cidr.network_address + offset)
    assert not _special(cidr.network_address) and not _special(cidr.broadcast_address)


@given(st.integers(0, (1 << 32) - 1))
def test_special_addresses_are_never_in_an_accepted_cidr(value: int) -> None:
    address = ipaddress.IPv4Address(value)
    if not _special(address):
        return
    for length in (MIN_PREFIX, 16, 24, MAX_PREFIX):
        assert refusal(Net((address, length), strict=False)) is not None
