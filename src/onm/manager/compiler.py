"""Compile intent into what one host's agent needs (OVN's northbound -> southbound step).

The compiler reads; it never writes. A snapshot reflects the global revision it was read at;
`hosts.desired_revision` says which revision last changed a host's snapshot, so the agent (and
`onm status`) know whether it is behind.
"""

from __future__ import annotations

from sqlalchemy import select

from onm.addressing import HostPrefix
from onm.manager import access, hosts, networks, nodes, resolution, tables
from onm.manager.store import Tx
from onm.model.snapshot import HostSnapshot, LocalNode, Resident


def snapshot(tx: Tx, host_ref: str) -> HostSnapshot:
    """What `host_ref`'s agent needs; for admins and that host only (it holds every tenant's)."""
    access.require_not_tenant(tx.actor, "read host snapshots")
    host = hosts.get(tx, host_ref)
    n, h, net = tables.nodes, tables.hosts, tables.networks
    local = [
        nodes.from_row(row)
        for row in tx.connection.execute(
            select(n).where(n.c.host_id == host.id).order_by(n.c.network_id, n.c.ip)
        )
    ]
    network_ids = sorted({node.network_id for node in local})
    nets = {
        row.id: networks.from_row(row)
        for row in tx.connection.execute(select(net).where(net.c.id.in_(network_ids)))
    }
    residents = []
    for row in tx.connection.execute(
        select(n, h.c.prefix.label("host_prefix"))
        .select_from(n.join(h, n.c.host_id == h.c.id))
        .where(n.c.network_id.in_(network_ids))
        .order_by(n.c.network_id, n.c.ip)
    ):
        node = nodes.from_row(row)
        address = resolution.substrate_address(
            HostPrefix.from_network(row.host_prefix), nets[node.network_id], node
        )
        residents.append(Resident(node.network_id, node.ip, address, node.mac))
    return HostSnapshot(
        revision=tx.current_revision(),
        host=host,
        networks=tuple(nets[i] for i in network_ids),
        nodes=tuple(
            LocalNode(node, resolution.substrate_address(host.prefix, nets[node.network_id], node))
            for node in local
        ),
        residents=tuple(residents),
        grants=tuple(resolution.grants_for_host(tx, host.id)),
    )


def desired_revision(tx: Tx, host_ref: str) -> int:
    """The revision of the last change to this host's snapshot (cheap: for long polls)."""
    access.require_not_tenant(tx.actor, "read host snapshots")
    host = hosts.get(tx, host_ref)
    value = tx.connection.execute(
        select(tables.hosts.c.desired_revision).where(tables.hosts.c.id == host.id)
    ).scalar_one()
    return int(value)
