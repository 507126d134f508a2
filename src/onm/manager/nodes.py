"""Computing nodes: one virtual IP in one network, attached on one host.

The manager allocates what must be unique: the virtual MAC (locally administered, RFC 7042
section 2.1) and, unless given, the host-side interface name. Inside one network a virtual IP
belongs to one node, so (network id, IPv4) already tells a host's nodes apart inside its /64
and an ordinary node's slot is `ORDINARY_SLOT`: a host holds as many nodes as it has
interfaces, not 63 (docs/addressing.md). Pools share an IP through a separate object (a later
issue).
"""

from __future__ import annotations

import ipaddress

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from onm.api.codec import decode
from onm.errors import ConflictError, InvalidInputError, NotFoundError
from onm.manager import access, hosts, networks, quota, tables
from onm.manager.store import Tx
from onm.model import Network, Node, NodeId, validate
from onm.model.ids import new_id
from onm.packet import ethernet

ORDINARY_SLOT = 0
"""The slot of every ordinary node: delivered by (network id, IPv4), U/L clear (FIG. 2D)."""
MAC_BASE = 0x02_00_00_00_00_00  # locally administered, unicast (RFC 7042 section 2.1)


def from_row(row: tables.Row) -> Node:
    return decode(Node, row)


def format_mac(value: int) -> str:
    return ethernet.format_mac(value.to_bytes(6, "big"))


def allocate_mac(tx: Tx) -> str:
    return format_mac(MAC_BASE + tx.next_value("mac"))


def check_ip(network: Network, ip: ipaddress.IPv4Address) -> None:
    cidr = next((c for c in network.cidrs if ip in c), None)
    if cidr is None:
        cidrs = ", ".join(str(c) for c in network.cidrs)
        raise InvalidInputError("ip", f"{ip} is not inside network {network.name!r} ({cidrs})")
    if ip in (cidr.network_address, cidr.broadcast_address):
        raise InvalidInputError("ip", f"{ip} is the network or broadcast address of {cidr}")
    if ip in network.gateways:
        raise InvalidInputError("ip", f"{ip} is network {network.name!r}'s gateway address")


def create(
    tx: Tx,
    name: str,
    network_ref: str,
    host_ref: str,
    ip: str,
    interface: str | None = None,
    quotas: quota.Quotas = quota.DEFAULT,
) -> Node:
    """A new node; the network's tenant must have room for it in its node quota."""
    access.require_not_host(tx.actor, "create nodes")
    validate.name("name", name)
    address = validate.ipv4("ip", ip)
    if interface is not None:
        validate.interface("interface", interface)
    network = networks.get(tx, network_ref)
    host = hosts.get(tx, host_ref)
    check_ip(network, address)
    pool = tx.connection.execute(
        select(tables.pools.c.name).where(
            tables.pools.c.network_id == network.id, tables.pools.c.ip == str(address)
        )
    ).first()
    if pool is not None:
        raise ConflictError("ip", f"{address} is pool {pool.name!r}'s address")
    quota.check_nodes(tx, network.tenant_id, quotas)
    n = tables.nodes
    clash = tx.connection.execute(
        select(n.c.name, n.c.ip).where(
            n.c.network_id == network.id, (n.c.name == name) | (n.c.ip == str(address))
        )
    ).first()
    if clash is not None:
        if clash.name == name:
            raise ConflictError("name", f"network {network.name!r} has a node named {name!r}")
        raise ConflictError("ip", f"{address} belongs to node {clash.name!r}")
    node_id = NodeId(new_id("node"))
    chosen_interface = interface or f"onm{node_id[4:14]}"
    node = Node(
        node_id,
        name,
        network.id,
        host.id,
        address,
        allocate_mac(tx),
        ORDINARY_SLOT,
        chosen_interface,
        tx.now,
    )
    try:
        with tx.connection.begin_nested():
            tx.connection.execute(
                insert(n).values(
                    id=node.id,
                    name=name,
                    network_id=network.id,
                    host_id=host.id,
                    ip=str(address),
                    mac=node.mac,
                    slot=node.slot,
                    interface=chosen_interface,
                    created_at=tx.now,
                )
            )
    except IntegrityError:
        raise ConflictError(
            "interface", f"host {host.name!r} already has an interface {chosen_interface!r}"
        ) from None
    affected = networks.hosts_of(tx, network.id) | {host.id}
    tx.record(
        "node.created",
        node.id,
        network.tenant_id,
        {"name": name, "network": network.name, "host": host.name, "ip": str(address)},
        affected,
    )
    return node


def get(tx: Tx, ref: str, network_ref: str | None = None) -> Node:
    """A node by id, or by name within `network_ref` (or unambiguous among visible nodes)."""
    n, net = tables.nodes, tables.networks
    query = select(n).select_from(n.join(net, n.c.network_id == net.c.id))
    if "/" in ref and network_ref is None:
        network_ref, _, ref = ref.rpartition("/")
    if network_ref is not None:
        network_id = networks.get(tx, network_ref).id
        query = query.where(n.c.network_id == network_id, (n.c.id == ref) | (n.c.name == ref))
    else:
        query = query.where((n.c.id == ref) | (n.c.name == ref))
    scope = access.tenant_scope(tx.actor)
    if scope is not None:
        query = query.where(net.c.tenant_id == scope)
    if tx.actor.host_id is not None:
        query = query.where(n.c.host_id == tx.actor.host_id)
    rows = tx.connection.execute(query).all()
    if not rows:
        raise NotFoundError(f"no node {ref!r}")
    if len(rows) > 1:
        raise InvalidInputError(
            "node", f"{ref!r} names nodes of several networks: give the network"
        )
    return from_row(rows[0])


def by_ids(tx: Tx, ids: list[NodeId]) -> list[Node]:
    """Nodes by id (no access check: callers have one), in no particular order."""
    n = tables.nodes
    return [
        from_row(row) for row in tx.connection.execute(select(n).where(n.c.id.in_(sorted(ids))))
    ]


def _public_ip_holders(tx: Tx, node_id: str) -> set[str]:
    """The gateway hosts of the pools a node being deleted has public IPs on (its public IPs
    go with it: ON DELETE CASCADE)."""
    p, g = tables.public_ips, tables.edge_gateways
    pools = select(p.c.pool_id).where(p.c.node_id == node_id).scalar_subquery()
    query = select(g.c.host_id).where(g.c.pool_id.in_(pools))
    return {h for (h,) in tx.connection.execute(query)}


def _forget_memberships(tx: Tx, node_id: str) -> set[str]:
    """Drop a node being deleted from every pool (and its claims): the hosts holding grants
    for those pools."""
    m, g = tables.pool_members, tables.grants
    pools = select(m.c.pool_id).where(m.c.node_id == node_id).scalar_subquery()
    holders = {
        h for (h,) in tx.connection.execute(select(g.c.host_id).where(g.c.pool_id.in_(pools)))
    }
    tx.connection.execute(delete(m).where(m.c.node_id == node_id))
    tx.connection.execute(delete(tables.ip_claims).where(tables.ip_claims.c.node_id == node_id))
    return holders


def list_all(tx: Tx, network_ref: str | None = None, host_ref: str | None = None) -> list[Node]:
    n, net = tables.nodes, tables.networks
    query = select(n).select_from(n.join(net, n.c.network_id == net.c.id)).order_by(n.c.name)
    if network_ref is not None:
        query = query.where(n.c.network_id == networks.get(tx, network_ref).id)
    if host_ref is not None:
        query = query.where(n.c.host_id == hosts.get(tx, host_ref).id)
    scope = access.tenant_scope(tx.actor)
    if scope is not None:
        query = query.where(net.c.tenant_id == scope)
    if tx.actor.host_id is not None:
        query = query.where(n.c.host_id == tx.actor.host_id)
    return [from_row(row) for row in tx.connection.execute(query)]


def delete_node(tx: Tx, ref: str, network_ref: str | None = None) -> Node:
    access.require_not_host(tx.actor, "delete nodes")
    node = get(tx, ref, network_ref)
    network = networks.get(tx, node.network_id)
    g = tables.grants
    holders = {
        h for (h,) in tx.connection.execute(select(g.c.host_id).where(g.c.target_id == node.id))
    }
    affected = networks.hosts_of(tx, node.network_id) | holders
    tx.connection.execute(
        delete(g).where((g.c.target_id == node.id) | (g.c.requester_id == node.id))
    )
    affected |= _forget_memberships(tx, node.id)
    affected |= _public_ip_holders(tx, node.id)
    tx.connection.execute(delete(tables.nodes).where(tables.nodes.c.id == node.id))
    tx.record(
        "node.deleted",
        node.id,
        network.tenant_id,
        {"name": node.name, "network": network.name, "ip": str(node.ip)},
        affected,
    )
    return node
