"""RFC 4884 layout of an ICMP error's original datagram field and extension structure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onm.packet import rfc4884

EXTENSION = bytes.fromhex("2000dfff") + bytes.fromhex("00080101") + bytes.fromhex("0000a1ff")


@pytest.mark.parametrize(("words", "unit"), [(32, 4), (16, 8), (0, 4), (3, 8)])
def test_split_at_the_length_attribute(words: int, unit: int) -> None:
    """RFC 4884 section 4: the length attribute counts the original datagram field in 32-bit
    (ICMPv4) or 64-bit (ICMPv6) words; zero means no extension."""
    body = bytes(range(200))
    quoted, extension = rfc4884.split(body, words, unit)
    if words:
        assert (quoted, extension) == (body[: words * unit], body[words * unit :])
    else:
        assert (quoted, extension) == (body, b"")


def test_layout_without_extension_only_cuts_to_room() -> None:
    assert rfc4884.layout(bytes(600), b"", 4, 548) == (bytes(548), 0)
    assert rfc4884.layout(b"abc", b"", 8, 1232) == (b"abc", 0)


@pytest.mark.parametrize(
    ("datagram", "unit", "field", "words"),
    [
        (60, 4, 128, 32),  # RFC 4884 section 4: zero padded to 128 octets
        (146, 8, 152, 19),  # ... and to the next 64-bit word in ICMPv6
        (130, 4, 132, 33),  # ... or 32-bit word in ICMPv4
        (128, 8, 128, 16),
    ],
)
def test_layout_pads_the_original_datagram(
    datagram: int, unit: int, field: int, words: int
) -> None:
    data = bytes([0xAB]) * datagram
    body, length = rfc4884.layout(data, EXTENSION, unit, 1232)
    assert length == words
    assert body == data + bytes(field - datagram) + EXTENSION


def test_layout_cuts_the_quote_to_whole_words_before_the_extension() -> None:
    """576 - 28 = 548 octets of room, 12 of extension: 536 octets (134 words) of quote."""
    body, length = rfc4884.layout(bytes(range(256)) * 4, EXTENSION, 4, 548)
    assert (length, len(body)) == (134, 548)
    assert body[536:] == EXTENSION


def test_layout_never_says_more_than_255_words() -> None:
    """RFC 4884 section 4: the attribute is 8 bits, so 255 words of 32 bits at most."""
    body, length = rfc4884.layout(bytes(3000), EXTENSION, 4, 4000)
    assert (length, len(body)) == (255, 1020 + len(EXTENSION))


def test_layout_leaves_out_an_extension_without_room_beside_128_octets() -> None:
    extension = bytes(421)
    assert rfc4884.layout(bytes(108), extension, 4, 548) == (bytes(108), 0)
    assert rfc4884.layout(bytes(108), bytes(420), 4, 548)[1] == 32


@given(
    st.binary(max_size=1500),
    st.binary(max_size=1500),
    st.sampled_from([4, 8]),
    st.integers(0, 1500),
)
def test_layout_fits_and_round_trips(
    datagram: bytes, extension: bytes, unit: int, room: int
) -> None:
    """Whatever goes in: the body fits the room, and splitting it again at the length it
    reports gives back the extension and a prefix of the datagram (then zeros)."""
    body, words = rfc4884.layout(datagram, extension, unit, room)
    assert len(body) <= max(room, 0)
    quoted, back = rfc4884.split(body, words, unit)
    if words:
        assert back == extension
        assert len(quoted) >= rfc4884.MIN_ORIGINAL and len(quoted) % unit == 0
        assert words <= rfc4884.MAX_WORDS
        kept = min(len(datagram), len(quoted))
        assert quoted[:kept] == datagram[:kept] and not any(quoted[kept:])
    else:
        assert body == datagram[: max(room, 0)]
