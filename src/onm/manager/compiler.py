"""Compile intent into what one host's agent needs (OVN's northbound -> southbound step).

Pure: the intent comes in as model values (`Intent`), the time and the revision as arguments,
and a `HostSnapshot` comes out; nothing here reads a database or a clock, so the compiler is
tested with no database at all (`onm.manager.reads` loads the intent and calls it).

Rules:
- A host's snapshot holds every network it has a node in, its own nodes with their substrate
  addresses, every node of those networks wherever it runs (the residents receiving agents
  verify against), and the unexpired grants given to it whose target still exists.
- Everything is ordered (networks by id, nodes and residents by network id then IP, grants by
  requester then target IP), so one intent always compiles to one snapshot.
- `changed_hosts` compares two compilations at one `now`: the hosts whose snapshot differs in
  anything but the revision are the ones a change must mark (`hosts.desired_revision`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from onm.addressing import HostPrefix, embed_ipv4
from onm.errors import NotFoundError
from onm.model import Grant, Host, HostId, Network, Node, Resolution
from onm.model.snapshot import HostSnapshot, LocalNode, Resident


@dataclass(frozen=True, slots=True)
class Intent:
    """What the compiler reads: for one host's snapshot, at least that host, every network it
    has nodes in, every node of those networks with its host, and the host's grants."""

    hosts: tuple[Host, ...]
    networks: tuple[Network, ...]
    nodes: tuple[Node, ...]
    grants: tuple[Grant, ...]


def substrate_address(prefix: HostPrefix, network: Network, node: Node) -> ipaddress.IPv6Address:
    """Where `node` lives on the substrate (DESIGN.md section 2)."""
    return ipaddress.IPv6Address(embed_ipv4(prefix.value, network.vni, node.ip.packed, node.slot))


def compile_host(intent: Intent, host_id: HostId, revision: int, now: dt.datetime) -> HostSnapshot:
    """The snapshot of `host_id` at `revision`, with the grants still valid at `now`."""
    hosts = {h.id: h for h in intent.hosts}
    host = hosts.get(host_id)
    if host is None:
        raise NotFoundError(f"no host {host_id!r} in the intent")
    networks = {n.id: n for n in intent.networks}
    local = _ordered(n for n in intent.nodes if n.host_id == host_id)
    here = sorted({n.network_id for n in local})
    residents = _ordered(n for n in intent.nodes if n.network_id in here)
    nodes = {n.id: n for n in intent.nodes}
    grants = []
    for g in sorted(intent.grants, key=lambda g: (g.requester_id, g.target_ip)):
        target = nodes.get(g.target_id)
        if g.host_id != host_id or g.expires_at <= now or target is None:
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
    )


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
    return (snapshot.host, snapshot.networks, snapshot.nodes, snapshot.residents, snapshot.grants)


def _ordered(nodes: Iterable[Node]) -> list[Node]:
    return sorted(nodes, key=lambda n: (n.network_id, n.ip))
