"""Firewall rules and public IPs of an edge pool (seed 1: the edge device's firewall and NAT;
DESIGN.md section 5; issue #10).

- A *rule* of an edge pool matches connections by direction (who opened them), protocol,
  destination port range (TCP and UDP only) and the external side's CIDR, and allows or denies
  them. A pool's rules are evaluated in `position` order, the first match wins; no match: a new
  egress connection is allowed, an unsolicited ingress one dropped (unless it is to a public
  IP, which is allowed). Each rule counts what it matched, on every gateway of the pool
  (`onm.netlink.gateway_plan`).
- A *public IP* gives one node of the pool's network an address of the external network (1:1
  NAT): inbound connections to it reach the node, and the node's outbound traffic leaves from
  it. One gateway of the pool holds it (`onm.selection.public_ip.owner`).

`parse_rule` reads a rule as a user types it, pure: every refusal names its field.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
from dataclasses import dataclass
from typing import Final, TypeVar

from onm.errors import InvalidInputError
from onm.model.ids import EdgePoolId, ExternalId, NodeId, PublicIpId, RuleId


class Direction(enum.StrEnum):
    """Which way the connection a rule matches was opened."""

    EGRESS = "egress"
    """Tenant -> external network."""
    INGRESS = "ingress"
    """External network -> tenant."""


class Action(enum.StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class Proto(enum.StrEnum):
    ANY = "any"
    TCP = "tcp"
    UDP = "udp"
    ICMP = "icmp"


PORTED: Final = frozenset({Proto.TCP, Proto.UDP})
"""The protocols a rule may name ports of."""
PORTS: Final = (1, 65535)
"""Destination ports a rule may name (port 0 is reserved: RFC 6335 section 6)."""


@dataclass(frozen=True, slots=True)
class EdgeRule:
    id: RuleId
    pool_id: EdgePoolId
    position: int
    """1 is evaluated first; a pool's positions are 1..N without gaps."""
    direction: Direction
    proto: Proto
    ports: tuple[int, int] | None
    """Inclusive range of destination ports (the node's port for ingress); None: any."""
    remote: ipaddress.IPv4Network | None
    """The external side's CIDR (destination for egress, source for ingress); None: any."""
    action: Action
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class CountedRule(EdgeRule):
    """A rule with what it matched: packets of new connections, summed over the pool's
    gateways (`onm.manager.rule_counts`)."""

    packets: int = 0


@dataclass(frozen=True, slots=True)
class DefaultCount:
    """Packets no rule of a pool matched, by the default verdict (or drop) that took them
    (`onm.netlink.gateway_plan.Builtin`), summed over the pool's gateways."""

    verdict: str
    packets: int


@dataclass(frozen=True, slots=True)
class NodePublicIp:
    """A node's address on the external network of its edge pool's gateways."""

    id: PublicIpId
    pool_id: EdgePoolId
    node_id: NodeId
    external_id: ExternalId
    """The external network `ip` is on (one of the pool's gateways' hosts is on it)."""
    ip: ipaddress.IPv4Address
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A rule as parsed from a request, before it has an id and a position."""

    direction: Direction
    proto: Proto
    ports: tuple[int, int] | None
    remote: ipaddress.IPv4Network | None
    action: Action


E = TypeVar("E", Direction, Action, Proto)


def _one_of(field: str, kind: type[E], value: str) -> E:
    try:
        return kind(value.strip().lower())
    except ValueError:
        choices = ", ".join(k.value for k in kind)
        raise InvalidInputError(field, f"{value!r} is not one of {choices}") from None


def _port(text: str, whole: str) -> int:
    if not text.strip().isdigit():
        raise InvalidInputError("ports", f"{whole!r} is not a port or a range LOW-HIGH")
    return int(text)


def parse_ports(text: str, proto: Proto) -> tuple[int, int]:
    """`25` or `1000-2000`, inside 1..65535, not reversed, for TCP or UDP only."""
    if proto not in PORTED:
        raise InvalidInputError("ports", f"ports need proto tcp or udp, not {proto.value}")
    low_text, dash, high_text = text.partition("-")
    low = _port(low_text, text)
    high = _port(high_text, text) if dash else low
    if not PORTS[0] <= low <= PORTS[1] or not PORTS[0] <= high <= PORTS[1]:
        raise InvalidInputError("ports", f"{text!r} is outside {PORTS[0]}-{PORTS[1]}")
    if low > high:
        raise InvalidInputError("ports", f"{text!r} is reversed (low port first)")
    return low, high


def parse_remote(text: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(text.strip(), strict=True)
    except ValueError as error:
        raise InvalidInputError("remote", f"{text!r} is not an IPv4 CIDR: {error}") from None


def parse_rule(
    direction: str,
    action: str,
    proto: str = "any",
    ports: str | None = None,
    remote: str | None = None,
) -> RuleSpec:
    """A rule from its text fields (see the module's rules); InvalidInputError names the field."""
    kind = _one_of("proto", Proto, proto)
    return RuleSpec(
        _one_of("direction", Direction, direction),
        kind,
        None if ports is None else parse_ports(ports, kind),
        None if remote is None else parse_remote(remote),
        _one_of("action", Action, action),
    )


def ports_text(ports: tuple[int, int] | None) -> str:
    """How a rule's ports are shown: `25`, `1000-2000`, or `any`."""
    if ports is None:
        return "any"
    low, high = ports
    return str(low) if low == high else f"{low}-{high}"
