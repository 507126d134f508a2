"""Edge pools (seed 1, US9356860; DESIGN.md section 5): a tenant network's gateways to external
networks, each on an edge host with its own external address.

- An edge pool belongs to one network and is the tenant's: its settings (`nat`, `hash`,
  `choice`, `mode`, `split_above`, `probe_interval`) follow one pure rule (`settle`).
- Gateways are the operator's: only an admin adds, changes or removes them. A gateway runs on a
  host in edge role; its external address is inside that host's external network, not the
  network's or broadcast address, and no other gateway's (in any pool).
- A pool in `mode: anycast` holds a /64 of its own that its gateways share
  (`onm.addressing.anycast_prefix`: topology version 1, so never a host's), allocated here the
  moment the mode is set (the lowest number no pool holds, in the organisation of the hosts)
  and given back when it is set to direct again. Only admins and hosts see it: it is the
  substrate's (`hosts.shows_substrate`).
- Every change is one transaction, refused whole on a bad value; the hosts of the network and
  the gateways' hosts get it in their snapshots.
- A pool's detail shows its firewall rules in order and its public IPs with the gateway that
  holds each (`onm.manager.edge_rules`, `public_ips`); deleting the pool deletes them too.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, replace

from sqlalchemy import delete, insert, select, update

from onm.addressing import (
    ANYCAST_LIMIT,
    DEFAULT_ORG_ID,
    HostPrefix,
    anycast_index,
    anycast_prefix,
)
from onm.api.codec import decode
from onm.errors import ConflictError, InvalidInputError, NotFoundError
from onm.manager import access, edge_rows, externals, hosts, networks, rule_counts, tables
from onm.manager.store import Tx
from onm.model import Network, validate
from onm.model.edge_pool import (
    Choice,
    EdgePool,
    Gateway,
    GatewayState,
    HashField,
    Mode,
    Nat,
)
from onm.model.edge_rule import CountedRule, DefaultCount
from onm.model.host import HostRole
from onm.model.ids import EdgePoolId, GatewayId, NetworkId, new_id

PROBE_INTERVAL = (0.05, 60.0)
"""Seconds between the sending agents' probes of each gateway: the bounds."""
SPLIT_ABOVE = (1e3, 1e12)
"""Bits per second above which a pair is split (`nat: none` only): the bounds."""
_ENUMS: Mapping[str, type[Nat] | type[Choice] | type[Mode]] = {
    "nat": Nat,
    "choice": Choice,
    "mode": Mode,
}
SETTINGS = frozenset({*_ENUMS, "hash", "split_above", "probe_interval"})


@dataclass(frozen=True, slots=True)
class EdgePoolDetail:
    pool: EdgePool
    network: Network
    gateways: tuple[Gateway, ...]
    rules: tuple[CountedRule, ...] = ()
    """In evaluation order, with what each matched (`onm.manager.rule_counts`)."""
    public_ips: tuple[edge_rows.PublicIpDetail, ...] = ()
    anycast: HostPrefix | None = None
    """The pool's anycast /64, for callers who see the substrate (None for tenants)."""
    defaults: tuple[DefaultCount, ...] = ()
    """What no rule matched, per default verdict."""


def new_pool(network_id: NetworkId, name: str, now: dt.datetime) -> EdgePool:
    """A pool with the defaults: SNAT, hashed on source and destination, direct, probes 1 s."""
    return EdgePool(
        EdgePoolId(new_id("edge_pool")),
        network_id,
        name,
        Nat.SNAT,
        (HashField.SRC, HashField.DST),
        Choice.HASH,
        Mode.DIRECT,
        None,
        1.0,
        now,
    )


def _one_of(
    field: str, kind: type[Nat] | type[Choice] | type[Mode] | type[GatewayState], value: object
) -> object:
    try:
        return kind(str(value))
    except ValueError:
        choices = ", ".join(k.value for k in kind)
        raise InvalidInputError(field, f"{value!r} is not one of {choices}") from None


def _hash_fields(value: object) -> tuple[HashField, ...]:
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not names:
        raise InvalidInputError("hash", "give the fields, e.g. src,dst")
    found: set[HashField] = set()
    for name in names:
        field = HashField.__members__.get(str(name).strip().upper())
        if field is None:
            choices = ", ".join(f.value for f in HashField)
            raise InvalidInputError("hash", f"{name!r} is not a field ({choices})")
        if field in found:
            raise InvalidInputError("hash", f"{name!r} is given twice")
        found.add(field)
    return tuple(f for f in HashField if f in found)


def _seconds(field: str, value: object, bounds: tuple[float, float]) -> float:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidInputError(field, f"{value!r} is outside {low:g}..{high:g}")
    return float(value)


def settle(pool: EdgePool, given: Mapping[str, object]) -> EdgePool:
    """`pool` with the settings in `given` (the rest kept), checked as a whole. Pure."""
    unknown = sorted(set(given) - SETTINGS)
    if unknown:
        raise InvalidInputError(
            unknown[0], f"unknown setting (expected one of: {sorted(SETTINGS)})"
        )
    changes: dict[str, object] = {
        k: _one_of(k, kind, given[k]) for k, kind in _ENUMS.items() if k in given
    }
    if "hash" in given:
        changes["hash_fields"] = _hash_fields(given["hash"])
    if "probe_interval" in given:
        changes["probe_interval"] = _seconds(
            "probe_interval", given["probe_interval"], PROBE_INTERVAL
        )
    if "split_above" in given:
        value = given["split_above"]
        changes["split_above"] = (
            None if value is None else _seconds("split_above", value, SPLIT_ABOVE)
        )
    settled = replace(pool, **changes)  # type: ignore[arg-type]
    if settled.split_above is not None and settled.nat is not Nat.NONE:
        raise InvalidInputError(
            "split_above",
            "only a pool without NAT splits flows (a NAT pool's flows must stay "
            "on the gateway holding their state): give nat none",
        )
    return settled


def _columns(pool: EdgePool) -> dict[str, object]:
    return {
        "nat": pool.nat.value,
        "hash_fields": [f.value for f in pool.hash_fields],
        "choice": pool.choice.value,
        "mode": pool.mode.value,
        "split_above": pool.split_above,
        "probe_interval": pool.probe_interval,
    }


def _with_anycast(tx: Tx, pool: EdgePool) -> EdgePool:
    """`pool` holding an anycast /64 exactly while its mode is anycast: a new one the lowest
    number free, under the organisation id the hosts share (the default if none or several)."""
    if pool.mode is not Mode.ANYCAST:
        return replace(pool, anycast=None)
    if pool.anycast is not None:
        return pool
    e = tables.edge_pools
    held = tx.connection.execute(select(e.c.anycast).where(e.c.anycast.is_not(None))).scalars()
    taken = {anycast_index(HostPrefix.from_network(text)) for text in held}
    index = next((i for i in range(ANYCAST_LIMIT + 1) if i not in taken), None)
    if index is None:  # pragma: no cover - 2**30 pools
        raise ConflictError("mode", "every anycast /64 is taken")
    rows = tx.connection.execute(select(tables.hosts.c.prefix)).scalars()
    orgs = {HostPrefix.from_network(text).org_id for text in rows}
    org_id = orgs.pop() if len(orgs) == 1 else DEFAULT_ORG_ID
    return replace(pool, anycast=anycast_prefix(index, org_id))


def _anycast_column(pool: EdgePool) -> dict[str, object]:
    return {"anycast": None if pool.anycast is None else str(pool.anycast)}


def from_row(row: tables.Row) -> EdgePool:
    return decode(EdgePool, row)


def gateway_from_row(row: tables.Row) -> Gateway:
    return decode(Gateway, row)


# --- edge pools ---------------------------------------------------------------------------------


def create(tx: Tx, name: str, network_ref: str, settings: Mapping[str, object]) -> EdgePoolDetail:
    access.require_not_host(tx.actor, "create edge pools")
    validate.name("name", name)
    network = networks.get(tx, network_ref)
    pool = _with_anycast(tx, settle(new_pool(network.id, name, tx.now), settings))
    e = tables.edge_pools
    clash = tx.connection.execute(
        select(e.c.id).where(e.c.network_id == network.id, e.c.name == name)
    ).first()
    if clash is not None:
        raise ConflictError("name", f"network {network.name!r} has an edge pool named {name!r}")
    tx.connection.execute(
        insert(e).values(
            id=pool.id,
            network_id=network.id,
            name=name,
            created_at=tx.now,
            **_columns(pool),
            **_anycast_column(pool),
        )
    )
    tx.record(
        "edge_pool.created",
        pool.id,
        network.tenant_id,
        {"name": name, "network": network.name, **_columns(pool)},
        networks.hosts_of(tx, network.id),
    )
    return detail(tx, pool.id)


def get(tx: Tx, ref: str, network_ref: str | None = None) -> EdgePool:
    """By id, or by name within `network_ref` (`NETWORK/NAME` works too)."""
    e, net = tables.edge_pools, tables.networks
    query = select(e).select_from(e.join(net, e.c.network_id == net.c.id))
    if "/" in ref and network_ref is None:
        network_ref, _, ref = ref.rpartition("/")
    if network_ref is not None:
        query = query.where(e.c.network_id == networks.get(tx, network_ref).id)
    query = query.where((e.c.id == ref) | (e.c.name == ref))
    scope = access.tenant_scope(tx.actor)
    if scope is not None:
        query = query.where(net.c.tenant_id == scope)
    rows = tx.connection.execute(query).all()
    if not rows or (tx.actor.host_id is not None and not _host_sees(tx, rows[0])):
        raise NotFoundError(f"no edge pool {ref!r}")
    if len(rows) > 1:
        raise InvalidInputError(
            "edge_pool", f"{ref!r} names edge pools of several networks: give the network"
        )
    return from_row(rows[0])


def _host_sees(tx: Tx, row: tables.Row) -> bool:
    assert tx.actor.host_id is not None
    return row.network_id in networks.networks_of_host(tx, tx.actor.host_id) or bool(
        tx.connection.execute(
            select(tables.edge_gateways.c.id).where(
                tables.edge_gateways.c.pool_id == row.id,
                tables.edge_gateways.c.host_id == tx.actor.host_id,
            )
        ).first()
    )


def gateways_of(tx: Tx, pool_id: str) -> tuple[Gateway, ...]:
    g = tables.edge_gateways
    rows = tx.connection.execute(select(g).where(g.c.pool_id == pool_id).order_by(g.c.name))
    return tuple(gateway_from_row(r) for r in rows)


def detail(tx: Tx, ref: str, network_ref: str | None = None) -> EdgePoolDetail:
    pool = get(tx, ref, network_ref)
    gateways = gateways_of(tx, pool.id)
    public = edge_rows.public_ips_of(tx, [pool.id])
    return EdgePoolDetail(
        pool,
        networks.get(tx, pool.network_id),
        gateways,
        rule_counts.counted(tx, edge_rows.rules_of(tx, [pool.id])),
        tuple(edge_rows.details(tx, public, gateways)),
        pool.anycast if hosts.shows_substrate(tx) else None,
        rule_counts.defaults_of(tx, pool.id),
    )


def list_all(tx: Tx, network_ref: str | None = None) -> list[EdgePoolDetail]:
    e, net = tables.edge_pools, tables.networks
    query = select(e.c.id).select_from(e.join(net, e.c.network_id == net.c.id)).order_by(e.c.name)
    if network_ref is not None:
        query = query.where(e.c.network_id == networks.get(tx, network_ref).id)
    scope = access.tenant_scope(tx.actor)
    if scope is not None:
        query = query.where(net.c.tenant_id == scope)
    found = []
    for (pool_id,) in tx.connection.execute(query).all():
        try:
            found.append(detail(tx, pool_id))
        except NotFoundError:  # a host's view: not one of its networks' pools
            continue
    return found


def affected(tx: Tx, pool: EdgePool) -> set[str]:
    """The hosts whose snapshot holds `pool`: its network's and its gateways'."""
    hosts_of_gateways = {g.host_id for g in gateways_of(tx, pool.id)}
    return networks.hosts_of(tx, pool.network_id) | hosts_of_gateways


def update_pool(tx: Tx, ref: str, settings: Mapping[str, object]) -> EdgePoolDetail:
    access.require_not_host(tx.actor, "change edge pools")
    pool = get(tx, ref)
    changed = _with_anycast(tx, settle(pool, settings))
    if changed != pool:
        e = tables.edge_pools
        values = {**_columns(changed), **_anycast_column(changed)}
        tx.connection.execute(update(e).where(e.c.id == pool.id).values(**values))
        network = networks.get(tx, pool.network_id)
        tx.record(
            "edge_pool.updated",
            pool.id,
            network.tenant_id,
            {"name": pool.name, "changes": _columns(changed)},
            affected(tx, pool),
        )
    return detail(tx, pool.id)


def delete_pool(tx: Tx, ref: str) -> EdgePool:
    access.require_not_host(tx.actor, "delete edge pools")
    pool = get(tx, ref)
    network = networks.get(tx, pool.network_id)
    r = tables.routes
    used = tx.connection.execute(select(r.c.prefix).where(r.c.edge_pool_id == pool.id)).first()
    if used is not None:
        raise ConflictError(
            "edge_pool",
            f"route {used.prefix} of network {network.name!r} uses "
            f"edge pool {pool.name!r}: delete the route first",
        )
    marked = affected(tx, pool)
    _forget_reports(tx, [g.id for g in gateways_of(tx, pool.id)])
    tx.connection.execute(
        delete(tables.edge_gateways).where(tables.edge_gateways.c.pool_id == pool.id)
    )
    tx.connection.execute(delete(tables.edge_pools).where(tables.edge_pools.c.id == pool.id))
    tx.record(
        "edge_pool.deleted",
        pool.id,
        network.tenant_id,
        {"name": pool.name, "network": network.name},
        marked,
    )
    return pool


# --- gateways (the operator's) ------------------------------------------------------------------


def _external_ip(
    tx: Tx, host_ref: str, value: str, keep: str | None = None
) -> ipaddress.IPv4Address:
    host = hosts.get(tx, host_ref)
    if host.role is not HostRole.EDGE or host.external_id is None:
        raise InvalidInputError(
            "host",
            f"host {host.name!r} is not in edge role (onm host create --role edge --external NAME)",
        )
    external = externals.get(tx, host.external_id)
    ip = validate.ipv4("external_ip", value)
    if ip not in external.cidr or ip in (
        external.cidr.network_address,
        external.cidr.broadcast_address,
    ):
        raise InvalidInputError(
            "external_ip",
            f"{ip} is not a host address of external network {external.name!r} ({external.cidr})",
        )
    g, h = tables.edge_gateways, tables.hosts
    taken = tx.connection.execute(  # one address per external network, not across them
        select(g.c.name)
        .join(h, h.c.id == g.c.host_id)
        .where(
            g.c.external_ip == str(ip),
            h.c.external_id == external.id,
            g.c.id != (keep or ""),
        )
    ).first()
    if taken is not None:
        raise ConflictError("external_ip", f"{ip} is gateway {taken.name!r}'s external address")
    p = tables.public_ips
    public = tx.connection.execute(
        select(p.c.id).where(p.c.external_id == external.id, p.c.ip == str(ip))
    ).first()
    if public is not None:
        raise ConflictError("external_ip", f"{ip} is a public IP on {external.name!r}")
    return ip


def add_gateway(
    tx: Tx, pool_ref: str, name: str, host_ref: str, external_ip: str
) -> EdgePoolDetail:
    access.require_admin(tx.actor, "add gateways")
    validate.name("name", name)
    pool = get(tx, pool_ref)
    host = hosts.get(tx, host_ref)
    ip = _external_ip(tx, host.id, external_ip)
    g = tables.edge_gateways
    if tx.connection.execute(
        select(g.c.id).where(g.c.pool_id == pool.id, g.c.name == name)
    ).first():
        raise ConflictError("name", f"edge pool {pool.name!r} has a gateway named {name!r}")
    gateway = Gateway(
        GatewayId(new_id("gateway")), pool.id, name, host.id, ip, GatewayState.ACTIVE, tx.now
    )
    tx.connection.execute(
        insert(g).values(
            id=gateway.id,
            pool_id=pool.id,
            name=name,
            host_id=host.id,
            external_ip=str(ip),
            state=gateway.state.value,
            created_at=tx.now,
        )
    )
    network = networks.get(tx, pool.network_id)
    tx.record(
        "edge_pool.gateway_added",
        gateway.id,
        network.tenant_id,
        {"pool": pool.name, "gateway": name, "host": host.name, "external_ip": str(ip)},
        affected(tx, pool),
    )
    return detail(tx, pool.id)


def _gateway(tx: Tx, pool: EdgePool, ref: str) -> Gateway:
    g = tables.edge_gateways
    row = tx.connection.execute(
        select(g).where(g.c.pool_id == pool.id, (g.c.id == ref) | (g.c.name == ref))
    ).first()
    if row is None:
        raise NotFoundError(f"edge pool {pool.name!r} has no gateway {ref!r}")
    return gateway_from_row(row)


def update_gateway(
    tx: Tx, pool_ref: str, ref: str, state: str | None = None, external_ip: str | None = None
) -> EdgePoolDetail:
    """Drain a gateway (no new flows; its flows finish), make it active again, or move its
    external address."""
    access.require_admin(tx.actor, "change gateways")
    pool = get(tx, pool_ref)
    gateway = _gateway(tx, pool, ref)
    values: dict[str, object] = {}
    if state is not None:
        chosen = _one_of("state", GatewayState, state)
        if chosen is not gateway.state:
            values["state"] = str(chosen)
    if external_ip is not None:
        ip = _external_ip(tx, gateway.host_id, external_ip, keep=gateway.id)
        if ip != gateway.external_ip:
            values["external_ip"] = str(ip)
    if values:
        g = tables.edge_gateways
        tx.connection.execute(update(g).where(g.c.id == gateway.id).values(**values))
        network = networks.get(tx, pool.network_id)
        tx.record(
            "edge_pool.gateway_updated",
            gateway.id,
            network.tenant_id,
            {"pool": pool.name, "gateway": gateway.name, **values},
            affected(tx, pool),
        )
    return detail(tx, pool.id)


def remove_gateway(tx: Tx, pool_ref: str, ref: str) -> EdgePoolDetail:
    access.require_admin(tx.actor, "remove gateways")
    pool = get(tx, pool_ref)
    gateway = _gateway(tx, pool, ref)
    marked = affected(tx, pool)
    _forget_reports(tx, [gateway.id])
    tx.connection.execute(
        delete(tables.edge_gateways).where(tables.edge_gateways.c.id == gateway.id)
    )
    network = networks.get(tx, pool.network_id)
    tx.record(
        "edge_pool.gateway_removed",
        gateway.id,
        network.tenant_id,
        {"pool": pool.name, "gateway": gateway.name},
        marked,
    )
    return detail(tx, pool.id)


def _forget_reports(tx: Tx, gateway_ids: list[GatewayId]) -> None:
    """What agents said of gateways that go (`onm.manager.gateway_health`)."""
    r = tables.gateway_reports
    tx.connection.execute(delete(r).where(r.c.gateway_id.in_(gateway_ids)))


# --- rebalance (the pool's tenant, or an admin) ---------------------------------------------------


def rebalance(tx: Tx, ref: str) -> EdgePoolDetail:
    """Move existing flows on purpose: the pool's rebalance generation goes up by one, and every
    sending agent that sees it change drops the pool's pins once (each flow then takes the
    table's choice: flows whose gateway that is not lose their NAT state)."""
    access.require_not_host(tx.actor, "rebalance edge pools")
    pool = get(tx, ref)
    e = tables.edge_pools
    generation = pool.rebalance + 1
    tx.connection.execute(update(e).where(e.c.id == pool.id).values(rebalance=generation))
    network = networks.get(tx, pool.network_id)
    tx.record(
        "edge_pool.rebalanced",
        pool.id,
        network.tenant_id,
        {"name": pool.name, "network": network.name, "rebalance": generation},
        affected(tx, pool),
    )
    return detail(tx, pool.id)
