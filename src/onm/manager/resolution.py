"""Address resolution with authorization (seed 0, FIG. 4) and the receiving side's check.

A node ARPs; its agent asks `resolve(network, requesting node, target IP)`. The answer is given
only when the requesting node exists, is in that network, and the caller is the host that runs it
(or an admin, for inspection). Answers are substrate addresses, which tenants never see
(docs/addressing.md): a tenant token may neither resolve nor verify. The manager remembers what
it told each host (a grant), so that it can tell that host again when the answer changes.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import replace

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from onm.addressing import HostPrefix, embed_ipv4
from onm.errors import NotFoundError
from onm.manager import access, networks, nodes, tables
from onm.manager.store import Tx
from onm.model import Network, Node, NodeId, Resolution, validate
from onm.model.resolution import Verdict

RESOLUTION_TTL = dt.timedelta(seconds=300)


def substrate_address(prefix: HostPrefix, network: Network, node: Node) -> ipaddress.IPv6Address:
    """Where `node` lives on the substrate (DESIGN.md section 2)."""
    return ipaddress.IPv6Address(embed_ipv4(prefix.value, network.vni, node.ip.packed, node.slot))


def _target(tx: Tx, network: Network, ip: ipaddress.IPv4Address) -> tuple[Node, HostPrefix]:
    n, h = tables.nodes, tables.hosts
    row = tx.connection.execute(
        select(n, h.c.prefix.label("host_prefix"))
        .select_from(n.join(h, n.c.host_id == h.c.id))
        .where(n.c.network_id == network.id, n.c.ip == str(ip))
    ).first()
    if row is None:
        raise NotFoundError(f"no node has {ip} in network {network.name!r}")
    return nodes.from_row(row), HostPrefix.from_network(row.host_prefix)


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
    target, prefix = _target(tx, network, ip)
    answer = Resolution(
        network.id,
        requester.id,
        ip,
        target.id,
        substrate_address(prefix, network, target),
        target.mac,
        tx.now + RESOLUTION_TTL,
    )
    g = tables.grants
    grant = tx.connection.execute(
        select(g.c.target_id, g.c.expires_at).where(
            g.c.requester_id == requester.id, g.c.target_ip == str(ip)
        )
    ).first()
    standing = None
    if (
        grant is not None
        and grant.target_id == target.id
        and grant.expires_at > tx.now + RESOLUTION_TTL / 2
    ):
        standing = replace(answer, expires_at=grant.expires_at)
    return answer, requester, standing


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
    try:
        node, prefix = _target(tx, network, ip)
    except NotFoundError:
        return Verdict(False, f"no node has {ip} in network {network.name!r}", None)
    expected = substrate_address(prefix, network, node)
    if expected != claimed:
        return Verdict(False, f"{ip} lives at {expected}, not {claimed}", expected)
    return Verdict(True, "ok", expected)


def grants_for_host(tx: Tx, host_id: str) -> list[Resolution]:
    """Unexpired resolutions given to a host's nodes, as they stand now."""
    g, n, h, net = tables.grants, tables.nodes, tables.hosts, tables.networks
    rows = tx.connection.execute(
        select(
            g.c.requester_id,
            g.c.target_ip,
            g.c.target_id,
            g.c.network_id,
            g.c.expires_at,
            n.c.slot,
            n.c.mac,
            h.c.prefix.label("host_prefix"),
            net.c.vni,
        )
        .select_from(
            g.join(n, g.c.target_id == n.c.id)
            .join(h, n.c.host_id == h.c.id)
            .join(net, g.c.network_id == net.c.id)
        )
        .where(g.c.host_id == host_id, g.c.expires_at > tx.now)
        .order_by(g.c.requester_id, g.c.target_ip)
    ).all()
    out = []
    for row in rows:
        prefix = HostPrefix.from_network(row.host_prefix)
        ip = ipaddress.IPv4Address(row.target_ip)
        address = embed_ipv4(prefix.value, row.vni, ip.packed, row.slot)
        out.append(
            Resolution(
                row.network_id,
                NodeId(row.requester_id),
                ip,
                NodeId(row.target_id),
                ipaddress.IPv6Address(address),
                row.mac,
                row.expires_at,
            )
        )
    return out
