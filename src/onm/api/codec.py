"""The model <-> wire codec, wire -> model half: the manager's JSON (API schemas) turned into the
domain model the agent's core works on. (The model -> wire half is each schema's `.of()`.)

The outgoing schemas keep addresses, CIDRs and encodings as plain strings, so a value the domain
model refuses surfaces here: `snapshot` and `resolution` raise it as an `OnmError` (what the
link handles: log, back off, retry), never as a stray `ValueError`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager

from onm.addressing import HostPrefix
from onm.api import schemas as s
from onm.errors import OnmError
from onm.model import (
    Encoding,
    Host,
    HostId,
    Network,
    NetworkId,
    Node,
    NodeId,
    Resolution,
    TenantId,
)
from onm.model.snapshot import HostSnapshot, LocalNode, Resident


def network(n: s.NetworkOut) -> Network:
    return Network(
        NetworkId(n.id),
        TenantId(n.tenant_id),
        n.name,
        n.vni,
        tuple(ipaddress.IPv4Network(c) for c in n.cidrs),
        Encoding(n.encoding),
        n.created_at,
    )


def node(n: s.NodeOut) -> Node:
    return Node(
        NodeId(n.id),
        n.name,
        NetworkId(n.network_id),
        HostId(n.host_id),
        ipaddress.IPv4Address(n.ip),
        n.mac,
        n.slot,
        n.interface,
        n.created_at,
    )


@contextmanager
def _from_manager(what: str) -> Iterator[None]:
    try:
        yield
    except OnmError:
        raise
    except (ValueError, TypeError) as exc:
        raise OnmError(f"unusable {what} from the manager: {exc}") from None


def resolution(r: s.ResolutionOut) -> Resolution:
    with _from_manager("resolution"):
        return _resolution(r)


def _resolution(r: s.ResolutionOut) -> Resolution:
    return Resolution(
        NetworkId(r.network_id),
        NodeId(r.requester_id),
        ipaddress.IPv4Address(r.target_ip),
        NodeId(r.target_id),
        ipaddress.IPv6Address(r.substrate_address),
        r.mac,
        r.expires_at,
    )


def snapshot(snap: s.SnapshotOut) -> HostSnapshot:
    with _from_manager("snapshot"):
        return _snapshot(snap)


def _snapshot(snap: s.SnapshotOut) -> HostSnapshot:
    return HostSnapshot(
        revision=snap.revision,
        host=Host(
            HostId(snap.host.id),
            snap.host.name,
            HostPrefix.from_network(snap.host.prefix),
            snap.host.created_at,
        ),
        networks=tuple(network(n) for n in snap.networks),
        nodes=tuple(
            LocalNode(node(n.node), ipaddress.IPv6Address(n.substrate_address)) for n in snap.nodes
        ),
        residents=tuple(
            Resident(
                r.network_id,
                ipaddress.IPv4Address(r.ip),
                ipaddress.IPv6Address(r.substrate_address),
                r.mac,
            )
            for r in snap.residents
        ),
        grants=tuple(_resolution(g) for g in snap.grants),
    )
