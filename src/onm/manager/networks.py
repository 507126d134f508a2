"""Virtual networks: a tenant's IPv4 CIDRs with a 24-bit network id allocated here.

Two tenants' networks may use the same or overlapping CIDRs: the network id in every substrate
address keeps them apart (DESIGN.md section 2). A network is named uniquely within its tenant and
referred to by id, by name (unique for the caller), or as `tenant/name`.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy import update as update_
from sqlalchemy.exc import IntegrityError

from onm.api.codec import decode
from onm.errors import ConflictError, InvalidInputError, NotFoundError
from onm.manager import access, quota, tables, tenants
from onm.manager.store import Tx
from onm.model import Encoding, Network, NetworkId, validate
from onm.model.ids import new_id
from onm.model.network import AutoPools

MAX_VNI = (1 << 24) - 1


def from_row(row: tables.Row) -> Network:
    return decode(Network, row)


def _allocate_vni(tx: Tx) -> int:
    """A network id never used before, while there are some; then the lowest free one.

    Not reusing ids keeps a deleted network's substrate addresses, which other hosts may still
    hold in their caches, from ever reaching another tenant's new network.
    """
    fresh = tx.next_value("vni")
    if fresh <= MAX_VNI:
        return fresh
    used = {v for (v,) in tx.connection.execute(select(tables.networks.c.vni))}
    for vni in range(1, MAX_VNI + 1):
        if vni not in used:
            return vni
    raise ConflictError("network", "every network id is in use")


def create(
    tx: Tx,
    tenant_ref: str | None,
    name: str,
    cidrs: list[str],
    encoding: str = "siit",
    quotas: quota.Quotas = quota.DEFAULT,
    auto_pools: str = AutoPools.PROPOSE.value,
) -> Network:
    """A new network; a tenant token may leave `tenant_ref` out (its own tenant).

    CIDRs follow `onm.model.cidr`'s rule (422 otherwise); the tenant's network quota holds.
    """
    access.require_not_host(tx.actor, "create networks")
    if tenant_ref is None:
        if tx.actor.tenant_id is None:
            raise InvalidInputError("tenant", "required (which tenant owns the network)")
        tenant_ref = tx.actor.tenant_id
    tenant = tenants.get(tx, tenant_ref)
    validate.name("name", name)
    parsed = validate.cidrs("cidrs", cidrs)
    try:
        chosen = Encoding(encoding)
    except ValueError:
        choices = ", ".join(e.value for e in Encoding)
        raise InvalidInputError("encoding", f"{encoding!r} is not one of {choices}") from None
    detect = _auto_pools(auto_pools)
    quota.check_networks(tx, tenant.id, quotas)
    network = Network(
        NetworkId(new_id("network")),
        tenant.id,
        name,
        _allocate_vni(tx),
        parsed,
        chosen,
        tx.now,
        detect,
    )
    try:
        with tx.connection.begin_nested():
            tx.connection.execute(
                insert(tables.networks).values(
                    id=network.id,
                    tenant_id=tenant.id,
                    name=name,
                    vni=network.vni,
                    encoding=chosen.value,
                    cidrs=[str(c) for c in parsed],
                    created_at=tx.now,
                    auto_pools=detect.value,
                )
            )
    except IntegrityError:
        raise ConflictError(
            "name", f"tenant {tenant.name!r} has a network named {name!r}"
        ) from None
    tx.record(
        "network.created",
        network.id,
        tenant.id,
        {
            "name": name,
            "vni": network.vni,
            "cidrs": [str(c) for c in parsed],
            "encoding": chosen.value,
            "auto_pools": detect.value,
        },
    )
    return network


def _auto_pools(value: str) -> AutoPools:
    try:
        return AutoPools(value)
    except ValueError:
        choices = ", ".join(a.value for a in AutoPools)
        raise InvalidInputError("auto_pools", f"{value!r} is not one of {choices}") from None


def update(tx: Tx, ref: str, auto_pools: str | None = None) -> Network:
    """Change a network's settings (what a detected pool does); the rest is fixed at birth."""
    access.require_not_host(tx.actor, "change networks")
    network = get(tx, ref)
    if auto_pools is None:
        return network
    detect = _auto_pools(auto_pools)
    if detect is not network.auto_pools:
        n = tables.networks
        tx.connection.execute(
            update_(n).where(n.c.id == network.id).values(auto_pools=detect.value)
        )
        tx.record(
            "network.updated",
            network.id,
            network.tenant_id,
            {"name": network.name, "auto_pools": detect.value},
        )
    return get(tx, network.id)


def get(tx: Tx, ref: str) -> Network:
    """A network by id, `tenant/name`, or name (which must then be unambiguous for the caller)."""
    n, t = tables.networks, tables.tenants
    query = select(n).select_from(n.join(t, n.c.tenant_id == t.c.id))
    if "/" in ref:
        tenant_name, _, name = ref.partition("/")
        query = query.where(t.c.name == tenant_name, n.c.name == name)
    else:
        query = query.where((n.c.id == ref) | (n.c.name == ref))
    scope = access.tenant_scope(tx.actor)
    if scope is not None:
        query = query.where(n.c.tenant_id == scope)
    rows = tx.connection.execute(query).all()
    what = f"no network {ref!r}"
    if not rows:
        raise NotFoundError(what)
    if len(rows) > 1:
        raise InvalidInputError(
            "network", f"{ref!r} names networks of several tenants: write it as tenant/{ref}"
        )
    network = from_row(rows[0])
    _check_host_may_see(tx, network, what)
    return network


def _check_host_may_see(tx: Tx, network: Network, what: str) -> None:
    """A host token sees only networks it has nodes in."""
    if tx.actor.host_id is None:
        return
    present = tx.connection.execute(
        select(tables.nodes.c.id)
        .where(tables.nodes.c.network_id == network.id, tables.nodes.c.host_id == tx.actor.host_id)
        .limit(1)
    ).first()
    if present is None:
        raise NotFoundError(what)


def list_all(tx: Tx, tenant_ref: str | None = None) -> list[Network]:
    access.require_not_host(tx.actor, "list networks")
    n = tables.networks
    query = select(n).order_by(n.c.name, n.c.id)
    if tenant_ref is not None:
        query = query.where(n.c.tenant_id == tenants.get(tx, tenant_ref).id)
    scope = access.tenant_scope(tx.actor)
    if scope is not None:
        query = query.where(n.c.tenant_id == scope)
    return [from_row(row) for row in tx.connection.execute(query)]


def hosts_of(tx: Tx, network_id: str) -> set[str]:
    """Hosts with nodes in a network: the ones whose snapshot a change to it alters."""
    nodes = tables.nodes
    query = select(nodes.c.host_id).where(nodes.c.network_id == network_id).distinct()
    return {host for (host,) in tx.connection.execute(query)}


def networks_of_host(tx: Tx, host_id: str) -> set[str]:
    """Networks a host runs nodes of (what it may see of them)."""
    nodes = tables.nodes
    query = select(nodes.c.network_id).where(nodes.c.host_id == host_id).distinct()
    return {network for (network,) in tx.connection.execute(query)}


def delete_network(tx: Tx, ref: str) -> Network:
    access.require_not_host(tx.actor, "delete networks")
    network = get(tx, ref)
    has_nodes = tx.connection.execute(
        select(tables.nodes.c.id).where(tables.nodes.c.network_id == network.id).limit(1)
    ).first()
    if has_nodes:
        raise ConflictError("network", f"network {network.name!r} still has nodes")
    has_pools = tx.connection.execute(
        select(tables.pools.c.id).where(tables.pools.c.network_id == network.id).limit(1)
    ).first()
    if has_pools:
        raise ConflictError("network", f"network {network.name!r} still has pools")
    e = tables.edge_pools
    if tx.connection.execute(select(e.c.id).where(e.c.network_id == network.id)).first():
        raise ConflictError("network", f"network {network.name!r} still has edge pools")
    tx.connection.execute(delete(tables.networks).where(tables.networks.c.id == network.id))
    tx.record("network.deleted", network.id, network.tenant_id, {"name": network.name})
    return network
