"""Address resolution with authorization (seed 0, FIG. 4) and the receiving side's check.

A node ARPs; its agent asks `resolve(network, requesting node, target IP)`. The answer is given
only when the requesting node exists, is in that network, and the caller is the host that runs it
(or an admin, for inspection). Answers are substrate addresses, which tenants never see
(docs/addressing.md): a tenant token may neither resolve nor verify. The manager remembers what
it told each host (a grant), so that it can tell that host again when the answer changes.

Each request looks up what the IP maps to (a typed `Target`), then answers or checks with pure
functions of that value; the lookup is the only part that knows how the database stores it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, replace
from typing import TypeAlias, assert_never

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from onm.addressing import HostPrefix
from onm.errors import NotFoundError
from onm.manager import access, networks, nodes, tables
from onm.manager.compiler import substrate_address
from onm.manager.store import Tx
from onm.model import Network, Node, Resolution, validate
from onm.model.resolution import Verdict

RESOLUTION_TTL = dt.timedelta(seconds=300)


@dataclass(frozen=True, slots=True)
class NodeTarget:
    """The IP is one node's own address."""

    node: Node
    prefix: HostPrefix
    """The /64 of the host the node runs on."""


Target: TypeAlias = NodeTarget
"""What an IP of a network maps to. Pools (issue #9) join this union with their own case in
`answer_for` and `check`; mypy's `assert_never` points at each place that must handle it."""


def _target(tx: Tx, network: Network, ip: ipaddress.IPv4Address) -> Target | None:
    n, h = tables.nodes, tables.hosts
    row = tx.connection.execute(
        select(n, h.c.prefix.label("host_prefix"))
        .select_from(n.join(h, n.c.host_id == h.c.id))
        .where(n.c.network_id == network.id, n.c.ip == str(ip))
    ).first()
    if row is None:
        return None
    return NodeTarget(nodes.from_row(row), HostPrefix.from_network(row.host_prefix))


def _nobody(network: Network, ip: ipaddress.IPv4Address) -> str:
    return f"no node has {ip} in network {network.name!r}"


def answer_for(
    network: Network, requester: Node, ip: ipaddress.IPv4Address, target: Target, now: dt.datetime
) -> Resolution:
    """What `requester` is told about `ip` at `now` (pure: the lookup happened before)."""
    match target:
        case NodeTarget(node, prefix):
            return Resolution(
                network.id,
                requester.id,
                ip,
                node.id,
                substrate_address(prefix, network, node),
                node.mac,
                now + RESOLUTION_TTL,
            )
        case _:
            assert_never(target)


def resolve(tx: Tx, network_ref: str, requester_ref: str, target_ip: str) -> Resolution:
    """Answer a resolution and, when an agent asked, remember that its host was told."""
    answer, requester, standing = _answer(tx, network_ref, requester_ref, target_ip)
    if tx.actor.host_id is not None and standing is None:
        _remember(tx, requester, answer)
    return standing or answer


def resolve_from_grant(
    tx: Tx, network_ref: str, requester_ref: str, target_ip: str
) -> Resolution | None:
    """The answer when the host already holds a grant for it that is not half-expired.

    Read-only: agents re-asking within their grant's lifetime are served without a write
    transaction. None means `resolve` must run (and write) instead.
    """
    answer, _requester, standing = _answer(tx, network_ref, requester_ref, target_ip)
    if tx.actor.host_id is None:
        return answer
    return standing


def _answer(
    tx: Tx, network_ref: str, requester_ref: str, target_ip: str
) -> tuple[Resolution, Node, Resolution | None]:
    """The fresh answer, the requester, and the standing grant's answer if still good to reuse."""
    access.require_not_tenant(tx.actor, "resolve addresses (the answers are substrate addresses)")
    ip = validate.ipv4("ip", target_ip)
    network = networks.get(tx, network_ref)
    requester = nodes.get(tx, requester_ref, network.id)
    target = _target(tx, network, ip)
    if target is None:
        raise NotFoundError(_nobody(network, ip))
    fresh = answer_for(network, requester, ip, target, tx.now)
    g = tables.grants
    grant = tx.connection.execute(
        select(g.c.target_id, g.c.expires_at).where(
            g.c.requester_id == requester.id, g.c.target_ip == str(ip)
        )
    ).first()
    standing = None
    if (
        grant is not None
        and grant.target_id == fresh.target_id
        and grant.expires_at > tx.now + RESOLUTION_TTL / 2
    ):
        standing = replace(fresh, expires_at=grant.expires_at)
    return fresh, requester, standing


def _remember(tx: Tx, requester: Node, answer: Resolution) -> None:
    g = tables.grants
    values = {
        "network_id": answer.network_id,
        "host_id": requester.host_id,
        "target_id": answer.target_id,
        "expires_at": answer.expires_at,
    }
    key = (g.c.requester_id == requester.id) & (g.c.target_ip == str(answer.target_ip))
    if tx.connection.execute(update(g).where(key).values(**values)).rowcount:
        return
    try:
        with tx.connection.begin_nested():
            tx.connection.execute(
                insert(g).values(
                    requester_id=requester.id, target_ip=str(answer.target_ip), **values
                )
            )
    except IntegrityError:  # another manager replica inserted it first: ours is as good
        tx.connection.execute(update(g).where(key).values(**values))


def verify(tx: Tx, network_ref: str, source_ip: str, substrate_source: str) -> Verdict:
    """Is `substrate_source` really where (network, source IP) lives? (receiving agents' check)"""
    access.require_not_tenant(tx.actor, "verify substrate sources")
    ip = validate.ipv4("ip", source_ip)
    claimed = validate.ipv6("substrate_source", substrate_source)
    network = networks.get(tx, network_ref)
    return check(network, ip, _target(tx, network, ip), claimed)


def check(
    network: Network,
    ip: ipaddress.IPv4Address,
    target: Target | None,
    claimed: ipaddress.IPv6Address,
) -> Verdict:
    """Whether a packet from `ip` may come from `claimed` (pure: the lookup happened before)."""
    match target:
        case None:
            return Verdict(False, _nobody(network, ip), None)
        case NodeTarget(node, prefix):
            expected = substrate_address(prefix, network, node)
            if expected != claimed:
                return Verdict(False, f"{ip} lives at {expected}, not {claimed}", expected)
            return Verdict(True, "ok", expected)
        case _:
            assert_never(target)
