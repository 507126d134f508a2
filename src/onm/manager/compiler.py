"""Compile intent into what one host's agent needs (OVN's northbound -> southbound step).

Pure: the intent comes in as model values (`Intent`), the time and the revision as arguments,
and a `HostSnapshot` comes out; nothing here reads a database or a clock, so the compiler is
tested with no database at all (`onm.manager.reads` loads the intent and calls it).

Rules:
- A host's snapshot holds every network it has a node in, its own nodes with their substrate
  addresses, every node of those networks wherever it runs (the residents receiving agents
  verify against), and the unexpired grants given to it whose target still exists.
- Edge pools (seed 1): a host gets its networks' routes and edge pools with every gateway and
  the /64 of the gateway's host; an edge host with gateways serves their networks, so those
  networks (and their residents, where replies go) are in its snapshot too.
- Firewall rules and public IPs (issue #10): a host with a gateway in an edge pool gets the
  pool's rules and all its public IPs; any other host gets the public IPs of its own nodes
  (their flows leave through the gateway holding the address). Each public IP names its owner,
  `public_ip_owner` (one rule for manager and agents: `onm.selection.public_ip`), among the
  gateways not judged down: a dead holder's addresses move to a survivor.
- Everything is ordered (networks by id, nodes and residents by network id then IP, grants by
  requester then target IP), so one intent always compiles to one snapshot.
- `changed_hosts` compares two compilations at one `now`: the hosts whose snapshot differs in
  anything but the revision are the ones a change must mark (`hosts.desired_revision`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from onm.addressing import HostPrefix, embed_ipv4
from onm.errors import NotFoundError
from onm.model import Grant, Host, HostId, Network, Node, NodeId, Resolution
from onm.model.edge_pool import EdgePool, Gateway, GatewayState, Route
from onm.model.edge_rule import EdgeRule, NodePublicIp
from onm.model.ids import ExternalId, GatewayId
from onm.model.pool import Member, MemberView, Pool, PoolState, PoolView
from onm.model.resolution import Alternative
from onm.model.snapshot import (
    EdgePoolView,
    GatewayView,
    HostSnapshot,
    LocalNode,
    PublicIpView,
    Resident,
)
from onm.selection import public_ip


@dataclass(frozen=True, slots=True)
class Intent:
    """What the compiler reads: for one host's snapshot, at least that host, every network it
    has nodes in, every node of those networks with its host, and the host's grants."""

    hosts: tuple[Host, ...]
    networks: tuple[Network, ...]
    nodes: tuple[Node, ...]
    grants: tuple[Grant, ...]
    pools: tuple[Pool, ...] = ()
    """The pools of those networks."""
    members: tuple[Member, ...] = ()
    """Their members (nodes of those networks)."""
    edge_pools: tuple[EdgePool, ...] = ()
    """The edge pools of those networks, and those with a gateway on the host."""
    gateways: tuple[Gateway, ...] = ()
    """Their gateways (their hosts are among `hosts`)."""
    routes: tuple[Route, ...] = ()
    """The routes of those networks."""
    rules: tuple[EdgeRule, ...] = ()
    """The firewall rules of those edge pools."""
    public_ips: tuple[NodePublicIp, ...] = ()
    """The public IPs of those edge pools."""
    down_gateways: frozenset[GatewayId] = frozenset()
    """Those of `gateways` the manager judges down (`onm.manager.gateway_health`): they hold
    no public IP while down."""


def public_ip_owner(
    address: NodePublicIp,
    gateways: Iterable[Gateway],
    externals: Mapping[HostId, ExternalId | None],
    down: Collection[GatewayId] = frozenset(),
) -> GatewayId | None:
    """The gateway that holds `address`: the owner among its pool's active gateways on its
    external network (`externals`: each gateway host's external network) that are not `down`
    (a dead holder's addresses move to a survivor, and come back when it is up)."""
    chosen = public_ip.owner(
        address.ip,
        (
            g.id
            for g in gateways
            if g.pool_id == address.pool_id
            and g.state is GatewayState.ACTIVE
            and g.id not in down
            and externals.get(g.host_id) == address.external_id
        ),
    )
    return None if chosen is None else GatewayId(chosen)


def substrate_address(prefix: HostPrefix, network: Network, node: Node) -> ipaddress.IPv6Address:
    """Where `node` lives on the substrate (DESIGN.md section 2)."""
    return ipaddress.IPv6Address(embed_ipv4(prefix.value, network.vni, node.ip.packed, node.slot))


def pool_address(
    prefix: HostPrefix, network: Network, pool: Pool, member: Member
) -> ipaddress.IPv6Address:
    """Where `member` takes `pool`'s traffic: its host's /64, the pool IP, its slot with U/L set
    (deliver to slot), so two members of one pool on one host have two addresses."""
    packed = embed_ipv4(prefix.value, network.vni, pool.ip.packed, member.slot, True)
    return ipaddress.IPv6Address(packed)


def ranked_alternatives(
    ranking: Iterable[NodeId],
    pool: Pool,
    members: Mapping[NodeId, Member],
    hosts: Mapping[HostId, Host],
    network: Network,
) -> tuple[Alternative, ...]:
    """A requester's ranking as addresses, without members that have left since."""
    return tuple(
        Alternative(m, pool_address(hosts[members[m].host_id].prefix, network, pool, members[m]))
        for m in ranking
        if m in members
    )


def compile_host(intent: Intent, host_id: HostId, revision: int, now: dt.datetime) -> HostSnapshot:
    """The snapshot of `host_id` at `revision`, with the grants still valid at `now`."""
    hosts = {h.id: h for h in intent.hosts}
    host = hosts.get(host_id)
    if host is None:
        raise NotFoundError(f"no host {host_id!r} in the intent")
    networks = {n.id: n for n in intent.networks}
    local = _ordered(n for n in intent.nodes if n.host_id == host_id)
    edge_pools = {p.id: p for p in intent.edge_pools}
    served = {
        edge_pools[g.pool_id].network_id
        for g in intent.gateways
        if g.host_id == host_id and g.pool_id in edge_pools
    }
    here = sorted({n.network_id for n in local} | served)
    residents = _ordered(n for n in intent.nodes if n.network_id in here)
    nodes = {n.id: n for n in intent.nodes}
    pools = {p.id: p for p in intent.pools if p.state is PoolState.LIVE}
    members: dict[str, dict[NodeId, Member]] = {p: {} for p in pools}
    for m in intent.members:
        if m.pool_id in members:
            members[m.pool_id][m.node_id] = m
    grants = []
    for g in sorted(intent.grants, key=lambda g: (g.requester_id, g.target_ip)):
        if g.host_id != host_id or g.expires_at <= now:
            continue
        if g.pool_id is not None:
            pool = pools.get(g.pool_id)
            if pool is None:
                continue
            network = networks[g.network_id]
            ranked = ranked_alternatives(g.ranking, pool, members[pool.id], hosts, network)
            if not ranked:
                continue
            grants.append(
                Resolution(
                    g.network_id,
                    g.requester_id,
                    g.target_ip,
                    ranked[0].node_id,
                    ranked[0].substrate_address,
                    pool.mac,
                    g.expires_at,
                    pool.id,
                    ranked,
                )
            )
            continue
        target = nodes.get(g.target_id)
        if target is None:
            continue
        address = substrate_address(hosts[target.host_id].prefix, networks[g.network_id], target)
        grants.append(
            Resolution(
                g.network_id,
                g.requester_id,
                g.target_ip,
                g.target_id,
                address,
                target.mac,
                g.expires_at,
            )
        )
    return HostSnapshot(
        revision=revision,
        host=host,
        networks=tuple(networks[i] for i in here),
        nodes=tuple(
            LocalNode(n, substrate_address(host.prefix, networks[n.network_id], n)) for n in local
        ),
        residents=tuple(
            Resident(
                n.network_id,
                n.ip,
                substrate_address(hosts[n.host_id].prefix, networks[n.network_id], n),
                n.mac,
            )
            for n in residents
        ),
        grants=tuple(grants),
        pools=tuple(
            PoolView(
                pool,
                tuple(
                    MemberView(
                        m.node_id,
                        m.host_id,
                        pool_address(hosts[m.host_id].prefix, networks[pool.network_id], pool, m),
                        m.health,
                    )
                    for m in sorted(members[pool.id].values(), key=lambda m: (m.rank, m.node_id))
                ),
            )
            for pool in sorted(pools.values(), key=lambda p: (p.network_id, p.ip))
            if pool.network_id in here or any(g.pool_id == pool.id for g in grants)
        ),
        routes=tuple(
            sorted(
                (r for r in intent.routes if r.network_id in here),
                key=lambda r: (r.network_id, r.prefix),
            )
        ),
        edge_pools=_edge_views(intent, here, hosts, host_id),
    )


def _edge_views(
    intent: Intent, here: Iterable[str], hosts: Mapping[HostId, Host], host_id: HostId
) -> tuple[EdgePoolView, ...]:
    wanted = set(here)
    externals = {h.id: h.external_id for h in hosts.values()}
    nodes = {n.id: n for n in intent.nodes}
    views = []
    for pool in sorted(intent.edge_pools, key=lambda p: (p.network_id, p.name)):
        if pool.network_id not in wanted:
            continue
        gateways = [g for g in intent.gateways if g.pool_id == pool.id and g.host_id in hosts]
        serves = any(g.host_id == host_id for g in gateways)
        public = [
            PublicIpView(
                p,
                nodes[p.node_id].ip,
                public_ip_owner(p, gateways, externals, intent.down_gateways),
            )
            for p in sorted(intent.public_ips, key=lambda p: p.ip)
            if p.pool_id == pool.id
            and p.node_id in nodes
            and (serves or nodes[p.node_id].host_id == host_id)
        ]
        rules = sorted((r for r in intent.rules if r.pool_id == pool.id), key=lambda r: r.position)
        views.append(
            EdgePoolView(
                pool,
                tuple(
                    GatewayView(g, hosts[g.host_id].prefix)
                    for g in sorted(gateways, key=lambda g: g.id)
                ),
                tuple(rules) if serves else (),
                tuple(public),
                pool.anycast,
            )
        )
    return tuple(views)


def compile_all(intent: Intent, revision: int, now: dt.datetime) -> dict[HostId, HostSnapshot]:
    """Every host's snapshot (the intent must be complete: all hosts, networks and nodes)."""
    return {h.id: compile_host(intent, h.id, revision, now) for h in intent.hosts}


def changed_hosts(
    before: Mapping[HostId, HostSnapshot], after: Mapping[HostId, HostSnapshot]
) -> frozenset[HostId]:
    """The hosts whose snapshot a change altered: added, removed, or different in content."""
    return frozenset(
        h for h in before.keys() | after.keys() if _content(before.get(h)) != _content(after.get(h))
    )


def _content(snapshot: HostSnapshot | None) -> object:
    if snapshot is None:
        return None
    return (
        snapshot.host,
        snapshot.networks,
        snapshot.nodes,
        snapshot.residents,
        snapshot.grants,
        snapshot.pools,
        snapshot.routes,
        snapshot.edge_pools,
    )


def _ordered(nodes: Iterable[Node]) -> list[Node]:
    return sorted(nodes, key=lambda n: (n.network_id, n.ip))
