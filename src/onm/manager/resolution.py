"""Address resolution with authorization (seed 0, FIG. 4) and the receiving side's check.

A node ARPs; its agent asks `resolve(network, requesting node, target IP)`. The answer is given
only when the requesting node exists, is in that network, and the caller is the host that runs it
(or an admin, for inspection). Answers are substrate addresses, which tenants never see
(docs/addressing.md): a tenant token may neither resolve nor verify. The manager remembers what
it told each host (a grant), so that it can tell that host again when the answer changes.

Each request looks up what the IP maps to (a typed `Target`), then answers or checks with pure
functions of that value; the lookup is the only part that knows how the database stores it.
An answer lives `ttl` (the manager's `--resolution-ttl`, `RESOLUTION_TTL` unless set): a grant
with more than half of that left is given again as it stands.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeAlias, assert_never

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from onm.addressing import HostPrefix
from onm.errors import NotFoundError
from onm.manager import access, hosts, networks, nodes, pools, tables
from onm.manager.compiler import pool_address, substrate_address
from onm.manager.store import Tx
from onm.model import Network, Node, NodeId, Resolution, validate
from onm.model.pool import Member, Policy, Pool, PoolState, Scope
from onm.model.resolution import RESOLUTION_TTL as RESOLUTION_TTL  # the default, here too
from onm.model.resolution import Alternative, Verdict
from onm.selection.policy import Candidate, Request
from onm.selection.policy import select as select_members


@dataclass(frozen=True, slots=True)
class NodeTarget:
    """The IP is one node's own address."""

    node: Node
    prefix: HostPrefix
    """The /64 of the host the node runs on."""


@dataclass(frozen=True, slots=True)
class Placed:
    """A pool member and the /64 of its host."""

    member: Member
    prefix: HostPrefix


@dataclass(frozen=True, slots=True)
class PoolTarget:
    """The IP is a live pool's: its members, and how many live grants each has first."""

    pool: Pool
    members: tuple[Placed, ...]
    selections: Mapping[NodeId, int]


Target: TypeAlias = NodeTarget | PoolTarget
"""What an IP of a network maps to; mypy's `assert_never` points at each place that must
handle a new case."""


def _target(tx: Tx, network: Network, ip: ipaddress.IPv4Address) -> Target | None:
    n, h = tables.nodes, tables.hosts
    row = tx.connection.execute(
        select(n, h.c.prefix.label("host_prefix"))
        .select_from(n.join(h, n.c.host_id == h.c.id))
        .where(n.c.network_id == network.id, n.c.ip == str(ip))
    ).first()
    if row is not None:
        return NodeTarget(nodes.from_row(row), HostPrefix.from_network(row.host_prefix))
    p = tables.pools
    pool_row = tx.connection.execute(
        select(p).where(
            p.c.network_id == network.id, p.c.ip == str(ip), p.c.state == PoolState.LIVE.value
        )
    ).first()
    if pool_row is None:
        return None
    pool = pools.from_row(pool_row)
    members = pools.members_of(tx, [pool.id])
    prefixes = {
        host.id: host.prefix for host in hosts.by_ids(tx, sorted({m.host_id for m in members}))
    }
    placed = tuple(Placed(m, prefixes[m.host_id]) for m in members)
    return PoolTarget(pool, placed, pools.selections(tx, pool.id))


def _nobody(network: Network, ip: ipaddress.IPv4Address) -> str:
    return f"no node or pool has {ip} in network {network.name!r}"


def candidates(target: PoolTarget) -> list[Candidate]:
    """The members as selection sees them; load counts the requesters already sent there."""
    return [
        Candidate(
            p.member.node_id,
            p.prefix,
            p.member.rank,
            p.member.load + target.selections.get(p.member.node_id, 0),
            p.member.health.allows_traffic,
        )
        for p in target.members
    ]


def pool_answer(
    network: Network,
    requester: Node,
    target: PoolTarget,
    ranking: Sequence[NodeId],
    expires_at: dt.datetime,
) -> Resolution:
    """What `requester` is told about a pool IP, given its ranking of the members."""
    placed = {p.member.node_id: p for p in target.members}
    alternatives = tuple(
        Alternative(
            node, pool_address(placed[node].prefix, network, target.pool, placed[node].member)
        )
        for node in ranking
        if node in placed
    )
    if not alternatives:
        raise NotFoundError(f"pool {target.pool.name!r} has no members")
    usable = (a for a in alternatives if placed[a.node_id].member.health.allows_traffic)
    first = next(usable, alternatives[0])  # selected: the first in the ranking taking traffic
    return Resolution(
        network.id,
        requester.id,
        target.pool.ip,
        first.node_id,
        first.substrate_address,
        target.pool.mac,
        expires_at,
        target.pool.id,
        alternatives,
    )


def answer_for(
    network: Network,
    requester: Node,
    ip: ipaddress.IPv4Address,
    target: Target,
    now: dt.datetime,
    request: Request | None = None,
    ttl: dt.timedelta = RESOLUTION_TTL,
) -> Resolution:
    """What `requester` is told about `ip` at `now`, valid for `ttl` (pure: the lookup
    happened before). A pool's answer selects by `request` (the requester's key and host, its
    previous member, the pool's turn and a random draw)."""
    match target:
        case NodeTarget(node, prefix):
            return Resolution(
                network.id,
                requester.id,
                ip,
                node.id,
                substrate_address(prefix, network, node),
                node.mac,
                now + ttl,
            )
        case PoolTarget(pool):
            if request is None:
                raise ValueError("a pool's answer needs the selection request")
            ranking = select_members(pool.policy, candidates(target), request)
            return pool_answer(network, requester, target, ranking, now + ttl)
        case _:
            assert_never(target)


def resolve(
    tx: Tx,
    network_ref: str,
    requester_ref: str,
    target_ip: str,
    ttl: dt.timedelta = RESOLUTION_TTL,
) -> Resolution:
    """Answer a resolution (valid for `ttl`) and, when an agent asked, remember that its host
    was told."""
    answer, requester, standing = _answer(tx, network_ref, requester_ref, target_ip, ttl)
    if tx.actor.host_id is not None and standing is None:
        _remember(tx, requester, answer)
    return standing or answer


def resolve_from_grant(
    tx: Tx,
    network_ref: str,
    requester_ref: str,
    target_ip: str,
    ttl: dt.timedelta = RESOLUTION_TTL,
) -> Resolution | None:
    """The answer when the host already holds a grant for it that is not half-expired.

    Read-only: agents re-asking within their grant's lifetime are served without a write
    transaction. None means `resolve` must run (and write) instead.
    """
    answer, _requester, standing = _answer(tx, network_ref, requester_ref, target_ip, ttl)
    if tx.actor.host_id is None:
        return answer
    return standing


def _answer(
    tx: Tx, network_ref: str, requester_ref: str, target_ip: str, ttl: dt.timedelta
) -> tuple[Resolution, Node, Resolution | None]:
    """The fresh answer, the requester, and the standing grant's answer if still good to reuse."""
    access.require_not_tenant(tx.actor, "resolve addresses (the answers are substrate addresses)")
    ip = validate.ipv4("ip", target_ip)
    network = networks.get(tx, network_ref)
    requester = nodes.get(tx, requester_ref, network.id)
    target = _target(tx, network, ip)
    if target is None:
        raise NotFoundError(_nobody(network, ip))
    g = tables.grants
    grant = tx.connection.execute(
        select(g.c.target_id, g.c.expires_at, g.c.pool_id, g.c.ranking).where(
            g.c.requester_id == requester.id, g.c.target_ip == str(ip)
        )
    ).first()
    fresh_enough = grant is not None and grant.expires_at > tx.now + ttl / 2
    if isinstance(target, PoolTarget):
        if grant is not None and fresh_enough and grant.pool_id == target.pool.id:
            ranking = [NodeId(n) for n in grant.ranking or ()]
            kept = pool_answer(network, requester, target, ranking, grant.expires_at)
            return kept, requester, kept
        shared = _host_ranking(tx, target, requester.host_id, ttl)
        if shared:  # scope host: the host's choice stands for its other requesters too
            answer = pool_answer(network, requester, target, shared, tx.now + ttl)
            return answer, requester, None
        request = _selection_request(tx, target, requester, grant)
        return answer_for(network, requester, ip, target, tx.now, request, ttl), requester, None
    fresh = answer_for(network, requester, ip, target, tx.now, ttl=ttl)
    standing = None
    if grant is not None and fresh_enough and grant.target_id == fresh.target_id:
        standing = replace(fresh, expires_at=grant.expires_at)
    return fresh, requester, standing


def _selection_request(tx: Tx, target: PoolTarget, requester: Node, grant: Any) -> Request:
    """The inputs a pool's choice for `requester` depends on besides the members."""
    pool = target.pool
    host = hosts.get(tx, requester.host_id)
    key = requester.id if pool.scope is Scope.REQUESTER else requester.host_id
    previous = None
    if grant is not None and grant.pool_id == pool.id:
        previous = NodeId(grant.target_id)
    if pool.scope is Scope.HOST:
        previous = _host_choice(tx, pool, requester.host_id) or previous
    turn = pools.advance_turn(tx, pool.id) if pool.policy is Policy.ROUND_ROBIN else 0
    draw = secrets.randbits(64) if pool.policy is Policy.RANDOM else 0
    return Request(key, host.prefix, previous, turn, draw)


def _host_ranking(tx: Tx, target: PoolTarget, host_id: str, ttl: dt.timedelta) -> list[NodeId]:
    """Scope `host`: the ranking another requester of the host was given, while that grant has
    more than half its life left (as a requester's own is kept); empty when there is none, or
    none of its members is left."""
    if target.pool.scope is not Scope.HOST:
        return []
    g = tables.grants
    row = tx.connection.execute(
        select(g.c.ranking)
        .where(
            g.c.pool_id == target.pool.id,
            g.c.host_id == host_id,
            g.c.expires_at > tx.now + ttl / 2,
        )
        .order_by(g.c.expires_at.desc())
        .limit(1)
    ).first()
    members = {p.member.node_id for p in target.members}
    ranking = [NodeId(n) for n in (row.ranking or ()) if n in members] if row else []
    return ranking


def _host_choice(tx: Tx, pool: Pool, host_id: str) -> NodeId | None:
    """Scope `host`: the member another requester of the host was given (one choice for all)."""
    g = tables.grants
    row = tx.connection.execute(
        select(g.c.target_id)
        .where(g.c.pool_id == pool.id, g.c.host_id == host_id, g.c.expires_at > tx.now)
        .order_by(g.c.expires_at.desc())
        .limit(1)
    ).first()
    return None if row is None else NodeId(row.target_id)


def _remember(tx: Tx, requester: Node, answer: Resolution) -> None:
    g = tables.grants
    values = {
        "network_id": answer.network_id,
        "host_id": requester.host_id,
        "target_id": answer.target_id,
        "expires_at": answer.expires_at,
        "pool_id": answer.pool_id,
        "ranking": [a.node_id for a in answer.alternatives] if answer.pool_id else None,
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
        case PoolTarget(pool, members):
            allowed = [pool_address(p.prefix, network, pool, p.member) for p in members]
            if claimed not in allowed:
                return Verdict(False, f"{claimed} is no member of pool {pool.name!r}", None)
            return Verdict(True, "ok", claimed)
        case _:
            assert_never(target)
