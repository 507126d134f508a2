"""onm.model.validate: each check returns the parsed value or names the field it refuses."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onm.errors import InvalidInputError, UnprocessableError
from onm.model import validate
from onm.model.ids import PREFIXES, new_id


@pytest.mark.parametrize("value", ["a", "0", "web-1", "a" * 63, "1-2-3", "x9"])
def test_good_names(value: str) -> None:
    assert validate.name("name", value) == value


@pytest.mark.parametrize(
    "value",
    ["", "A", "web_1", "-web", "web-", "a" * 64, "a.b", "a b", "a/b", "ü", "web\n"],
)
def test_bad_names(value: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        validate.name("label", value)
    assert caught.value.field == "label"
    assert repr(value) in caught.value.reason


@given(st.text(max_size=70))
def test_name_accepts_exactly_dns_labels_that_are_not_ids(value: str) -> None:
    label = (
        0 < len(value) <= 63
        and all(c in "abcdefghijklmnopqrstuvwxyz0123456789-" for c in value)
        and value[0] != "-"
        and value[-1] != "-"
        and not (
            value[:4] in {f"{p}-" for p in PREFIXES.values()}
            and len(value) == 16
            and all(c in "0123456789abcdef" for c in value[4:])
        )
    )
    try:
        validate.name("name", value)
    except InvalidInputError:
        assert not label
    else:
        assert label


def test_cidrs_parse_in_order() -> None:
    assert validate.cidrs("cidrs", ["10.1.0.0/16", "10.0.0.0/24"]) == (
        ipaddress.IPv4Network("10.1.0.0/16"),
        ipaddress.IPv4Network("10.0.0.0/24"),
    )


def test_adjacent_cidrs_do_not_overlap() -> None:
    assert len(validate.cidrs("cidrs", ["10.0.0.0/25", "10.0.0.128/25"])) == 2


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ([], "at least one CIDR"),
        (["10.0.0.0/8", "10.200.0.0/16"], "overlaps"),
        (["10.0.0.5/24"], "not an IPv4 CIDR"),
        (["10.0.0.0/31"], "too small"),
        (["10.0.0.0/16", "10.0.0.0/8"], "overlaps"),
        (["10.0.0.0/24", "224.0.0.0/4"], "multicast"),
        (["10.0.0.0/24"] * 33, "at most 32"),
    ],
)
def test_bad_cidrs(values: list[str], reason: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        validate.cidrs("cidrs", values)
    assert caught.value.field == "cidrs"
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("values", "status"),
    [
        (["10.0.0.5/24"], 400),  # not a CIDR at all: malformed
        ([], 400),
        (["127.0.0.0/8"], 422),  # a CIDR, but one the rule refuses (onm.model.cidr)
        (["0.0.0.0/0"], 422),
        (["10.0.0.0/31"], 422),
        (["10.0.0.0/24", "10.0.0.0/25"], 422),
    ],
)
def test_malformed_cidrs_are_400_refused_ones_422(values: list[str], status: int) -> None:
    with pytest.raises(InvalidInputError) as caught:
        validate.cidrs("cidrs", values)
    assert caught.value.http_status == status
    assert isinstance(caught.value, UnprocessableError) == (status == 422)


@given(st.lists(st.integers(0, (1 << 32) - 1), min_size=1, max_size=6), st.integers(8, 30))
def test_cidrs_never_returns_overlaps(starts: list[int], length: int) -> None:
    values = [str(ipaddress.IPv4Network((s, length), strict=False)) for s in starts]
    try:
        parsed = validate.cidrs("cidrs", values)
    except InvalidInputError as error:
        assert error.field == "cidrs"
        return
    for i, one in enumerate(parsed):
        assert not any(one.overlaps(other) for other in parsed[i + 1 :])


def test_ipv4() -> None:
    assert validate.ipv4("ip", "10.0.0.1") == ipaddress.IPv4Address("10.0.0.1")
    for bad in ("10.0.0.256", "10.0.0", "::1", "", "010.0.0.1"):
        with pytest.raises(InvalidInputError) as caught:
            validate.ipv4("ip", bad)
        assert caught.value.field == "ip"


def test_ipv6() -> None:
    assert validate.ipv6("src", "fd00::1") == ipaddress.IPv6Address("fd00::1")
    for bad in ("10.0.0.1", "fd00::/64", "fd00:::1", ""):
        with pytest.raises(InvalidInputError) as caught:
            validate.ipv6("src", bad)
        assert caught.value.field == "src"


@pytest.mark.parametrize("value", ["eth0", "veth-a.1", "tap_0", "a" * 15, "A"])
def test_good_interfaces(value: str) -> None:
    assert validate.interface("interface", value) == value


@pytest.mark.parametrize("value", ["", "a" * 16, ".", "..", "a/b", "a b", "tap:0", "é"])
def test_bad_interfaces(value: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        validate.interface("interface", value)
    assert caught.value.field == "interface"


@pytest.mark.parametrize(
    "value", ["ten-0123456789ab", "net-0123456789ab", "hst-aaaaaaaaaaaa", "nod-000000000000"]
)
def test_names_shaped_like_ids_are_refused(value: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        validate.name("name", value)
    assert caught.value.field == "name"
    assert "id" in caught.value.reason


@pytest.mark.parametrize("value", ["net-0123456789a", "net-0123456789abc", "web-0123456789ab"])
def test_names_near_the_id_shape_are_fine(value: str) -> None:
    assert validate.name("name", value) == value


def test_new_ids_are_id_shaped() -> None:
    for kind in PREFIXES:
        with pytest.raises(InvalidInputError):
            validate.name("name", new_id(kind))
