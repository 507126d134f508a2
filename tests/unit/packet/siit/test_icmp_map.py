"""The ICMP mapping tables (`onm.packet.siit.icmp_map`) checked against the RFC text.

Each expected table below is written out from the RFC, not copied from the module, so a typo in
either shows up here. The translation tests (`test_four_to_six.py`) exercise the same rows on
real packets.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onm.packet.siit import icmp_map
from onm.packet.siit.icmp_map import Rest

# https://www.rfc-editor.org/rfc/rfc7915#section-4.2 "ICMPv4 error messages":
# (type, code) -> (ICMPv6 type, code, how the rest-of-header is rewritten).
RFC7915_SECTION_4_2 = {
    (3, 0): (1, 0, Rest.ZERO),
    (3, 1): (1, 0, Rest.ZERO),
    (3, 2): (4, 1, Rest.NEXT_HEADER),
    (3, 3): (1, 4, Rest.ZERO),
    (3, 4): (2, 0, Rest.MTU),
    (3, 5): (1, 0, Rest.ZERO),
    (3, 6): (1, 0, Rest.ZERO),
    (3, 7): (1, 0, Rest.ZERO),
    (3, 8): (1, 0, Rest.ZERO),
    (3, 9): (1, 1, Rest.ZERO),
    (3, 10): (1, 1, Rest.ZERO),
    (3, 11): (1, 0, Rest.ZERO),
    (3, 12): (1, 0, Rest.ZERO),
    (3, 13): (1, 1, Rest.ZERO),
    (3, 15): (1, 1, Rest.ZERO),
    (11, 0): (3, 0, Rest.ZERO),
    (11, 1): (3, 1, Rest.ZERO),
    (12, 0): (4, 0, Rest.POINTER),
    (12, 2): (4, 0, Rest.POINTER),
}

# https://www.rfc-editor.org/rfc/rfc7915#section-4.2 Figure 3 (rows with an IPv6 counterpart).
RFC7915_FIGURE_3 = {0: 0, 1: 1, 2: 4, 3: 4, 8: 7, 9: 6}
RFC7915_FIGURE_3 |= dict.fromkeys(range(12, 16), 8) | dict.fromkeys(range(16, 20), 24)

# https://www.rfc-editor.org/rfc/rfc1191#section-7 Table 7-1, the plateaus.
RFC1191_PLATEAUS = (65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68)


def test_errors_4to6_is_rfc7915_section_4_2() -> None:
    table = {key: tuple(mapping) for key, mapping in icmp_map.ERRORS_4TO6.items()}
    assert table == RFC7915_SECTION_4_2


def test_echo_4to6_is_rfc7915_section_4_2() -> None:
    """Echo Request 8 -> 128, Echo Reply 0 -> 129; the reverse table is its inverse."""
    assert icmp_map.ECHO_4TO6 == {8: 128, 0: 129}
    assert {v6: v4 for v4, v6 in icmp_map.ECHO_4TO6.items()} == icmp_map.ECHO_6TO4


@pytest.mark.parametrize("pointer", range(256))
def test_pointer_4to6_is_figure_3(pointer: int) -> None:
    """Every IPv4 octet pointer: Figure 3's IPv6 octet, or absent ("n/a" or not listed)."""
    assert icmp_map.POINTER_4TO6.get(pointer) == RFC7915_FIGURE_3.get(pointer)


def test_pointer_4to6_lands_on_field_starts() -> None:
    """Translated pointers name the first octet of an IPv6 header field (RFC 8200 section 3)."""
    field_starts = {0, 1, 4, 6, 7, 8, 24}
    assert set(icmp_map.POINTER_4TO6.values()) <= field_starts


def test_plateaus_are_rfc1191_table_7_1() -> None:
    assert icmp_map.MTU_PLATEAUS == RFC1191_PLATEAUS


@settings(max_examples=200, deadline=None)
@given(total_length=st.integers(0, 0xFFFF))
def test_plateau_mtu_is_greatest_plateau_below(total_length: int) -> None:
    """RFC 7915 4.2: the greatest plateau less than the Total Length, never below 1280."""
    below = [plateau for plateau in RFC1191_PLATEAUS if plateau < total_length]
    assert icmp_map.plateau_mtu(total_length) == max([*below, 0, 1280])


def test_length_attribute_messages_are_rfc4884_section_4() -> None:
    """ICMPv4 Destination Unreachable, Time Exceeded and Parameter Problem; ICMPv6 Destination
    Unreachable and Time Exceeded (Packet Too Big and Parameter Problem have none)."""
    assert set(icmp_map.LENGTH_ATTRIBUTE_V4) == {3, 11, 12}
    assert set(icmp_map.LENGTH_ATTRIBUTE_V6) == {1, 3}
