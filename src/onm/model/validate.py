"""Checks on what users type: names, CIDRs, addresses, interface names.

Each check returns the parsed value or raises `InvalidInputError` naming the field, so every
invalid request gets a 400 that says which field is wrong and why; a value that parses but that
the rules refuse (a CIDR in a reserved block, `onm.model.cidr`) gets a 422 the same way.
"""

from __future__ import annotations

import ipaddress
import re

from onm.errors import InvalidInputError, UnprocessableError
from onm.model import cidr
from onm.model.ids import ID_HEX_DIGITS, PREFIXES

_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
# Objects are looked up by id or name in one query, so no name may look like an id.
_ID = re.compile(rf"({'|'.join(PREFIXES.values())})-[0-9a-f]{{{ID_HEX_DIGITS}}}")
_INTERFACE = re.compile(r"[A-Za-z0-9_.-]{1,15}")  # Linux IFNAMSIZ - 1, no '/' or spaces
MAX_CIDRS = 32


def name(field: str, value: str) -> str:
    if not _NAME.fullmatch(value):
        raise InvalidInputError(
            field,
            f"{value!r} is not a valid name: 1-63 lower-case letters, digits or '-', "
            "starting and ending with a letter or digit",
        )
    if _ID.fullmatch(value):
        raise InvalidInputError(field, f"{value!r} is shaped like an object id: choose another")
    return value


def cidrs(field: str, values: list[str]) -> tuple[ipaddress.IPv4Network, ...]:
    if not values:
        raise InvalidInputError(field, "at least one CIDR is required")
    if len(values) > MAX_CIDRS:
        raise InvalidInputError(field, f"at most {MAX_CIDRS} CIDRs, got {len(values)}")
    parsed: list[ipaddress.IPv4Network] = []
    for value in values:
        try:
            network = ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise InvalidInputError(field, f"{value!r} is not an IPv4 CIDR: {exc}") from None
        refused = cidr.refusal(network)
        if refused is not None:
            raise UnprocessableError(field, refused)
        for other in parsed:
            if network.overlaps(other):
                raise UnprocessableError(field, f"{value} overlaps {other}")
        parsed.append(network)
    return tuple(parsed)


def ipv4(field: str, value: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        raise InvalidInputError(field, f"{value!r} is not an IPv4 address") from None


def interface(field: str, value: str) -> str:
    if not _INTERFACE.fullmatch(value) or value in (".", ".."):
        raise InvalidInputError(
            field, f"{value!r} is not an interface name: 1-15 of letters, digits, '_', '.', '-'"
        )
    return value


def ipv6(field: str, value: str) -> ipaddress.IPv6Address:
    try:
        return ipaddress.IPv6Address(value)
    except ValueError:
        raise InvalidInputError(field, f"{value!r} is not an IPv6 address") from None
