"""A flow as edge-pool selection sees it, and its hash over the fields a pool chooses (seed 1:
"a hash of the source and destination"; DESIGN.md section 5).

The fields are the IPv4 source and destination (the default), the protocol, and the two ports.
A field the pool does not hash on counts as zero, so `src,dst` keeps every flow between two
addresses on one gateway and `src,dst,proto,sport,dport` spreads one pair's connections. The
words go to `hashing.jhash_words` in a fixed order, the layout the eBPF datapath uses too.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Final

from onm.addressing import STEERING_SLOTS
from onm.errors import InvalidInputError
from onm.model.edge_pool import HashField
from onm.selection.hashing import jhash_words

__all__ = [
    "DEFAULT_FIELDS",
    "STEERING_SHIFT",
    "Flow",
    "HashField",
    "flow_hash",
    "parse_fields",
    "steering_slot",
]


DEFAULT_FIELDS: Final = frozenset({HashField.SRC, HashField.DST})


@dataclass(frozen=True, slots=True)
class Flow:
    """One direction of a conversation: IPv4 addresses as 4 octets, ports 0 when the protocol
    has none."""

    src: bytes
    dst: bytes
    proto: int
    sport: int = 0
    dport: int = 0


def parse_fields(text: str | Iterable[str]) -> frozenset[HashField]:
    """`src,dst` (or a list of names) as fields; an unknown or repeated name is refused."""
    names = (
        [n.strip() for n in text.split(",") if n.strip()] if isinstance(text, str) else list(text)
    )
    found: set[HashField] = set()
    for name in names:
        try:
            field = HashField(name)
        except ValueError:
            choices = ", ".join(f.value for f in HashField)
            raise InvalidInputError("hash", f"{name!r} is not a field ({choices})") from None
        if field in found:
            raise InvalidInputError("hash", f"{name!r} is given twice")
        found.add(field)
    if not found:
        raise InvalidInputError("hash", "give at least one field (e.g. src,dst)")
    return frozenset(found)


def flow_hash(flow: Flow, fields: Collection[HashField] = DEFAULT_FIELDS) -> int:
    """The 32-bit hash of `flow` over `fields`: jhash2 of (src, dst, proto, sport << 16 | dport)
    with the unchosen fields zero."""
    src = int.from_bytes(flow.src, "big") if HashField.SRC in fields else 0
    dst = int.from_bytes(flow.dst, "big") if HashField.DST in fields else 0
    proto = flow.proto if HashField.PROTO in fields else 0
    sport = flow.sport if HashField.SPORT in fields else 0
    dport = flow.dport if HashField.DPORT in fields else 0
    return jhash_words((src, dst, proto, (sport << 16) | dport))


_TRANSPORT_WITH_PORTS: Final = frozenset({6, 17})
"""TCP and UDP (IANA protocol numbers): their first four octets are the two ports."""


def flow_of(packet: bytes | memoryview) -> Flow:
    """The flow of an IPv4 datagram already checked well-formed (`admission.check_ipv4`). A
    fragment carries no ports it could be hashed on the same as its first piece, so every
    fragment counts its ports as zero (RFC 791: MF, or a non-zero offset)."""
    header_length = (packet[0] & 0x0F) * 4
    proto = packet[9]
    fragment = ((packet[6] & 0x3F) << 8) | packet[7]
    sport = dport = 0
    if proto in _TRANSPORT_WITH_PORTS and fragment == 0 and len(packet) >= header_length + 4:
        sport = (packet[header_length] << 8) | packet[header_length + 1]
        dport = (packet[header_length + 2] << 8) | packet[header_length + 3]
    return Flow(bytes(packet[12:16]), bytes(packet[16:20]), proto, sport, dport)


STEERING_SHIFT: Final = 32 - (STEERING_SLOTS.bit_length() - 1)
"""A slot is the hash's top 6 bits (STEERING_SLOTS is a power of two): shifted down by this."""


def steering_slot(flow: Flow, fields: Collection[HashField] = DEFAULT_FIELDS) -> int:
    """The slot (0..63) a flow's substrate source carries in anycast mode (`onm.addressing.
    steer`): the top 6 bits of `flow_hash`, so the flows a pool keeps together (its hash
    fields) share one source, and the bits differ from those a Maglev lookup takes (the low
    ones, modulo a prime table size)."""
    return flow_hash(flow, fields) >> STEERING_SHIFT
