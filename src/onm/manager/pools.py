"""Pools (seed 0): a network's nodes sharing one virtual IP as alternative destinations.

The pool IP is nobody's own: not a node's, not a gateway, inside one of the network's CIDRs.
Members are nodes of the pool's network; each keeps its own IP and gets a pool address on its
host (slot 1..63 with U/L set, DESIGN.md section 2), where its agent delivers pool traffic.
A member starts `initial` and takes no traffic until its host's agent reports a passing check.

Every change is one transaction: a bad value anywhere refuses the whole request, nothing is
half-written. The hosts with nodes in the pool's network get the change in their snapshots.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update

from onm.errors import ConflictError, InvalidInputError, NotFoundError
from onm.manager import access, actions, networks, nodes, tables
from onm.manager.store import Tx
from onm.model import Network, Node, NodeId, validate
from onm.model.ids import HostId, NetworkId, PoolId, new_id
from onm.model.pool import (
    ActionKind,
    AllDown,
    CheckKind,
    Health,
    HealthCheck,
    Member,
    Policy,
    Pool,
    PoolAction,
    PoolState,
    Rotation,
    Scope,
)
from onm.model.pool_settings import DEFAULT_CHECK, parse_criterion, settle

MAX_SLOT = 63
"""The 6-bit slot field: at most this many members of one pool on one host."""


@dataclass(frozen=True, slots=True)
class MemberDetail:
    member: Member
    node: Node
    selections: int


@dataclass(frozen=True, slots=True)
class PoolDetail:
    pool: Pool
    network: Network
    members: tuple[MemberDetail, ...]


# --- rows --------------------------------------------------------------------------------------


def from_row(row: tables.Row) -> Pool:
    return Pool(
        PoolId(row.id),
        NetworkId(row.network_id),
        row.name,
        ipaddress.IPv4Address(row.ip),
        row.mac,
        Policy(row.policy),
        Scope(row.scope),
        AllDown(row.all_down),
        HealthCheck(
            CheckKind(row.check_kind),
            row.check_port,
            row.check_path,
            row.check_interval,
            row.check_timeout,
            row.check_rise,
            row.check_fall,
        ),
        Rotation(row.rotate_packets, row.rotate_seconds),
        PoolState(row.state),
        row.created_at,
        tuple(
            PoolAction(
                parse_criterion("actions", a["on"]), ActionKind(a["kind"]), a["target"], a["secret"]
            )
            for a in row.actions or ()
        ),
    )


def _columns(pool: Pool) -> dict[str, object]:
    c = pool.check
    return {
        "policy": pool.policy.value,
        "scope": pool.scope.value,
        "all_down": pool.all_down.value,
        "check_kind": c.kind.value,
        "check_port": c.port,
        "check_path": c.path,
        "check_interval": c.interval,
        "check_timeout": c.timeout,
        "check_rise": c.rise,
        "check_fall": c.fall,
        "rotate_packets": pool.rotation.packets,
        "rotate_seconds": pool.rotation.seconds,
        "state": pool.state.value,
        "actions": [
            {"on": str(a.on), "kind": a.kind.value, "target": a.target, "secret": a.secret}
            for a in pool.actions
        ],
    }


def member_from_row(row: tables.Row) -> Member:
    return Member(
        PoolId(row.pool_id),
        NodeId(row.node_id),
        HostId(row.host_id),
        row.rank,
        Health(row.health),
        row.since,
        row.reported_at,
        row.load,
        row.slot,
    )


def _check_ip(network: Network, ip: ipaddress.IPv4Address) -> None:
    try:
        nodes.check_ip(network, ip)
    except InvalidInputError as error:
        raise InvalidInputError("ip", error.message) from None


# --- use cases ---------------------------------------------------------------------------------


def create(
    tx: Tx,
    name: str,
    network_ref: str,
    ip: str,
    settings: Mapping[str, object],
    members: list[str] | None = None,
    state: PoolState = PoolState.LIVE,
) -> PoolDetail:
    """A new pool (and its first members) on an IP no node of the network owns."""
    access.require_not_host(tx.actor, "create pools")
    validate.name("name", name)
    address = validate.ipv4("ip", ip)
    network = networks.get(tx, network_ref)
    _check_ip(network, address)
    owner = tx.connection.execute(
        select(tables.nodes.c.name).where(
            tables.nodes.c.network_id == network.id, tables.nodes.c.ip == str(address)
        )
    ).first()
    if owner is not None:
        raise ConflictError("ip", f"{address} is node {owner.name!r}'s own address")
    p = tables.pools
    clash = tx.connection.execute(
        select(p.c.name, p.c.ip).where(
            p.c.network_id == network.id, (p.c.name == name) | (p.c.ip == str(address))
        )
    ).first()
    if clash is not None:
        if clash.name == name:
            raise ConflictError("name", f"network {network.name!r} has a pool named {name!r}")
        raise ConflictError("ip", f"{address} is pool {clash.name!r}'s address")
    base = Pool(
        PoolId(new_id("pool")),
        network.id,
        name,
        address,
        nodes.allocate_mac(tx),
        Policy.NEAREST,
        Scope.REQUESTER,
        AllDown.FAIL_CLOSED,
        DEFAULT_CHECK,
        Rotation(),
        state,
        tx.now,
    )
    pool = settle(base, given=settings)
    tx.connection.execute(
        insert(p).values(
            id=pool.id,
            network_id=network.id,
            name=name,
            ip=str(address),
            mac=pool.mac,
            turn=0,
            created_at=tx.now,
            **_columns(pool),
        )
    )
    tx.record(
        "pool.created",
        pool.id,
        network.tenant_id,
        {"name": name, "network": network.name, "ip": str(address), "state": state.value},
        networks.hosts_of(tx, network.id),
    )
    for ref in members or []:
        _add_member(tx, pool, network, ref, None)
    return detail(tx, pool.id)


def get(tx: Tx, ref: str, network_ref: str | None = None) -> Pool:
    """A pool by id, or by name within `network_ref` (or unambiguous among visible pools)."""
    p, net = tables.pools, tables.networks
    query = select(p).select_from(p.join(net, p.c.network_id == net.c.id))
    if "/" in ref and network_ref is None:
        network_ref, _, ref = ref.rpartition("/")
    if network_ref is not None:
        network_id = networks.get(tx, network_ref).id
        query = query.where(p.c.network_id == network_id)
    query = query.where((p.c.id == ref) | (p.c.name == ref))
    scope = access.tenant_scope(tx.actor)
    if scope is not None:
        query = query.where(net.c.tenant_id == scope)
    if tx.actor.host_id is not None:
        query = query.where(p.c.network_id.in_(networks.networks_of_host(tx, tx.actor.host_id)))
    rows = tx.connection.execute(query).all()
    if not rows:
        raise NotFoundError(f"no pool {ref!r}")
    if len(rows) > 1:
        raise InvalidInputError(
            "pool", f"{ref!r} names pools of several networks: give the network"
        )
    return from_row(rows[0])


def get_by_id(tx: Tx, pool_id: str) -> Pool:
    """A pool by id (no access check: callers have one)."""
    row = tx.connection.execute(select(tables.pools).where(tables.pools.c.id == pool_id)).first()
    if row is None:
        raise NotFoundError(f"no pool {pool_id!r}")
    return from_row(row)


def list_all(tx: Tx, network_ref: str | None = None) -> list[PoolDetail]:
    p, net = tables.pools, tables.networks
    query = select(p.c.id).select_from(p.join(net, p.c.network_id == net.c.id))
    if network_ref is not None:
        query = query.where(p.c.network_id == networks.get(tx, network_ref).id)
    scope = access.tenant_scope(tx.actor)
    if scope is not None:
        query = query.where(net.c.tenant_id == scope)
    if tx.actor.host_id is not None:
        query = query.where(p.c.network_id.in_(networks.networks_of_host(tx, tx.actor.host_id)))
    ids = [i for (i,) in tx.connection.execute(query.order_by(p.c.name, p.c.id))]
    return [detail(tx, i) for i in ids]


def members_of(tx: Tx, pool_ids: list[str]) -> list[Member]:
    m = tables.pool_members
    query = select(m).where(m.c.pool_id.in_(sorted(pool_ids))).order_by(m.c.rank, m.c.node_id)
    return [member_from_row(row) for row in tx.connection.execute(query)]


def detail(tx: Tx, ref: str, network_ref: str | None = None) -> PoolDetail:
    pool = get(tx, ref, network_ref)
    network = networks.get(tx, pool.network_id)
    members = members_of(tx, [pool.id])
    counts = selections(tx, pool.id)
    by_id = {n.id: n for n in nodes.by_ids(tx, [m.node_id for m in members])}
    return PoolDetail(
        pool,
        network,
        tuple(MemberDetail(m, by_id[m.node_id], counts.get(m.node_id, 0)) for m in members),
    )


def update_pool(tx: Tx, ref: str, settings: Mapping[str, object]) -> PoolDetail:
    access.require_not_host(tx.actor, "change pools")
    pool = get(tx, ref)
    changed = settle(pool, settings)
    if changed != pool:
        p = tables.pools
        tx.connection.execute(update(p).where(p.c.id == pool.id).values(**_columns(changed)))
        network = networks.get(tx, pool.network_id)
        tx.record(
            "pool.updated",
            pool.id,
            network.tenant_id,
            {"name": pool.name, "changes": _changes(pool, changed)},
            networks.hosts_of(tx, network.id),
        )
    return detail(tx, pool.id)


def _changes(before: Pool, after: Pool) -> dict[str, object]:
    old, new = _columns(before), _columns(after)
    return {k: new[k] for k in new if new[k] != old[k]}


def delete_pool(tx: Tx, ref: str) -> Pool:
    access.require_not_host(tx.actor, "delete pools")
    pool = get(tx, ref)
    network = networks.get(tx, pool.network_id)
    g, d = tables.grants, tables.pool_deliveries
    holders = _holders(tx, pool.id)
    tx.connection.execute(delete(g).where(g.c.pool_id == pool.id))
    tx.connection.execute(delete(d).where(d.c.pool_id == pool.id, d.c.state == "pending"))
    tx.connection.execute(
        delete(tables.pool_members).where(tables.pool_members.c.pool_id == pool.id)
    )
    tx.connection.execute(delete(tables.pools).where(tables.pools.c.id == pool.id))
    tx.record(
        "pool.deleted",
        pool.id,
        network.tenant_id,
        {"name": pool.name, "network": network.name, "ip": str(pool.ip)},
        networks.hosts_of(tx, network.id) | holders,
    )
    return pool


def add_member(tx: Tx, pool_ref: str, node_ref: str, rank: int | None = None) -> PoolDetail:
    access.require_not_host(tx.actor, "change pools")
    pool = get(tx, pool_ref)
    network = networks.get(tx, pool.network_id)
    before = actions.healthy_count(tx, pool.id)
    _add_member(tx, pool, network, node_ref, rank)
    actions.changed(tx, pool, before)
    return detail(tx, pool.id)


def _add_member(tx: Tx, pool: Pool, network: Network, node_ref: str, rank: int | None) -> None:
    try:
        node = nodes.get(tx, node_ref, network.id)
    except NotFoundError:
        raise InvalidInputError(
            "node", f"no node {node_ref!r} in network {network.name!r} (a member must be one)"
        ) from None
    m = tables.pool_members
    rows = tx.connection.execute(
        select(m.c.node_id, m.c.host_id, m.c.slot, m.c.rank).where(m.c.pool_id == pool.id)
    ).all()
    if any(r.node_id == node.id for r in rows):
        raise ConflictError("node", f"{node.name!r} is already a member of pool {pool.name!r}")
    taken = {r.slot for r in rows if r.host_id == node.host_id}
    slot = next((s for s in range(1, MAX_SLOT + 1) if s not in taken), None)
    if slot is None:
        raise ConflictError(
            "node", f"pool {pool.name!r} has {MAX_SLOT} members on that host already"
        )
    if rank is not None and not 0 <= rank <= 1_000_000:
        raise InvalidInputError("rank", f"{rank} is outside 0..1000000")
    chosen = rank if rank is not None else max((r.rank for r in rows), default=-1) + 1
    health = Health.UP if pool.check.kind is CheckKind.NONE else Health.INITIAL
    tx.connection.execute(
        insert(m).values(
            pool_id=pool.id,
            node_id=node.id,
            host_id=node.host_id,
            rank=chosen,
            slot=slot,
            health=health.value,
            since=tx.now,
            reported_at=None,
            load=0.0,
        )
    )
    tx.record(
        "pool.member_added",
        pool.id,
        network.tenant_id,
        {"pool": pool.name, "node": node.name, "rank": chosen, "health": health.value},
        networks.hosts_of(tx, network.id),
    )


def remove_member(tx: Tx, pool_ref: str, node_ref: str) -> PoolDetail:
    access.require_not_host(tx.actor, "change pools")
    pool = get(tx, pool_ref)
    network = networks.get(tx, pool.network_id)
    node = nodes.get(tx, node_ref, network.id)
    m = tables.pool_members
    before = actions.healthy_count(tx, pool.id)
    gone = tx.connection.execute(
        delete(m).where(m.c.pool_id == pool.id, m.c.node_id == node.id)
    ).rowcount
    if not gone:
        raise NotFoundError(f"{node.name!r} is not a member of pool {pool.name!r}")
    tx.record(
        "pool.member_removed",
        pool.id,
        network.tenant_id,
        {"pool": pool.name, "node": node.name},
        networks.hosts_of(tx, network.id) | _holders(tx, pool.id),
    )
    actions.changed(tx, pool, before)
    return detail(tx, pool.id)


def selections(tx: Tx, pool_id: str) -> dict[NodeId, int]:
    """Live grants of the pool by the member they put first (the requesters sent there)."""
    g = tables.grants
    rows = tx.connection.execute(
        select(g.c.target_id, func.count())
        .where(g.c.pool_id == pool_id, g.c.expires_at > tx.now)
        .group_by(g.c.target_id)
    ).all()
    return {NodeId(node): int(count) for node, count in rows}


def _holders(tx: Tx, pool_id: str) -> set[str]:
    g = tables.grants
    return {h for (h,) in tx.connection.execute(select(g.c.host_id).where(g.c.pool_id == pool_id))}


def ip_owner(tx: Tx, network_id: str, ip: ipaddress.IPv4Address) -> str | None:
    """The name of the pool that has `ip` in the network, if one does."""
    p = tables.pools
    row = tx.connection.execute(
        select(p.c.name).where(p.c.network_id == network_id, p.c.ip == str(ip))
    ).first()
    return None if row is None else str(row.name)


def advance_turn(tx: Tx, pool_id: str) -> int:
    """The pool's round-robin counter before this choice (then one further)."""
    p = tables.pools
    value = tx.connection.execute(
        update(p).where(p.c.id == pool_id).values(turn=p.c.turn + 1).returning(p.c.turn)
    ).scalar_one()
    return int(value) - 1
