"""Automatic detection of pools (seed 0: the manager "may automatically detect" that several
nodes share an address; DESIGN.md section 4).

- Agents report the addresses their nodes use that are not their own (the source of an IP
  packet, the sender of an ARP or gratuitous ARP): a *claim*. The agent still drops that
  traffic as spoofed; a claim is only a fact for the manager to weigh.
- A claim that can never be honoured is recorded with the reason and refused for good: an
  address outside the node's network, the network or broadcast address, a gateway, another
  node's own address. Its first sighting is an event, so an operator sees a node trying.
- When two or more nodes of one network hold live claims (refreshed within `CLAIM_TTL`) on one
  address no node and no pool has, the manager records a detected pool `detected-A-B-C-D` with
  the claimers as members and says so in a `pool.detected` event. The network's `auto_pools`
  decides what it is: `off` (nothing is detected), `propose` (the default: the pool waits,
  `proposed`, for `onm pool accept` or `onm pool reject`), `accept` (live at once).
- Until a pool is live it is in no snapshot, so its address stays spoofed on every agent. A
  later claimer of a proposed pool's address joins the proposal; a rejected pool keeps its
  address from being proposed again until it is deleted.
- Bounded: a node holds at most `MAX_CLAIMS_PER_NODE` claims; claims unseen for
  `FORGET_AFTER` are deleted (`expire`, run by the manager every second with health expiry).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update

from onm.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from onm.manager import access, hosts, networks, nodes, pools, tables
from onm.manager.store import Tx
from onm.model import Network, Node, validate
from onm.model.network import AutoPools
from onm.model.pool import PoolState
from onm.model.principal import MANAGER

CLAIM_TTL = dt.timedelta(seconds=60)
"""A claim counts toward detection while its agent saw it this recently (agents refresh a claim
in use every 10 s: onm.agent.claims)."""
FORGET_AFTER = dt.timedelta(minutes=10)
MAX_CLAIMS_PER_NODE = 16
PREFIX = "detected-"

_STATE_FOR: dict[AutoPools, PoolState | None] = {
    AutoPools.OFF: None,
    AutoPools.PROPOSE: PoolState.PROPOSED,
    AutoPools.ACCEPT: PoolState.LIVE,
}
"""What a pool detected in a network becomes, by the network's `auto_pools`."""


@dataclass(frozen=True, slots=True)
class ClaimReport:
    node: str
    """The node: its id (what agents send), or its name."""
    ip: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the manager made of one claim."""

    node: str
    ip: str
    verdict: str
    """`claimed`, `refused: WHY`, or `pool NAME (STATE)`."""


def pool_name(ip: ipaddress.IPv4Address) -> str:
    """The name a detected pool gets: `detected-10-0-0-50`."""
    return PREFIX + str(ip).replace(".", "-")


def refusal(network: Network, ip: ipaddress.IPv4Address, owner: str | None) -> str | None:
    """Why no node of `network` may ever claim `ip` (None: it may); `owner` is the node whose
    own address it is, if any."""
    try:
        nodes.check_ip(network, ip)
    except InvalidInputError as error:
        return error.reason
    if owner is not None:
        return f"{ip} is node {owner!r}'s own address"
    return None


def report(tx: Tx, host_ref: str, claims: Iterable[ClaimReport]) -> list[Outcome]:
    """Claims from the agent of `host_ref`, for nodes it runs; what became of each."""
    access.require_not_tenant(tx.actor, "report claims")
    host = hosts.get(tx, host_ref)
    if tx.actor.host_id is not None and tx.actor.host_id != host.id:
        raise ForbiddenError(f"a host reports for itself only, not for {host.name!r}")
    outcomes = []
    for claim in claims:
        ip = validate.ipv4("ip", claim.ip)
        try:
            node = nodes.get(tx, claim.node)
        except NotFoundError:
            node = None
        if node is None or node.host_id != host.id:
            raise NotFoundError(f"no node {claim.node!r} on host {host.name!r}")
        network = networks.get(tx, node.network_id)
        outcomes.append(Outcome(node.name, str(ip), _claim(tx, network, node, ip)))
    return outcomes


def _claim(tx: Tx, network: Network, node: Node, ip: ipaddress.IPv4Address) -> str:
    n = tables.nodes
    owner = tx.connection.execute(
        select(n.c.name).where(n.c.network_id == network.id, n.c.ip == str(ip))
    ).scalar_one_or_none()
    refused = refusal(network, ip, owner)
    _record(tx, network, node, ip, refused)
    if refused is not None:
        return f"refused: {refused}"
    p = tables.pools
    pool = tx.connection.execute(
        select(p.c.id, p.c.name, p.c.state).where(p.c.network_id == network.id, p.c.ip == str(ip))
    ).first()
    if pool is not None:
        if pool.state == PoolState.PROPOSED.value and not _is_member(tx, pool.id, node):
            with tx.acting_as(MANAGER):
                pools.add_member(tx, pool.id, node.id)
        return f"pool {pool.name} ({pool.state})"
    state = _STATE_FOR[network.auto_pools]
    claimers = _live_claimers(tx, network, ip)
    if state is None or len(claimers) < 2:
        return "claimed"
    name = pool_name(ip)
    with tx.acting_as(MANAGER):
        found = pools.create(tx, name, network.id, str(ip), {}, claimers, state=state)
        tx.record(
            "pool.detected",
            found.pool.id,
            network.tenant_id,
            {
                "pool": name,
                "network": network.name,
                "ip": str(ip),
                "members": sorted(d.node.name for d in found.members),
                "state": state.value,
            },
        )
    return f"pool {name} ({state.value})"


def _record(
    tx: Tx, network: Network, node: Node, ip: ipaddress.IPv4Address, refused: str | None
) -> None:
    c = tables.ip_claims
    key = (c.c.network_id == network.id) & (c.c.ip == str(ip)) & (c.c.node_id == node.id)
    seen = tx.connection.execute(update(c).where(key).values(last_seen=tx.now)).rowcount
    if seen:
        return
    held = tx.connection.execute(
        select(func.count()).where(c.c.node_id == node.id, c.c.last_seen >= tx.now - CLAIM_TTL)
    ).scalar_one()
    if held >= MAX_CLAIMS_PER_NODE:
        raise InvalidInputError(
            "ip", f"node {node.name!r} claims {MAX_CLAIMS_PER_NODE} addresses already"
        )
    tx.connection.execute(
        delete(c).where(c.c.node_id == node.id, c.c.last_seen < tx.now - CLAIM_TTL)
    )
    tx.connection.execute(
        insert(c).values(
            network_id=network.id,
            ip=str(ip),
            node_id=node.id,
            host_id=node.host_id,
            first_seen=tx.now,
            last_seen=tx.now,
            refused=refused,
        )
    )
    data = {"node": node.name, "network": network.name, "ip": str(ip)}
    tx.record("ip.claimed", node.id, network.tenant_id, data | {"refused": refused})


def _is_member(tx: Tx, pool_id: str, node: Node) -> bool:
    m = tables.pool_members
    row = tx.connection.execute(
        select(m.c.node_id).where(m.c.pool_id == pool_id, m.c.node_id == node.id)
    ).first()
    return row is not None


def _live_claimers(tx: Tx, network: Network, ip: ipaddress.IPv4Address) -> list[str]:
    c = tables.ip_claims
    rows = tx.connection.execute(
        select(c.c.node_id)
        .where(
            c.c.network_id == network.id,
            c.c.ip == str(ip),
            c.c.refused.is_(None),
            c.c.last_seen >= tx.now - CLAIM_TTL,
        )
        .order_by(c.c.first_seen, c.c.node_id)
    ).all()
    return [str(r.node_id) for r in rows]


def expire(tx: Tx) -> int:
    """Forget claims unseen for `FORGET_AFTER`; how many."""
    c = tables.ip_claims
    return int(
        tx.connection.execute(delete(c).where(c.c.last_seen < tx.now - FORGET_AFTER)).rowcount
    )


# --- an operator's decision ----------------------------------------------------------------


def accept(tx: Tx, ref: str) -> pools.PoolDetail:
    """A proposed (or rejected) pool goes live: its address resolves to its members."""
    access.require_not_host(tx.actor, "accept pools")
    pool = pools.get(tx, ref)
    if pool.state is PoolState.LIVE:
        raise ConflictError("pool", f"pool {pool.name!r} is live already")
    return _decide(tx, pool.id, PoolState.LIVE, "pool.accepted")


def reject(tx: Tx, ref: str) -> pools.PoolDetail:
    """A proposed pool is refused: its address stays spoofed and is not proposed again."""
    access.require_not_host(tx.actor, "reject pools")
    pool = pools.get(tx, ref)
    if pool.state is not PoolState.PROPOSED:
        raise ConflictError(
            "pool",
            f"pool {pool.name!r} is {pool.state.value}: only a proposed pool is rejected "
            "(delete a live one: onm pool delete)",
        )
    return _decide(tx, pool.id, PoolState.REJECTED, "pool.rejected")


def _decide(tx: Tx, pool_id: str, state: PoolState, kind: str) -> pools.PoolDetail:
    p = tables.pools
    tx.connection.execute(update(p).where(p.c.id == pool_id).values(state=state.value))
    pool = pools.get_by_id(tx, pool_id)
    network = networks.get(tx, pool.network_id)
    tx.record(
        kind,
        pool.id,
        network.tenant_id,
        {"pool": pool.name, "network": network.name, "ip": str(pool.ip)},
        networks.hosts_of(tx, network.id),
    )
    return pools.detail(tx, pool.id)
