"""The Internet checksum (RFC 1071) and its incremental update (RFC 1624)."""

from __future__ import annotations

import struct

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from onm.packet import checksum

FAST = settings(max_examples=300, deadline=None)


def reference_ones_sum(data: bytes, initial: int = 0) -> int:
    """RFC 1071 section 4.1 ("C" reference), word by word with end-around carry."""
    if len(data) % 2:
        data += b"\x00"
    total = initial
    for (word,) in struct.iter_unpack("!H", data):
        total += word
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
    return total


words = st.integers(min_value=0, max_value=0xFFFF)
even_data = st.integers(min_value=1, max_value=64).flatmap(
    lambda n: st.binary(min_size=2 * n, max_size=2 * n)
)


# --- Known vectors -------------------------------------------------------------------------------


def test_rfc1071_section3_example() -> None:
    # https://www.rfc-editor.org/rfc/rfc1071#section-3 (byte order independence):
    # 00 01 f2 03 f4 f5 f6 f7 sums to dd f2 in "normal" order and to f2 dd when swapped.
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert checksum.ones_sum(data) == 0xDDF2
    assert checksum.internet_checksum(data) == 0x220D
    swapped = bytes.fromhex("0100 03f2 f5f4 f7f6")
    assert checksum.ones_sum(swapped) == 0xF2DD


def test_ipv4_header_vector() -> None:
    # https://en.wikipedia.org/wiki/Internet_checksum (IPv4 header example):
    # 4500 0073 0000 4000 4011 [b861] c0a8 0001 c0a8 00c7.
    header = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert checksum.internet_checksum(header) == 0xB861
    filled = header[:10] + b"\xb8\x61" + header[12:]
    assert checksum.internet_checksum(filled) == 0


def test_ipv4_header_vector_with_carries() -> None:
    # https://en.wikipedia.org/wiki/IPv4_header_checksum (older revision of the example):
    # 4500 0030 4422 4000 8006 [442e] 8c7c 19ac ae24 1e2b; the sum 0x2BBCF folds to 0xBBD1.
    header = bytes.fromhex("4500003044224000800600008c7c19acae241e2b")
    assert checksum.ones_sum(header) == 0xBBD1
    assert checksum.internet_checksum(header) == 0x442E


def test_rfc1624_section4_example() -> None:
    # https://www.rfc-editor.org/rfc/rfc1624#section-4: the sum of the other header words is
    # 0xCD7A; a field m = 0x5555 becomes m' = 0x3285. HC = 0xDD2F, and recomputation gives
    # HC' = 0x0000, which [Eqn. 3] reproduces (RFC 1141's [Eqn. 2] would give 0xFFFF).
    old = struct.pack("!HH", 0xCD7A, 0x5555)
    new = struct.pack("!HH", 0xCD7A, 0x3285)
    assert checksum.internet_checksum(old) == 0xDD2F
    assert checksum.internet_checksum(new) == 0x0000
    assert checksum.adjust(0xDD2F, 0x5555, 0x3285) == 0x0000
    assert checksum.adjust_bytes(0xDD2F, b"\x55\x55", b"\x32\x85") == 0x0000


def test_rfc1624_erratum_4782_unchanged_field() -> None:
    # https://www.rfc-editor.org/errata/eid4782: HC = 0x0000 and m = m' = 0x5555 must leave
    # the checksum at 0x0000 (end-around carry turns 0xFFFF + 0xAAAA + 0x5555 into -0).
    assert checksum.adjust(0x0000, 0x5555, 0x5555) == 0x0000


def test_zero_and_minus_zero() -> None:
    # RFC 1071 section 1: adding non-zero words never yields +0, only -0 (0xFFFF).
    assert checksum.ones_sum(b"") == 0
    assert checksum.ones_sum(bytes(8)) == 0
    assert checksum.ones_sum(b"\xff\xff") == 0xFFFF
    assert checksum.ones_sum(b"\xff\xff\xff\xff") == 0xFFFF
    assert checksum.ones_sum(b"\x00\x01\xff\xfe") == 0xFFFF
    assert checksum.internet_checksum(bytes(4)) == 0xFFFF
    assert checksum.finish(0xFFFF) == 0


def test_odd_length_is_padded_with_zero() -> None:
    # RFC 1071 section 4.1: a left-over byte is added as the high byte of a word.
    assert checksum.ones_sum(b"\x01") == 0x0100
    assert checksum.ones_sum(b"\x12\x34\x56") == 0x1234 + 0x5600


def test_pseudo_header_v4_layout() -> None:
    # RFC 768 / RFC 9293 section 3.1: src, dst, zero, protocol, TCP/UDP length.
    src, dst = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 7])
    spelled = src + dst + bytes([0, 17]) + struct.pack("!H", 1234)
    assert checksum.pseudo_header_v4(src, dst, 17, 1234) == checksum.ones_sum(spelled)


def test_pseudo_header_v6_layout() -> None:
    # RFC 8200 section 8.1: src, dst, 32-bit upper-layer length, 3 zero octets, next header.
    src = bytes.fromhex("20010db8000000000000000000000001")
    dst = bytes.fromhex("20010db8000000000000000000000002")
    spelled = src + dst + struct.pack("!I", 70000) + bytes([0, 0, 0, 58])
    assert checksum.pseudo_header_v6(src, dst, 58, 70000) == checksum.ones_sum(spelled)


# --- Properties ----------------------------------------------------------------------------------


@FAST
@given(data=st.binary(max_size=200), initial=words)
def test_ones_sum_matches_reference_loop(data: bytes, initial: int) -> None:
    assert checksum.ones_sum(data, initial) == reference_ones_sum(data, initial)
    assert 0 <= checksum.ones_sum(data, initial) <= 0xFFFF


@FAST
@given(data=st.binary(max_size=200))
def test_ones_sum_accepts_memoryview_and_bytearray(data: bytes) -> None:
    expected = checksum.ones_sum(data)
    assert checksum.ones_sum(memoryview(data)) == expected
    assert checksum.ones_sum(bytearray(data)) == expected


@FAST
@given(head=even_data, tail=st.binary(max_size=64))
def test_ones_sum_chains_through_initial(head: bytes, tail: bytes) -> None:
    assert checksum.ones_sum(head + tail) == checksum.ones_sum(tail, checksum.ones_sum(head))


@FAST
@given(a=words, b=words)
def test_add_is_ones_complement_addition(a: int, b: int) -> None:
    assert checksum.add(a, b) == reference_ones_sum(struct.pack("!HH", a, b))


@FAST
@given(data=even_data, at=st.integers(min_value=0, max_value=63))
def test_checksum_written_into_data_verifies(data: bytes, at: int) -> None:
    at = 2 * (at % (len(data) // 2))
    blank = data[:at] + b"\x00\x00" + data[at + 2 :]
    value = checksum.internet_checksum(blank)
    filled = blank[:at] + struct.pack("!H", value) + blank[at + 2 :]
    assert checksum.internet_checksum(filled) == 0


def _same_ones_complement_value(a: int, b: int) -> bool:
    # 0x0000 and 0xFFFF are +0 and -0 of ones' complement arithmetic.
    return a == b or {a, b} == {0x0000, 0xFFFF}


@FAST
@given(data=even_data, at=st.integers(min_value=0, max_value=63), new_word=words)
def test_adjust_equals_recomputation_for_a_word(data: bytes, at: int, new_word: int) -> None:
    at = 2 * (at % (len(data) // 2))
    (old_word,) = struct.unpack_from("!H", data, at)
    new_data = data[:at] + struct.pack("!H", new_word) + data[at + 2 :]
    adjusted = checksum.adjust(checksum.internet_checksum(data), old_word, new_word)
    recomputed = checksum.internet_checksum(new_data)
    if any(new_data):
        assert adjusted == recomputed
    else:
        # All-zero data is the one case where recomputation gives 0xFFFF (~+0) and RFC 1624's
        # equation 3 gives the equivalent 0x0000 (~-0); real headers are never all zero.
        assert (recomputed, adjusted) == (0xFFFF, 0x0000)


@FAST
@given(
    data=st.binary(min_size=40, max_size=80).map(lambda b: b[: len(b) // 2 * 2]),
    at=st.integers(min_value=0, max_value=19),
    size=st.sampled_from([2, 4, 16]),
    replacement=st.binary(min_size=16, max_size=16),
)
def test_adjust_bytes_equals_recomputation_for_a_region(
    data: bytes, at: int, size: int, replacement: bytes
) -> None:
    at = 2 * at
    assume(at + size <= len(data))
    new_data = data[:at] + replacement[:size] + data[at + size :]
    assume(any(new_data))
    adjusted = checksum.adjust_bytes(
        checksum.internet_checksum(data), data[at : at + size], replacement[:size]
    )
    assert adjusted == checksum.internet_checksum(new_data)


@FAST
@given(value=st.integers(min_value=0, max_value=0xFFFE), word=words)
def test_adjust_with_unchanged_word_keeps_checksum(value: int, word: int) -> None:
    # 0xFFFF is excluded: it is only ever the checksum of all-zero data (see above).
    assert checksum.adjust(value, word, word) == value


@FAST
@given(
    data=even_data,
    src4=st.binary(min_size=4, max_size=4),
    dst4=st.binary(min_size=4, max_size=4),
    src6=st.binary(min_size=16, max_size=16),
    dst6=st.binary(min_size=16, max_size=16),
)
def test_pseudo_header_swap_is_one_adjust(
    data: bytes, src4: bytes, dst4: bytes, src6: bytes, dst6: bytes
) -> None:
    # The SIIT use: move a transport checksum from the IPv4 to the IPv6 pseudo-header.
    v4 = checksum.pseudo_header_v4(src4, dst4, 17, len(data))
    v6 = checksum.pseudo_header_v6(src6, dst6, 17, len(data))
    adjusted = checksum.adjust(checksum.internet_checksum(data, v4), v4, v6)
    assert adjusted == checksum.internet_checksum(data, v6)
