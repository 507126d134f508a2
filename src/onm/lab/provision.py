"""Load a topology into the lab's manager through the client: tenants, networks, external
networks, hosts, nodes, pools, edge pools with their gateways, and routes, in that order (each
after what it refers to).

Idempotent: every object is looked up by name first and reused when it is there and agrees with
the file; one that disagrees is an error (the lab's manager holds only what its file says).
Settings are different: a network's `auto_pools` and the settings an edge pool's entry gives
follow the file (someone may have tuned them since), and what the file leaves out is left as the
manager has it. Pool members and gateways the file lists are added when missing. Each
host's agent token is written to `hosts/HOST.token` (and each tenant's to `tenants/T.token`),
mode 0600, right after the manager hands it out: it is shown only once. A host found without
its token file (a crash in between) is deleted and made again, which is possible because hosts
are made before any node is placed on them.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from pathlib import Path

from onm.api.client import Client
from onm.api.schemas import EdgePoolDetail, ExternalOut, HostOut, HostView, NetworkOut, NodeOut
from onm.errors import ConflictError, ForbiddenError
from onm.lab.plan import Allocations, AnycastAllocation, NodeAllocation
from onm.lab.topology import EdgePoolSpec, HostSpec, NetworkSpec, NodeSpec, Topology

Say = Callable[[str], None]


def write_secret(path: Path, secret: str) -> None:
    """Write `secret` to a file only its owner can read (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    os.chmod(path, 0o600)


def host_token_file(state_dir: Path, host: str) -> Path:
    return state_dir / "hosts" / f"{host}.token"


def provision(client: Client, topology: Topology, state_dir: Path, say: Say) -> Allocations:
    """Make the manager hold the topology; what it allocated for the lab's hosts and nodes."""
    tenants = {t.name: t for t in client.list_tenants()}
    for spec in topology.tenants:
        if spec.name not in tenants:
            created = client.create_tenant(spec.name)
            write_secret(state_dir / "tenants" / f"{spec.name}.token", created.token)
            tenants[spec.name] = created.tenant
            say(f"tenant {spec.name}")

    existing_networks = {(n.tenant_id, n.name): n for n in client.list_networks()}
    networks: dict[str, NetworkOut] = {}
    for net in topology.networks:
        tenant_id = tenants[net.tenant].id
        found = existing_networks.get((tenant_id, net.name))
        if found is None:
            cidrs = [str(c) for c in net.cidrs]
            found = client.create_network(
                net.name, cidrs, tenant_id, net.encoding.value, net.auto_pools.value
            )
            say(f"network {net.name} ({', '.join(cidrs)}, {net.encoding.value})")
        _check_network(net, found)
        if found.auto_pools != net.auto_pools.value:  # a setting: follow the file
            found = client.update_network(found.id, net.auto_pools.value)
        networks[net.name] = found

    externals = _externals(client, topology, say)
    hosts = _hosts(client, topology, externals, state_dir, say)

    existing_nodes = {(n.network_id, n.name): n for n in client.list_nodes()}
    nodes: dict[str, NodeAllocation] = {}
    for node in topology.nodes:
        network, host = networks[node.network], hosts[node.host]
        made = existing_nodes.get((network.id, node.name))
        if made is None:
            made = client.create_node(node.name, network.id, host.id, str(node.ip))
            say(f"node {node.name} ({node.ip} in {node.network} on {node.host})")
        _check_node(node, made, host)
        nodes[node.name] = NodeAllocation(made.mac, made.interface, _gateway(network, node))

    existing_pools = {(p.network_id, p.name): p for p in client.list_pools()}
    for pool in topology.pools:
        network = networks[pool.network]
        held_pool = existing_pools.get((network.id, pool.name))
        if held_pool is None:
            settings = dict(pool.settings)
            held_pool = client.create_pool(pool.name, network.id, str(pool.ip), settings)
            say(f"pool {pool.name} ({pool.ip} in {pool.network}, {held_pool.policy})")
        if held_pool.ip != str(pool.ip):
            raise ConflictError(
                "pools", f"pool {pool.name} is on {held_pool.ip} in the manager, not {pool.ip}"
            )
        held = {m.node for m in held_pool.members}
        for member in pool.members:
            if member not in held:
                client.add_member(held_pool.id, member)
                say(f"pool {pool.name}: member {member}")

    edge_pools = _edge_pools(client, topology, networks, hosts, say)
    _routes(client, topology, networks, edge_pools, say)

    prefixes = {name: ipaddress.IPv6Network(h.prefix) for name, h in hosts.items()}
    return Allocations(prefixes, nodes, _anycast(topology, edge_pools))


def _full(host: HostView) -> HostOut:
    """The lab provisions with its admin token, which sees every host's /64."""
    if not isinstance(host, HostOut):
        raise ForbiddenError("the lab's token does not see the hosts' /64s: it needs the admin's")
    return host


def _externals(client: Client, topology: Topology, say: Say) -> dict[str, ExternalOut]:
    existing = {x.name: x for x in client.list_externals()} if topology.externals else {}
    found: dict[str, ExternalOut] = {}
    for spec in topology.externals:
        held = existing.get(spec.name)
        if held is None:
            held = client.create_external(spec.name, str(spec.cidr))
            say(f"external network {spec.name} ({spec.cidr})")
        if ipaddress.IPv4Network(held.cidr) != spec.cidr:
            raise ConflictError(
                "external",
                f"external network {spec.name} is {held.cidr} in the lab's manager, "
                f"the file says {spec.cidr}",
            )
        found[spec.name] = held
    return found


def _hosts(
    client: Client,
    topology: Topology,
    externals: dict[str, ExternalOut],
    state_dir: Path,
    say: Say,
) -> dict[str, HostOut]:
    existing = {h.name: _full(h) for h in client.list_hosts()}
    hosts: dict[str, HostOut] = {}
    for spec in topology.hosts:
        token_file = host_token_file(state_dir, spec.name)
        found = existing.get(spec.name)
        if found is not None and not token_file.exists():
            if client.list_nodes(host=found.id):
                raise ConflictError(
                    "host",
                    f"host {spec.name} exists in the lab's manager but its token file "
                    f"{token_file} is gone: `onm lab down`, then `onm lab up` again",
                )
            client.delete_host(found.id)
            found = None
        if found is None:
            created = client.create_host(
                spec.name, prefix=str(spec.prefix), role=spec.role.value, external=spec.external
            )
            write_secret(token_file, created.token)
            found = created.host
            edge = f", edge on {spec.external}" if spec.external is not None else ""
            say(f"host {spec.name} ({found.prefix}{edge})")
        if ipaddress.IPv6Network(found.prefix) != spec.prefix.network:
            raise ConflictError(
                "host",
                f"host {spec.name} has /64 {found.prefix} in the lab's manager, "
                f"the file says {spec.prefix}",
            )
        _check_role(spec, found, externals)
        hosts[spec.name] = found
    return hosts


def _check_role(spec: HostSpec, found: HostOut, externals: dict[str, ExternalOut]) -> None:
    external = None if spec.external is None else externals[spec.external].id
    if found.role != spec.role.value or found.external_id != external:
        held = found.role + (f" on external {found.external_id}" if found.external_id else "")
        wanted = spec.role.value + (f" on {spec.external} ({external})" if external else "")
        raise ConflictError(
            "host",
            f"host {spec.name} is in role {held} in the lab's manager, the file says {wanted}",
        )


def _edge_pools(
    client: Client,
    topology: Topology,
    networks: dict[str, NetworkOut],
    hosts: dict[str, HostOut],
    say: Say,
) -> dict[tuple[str, str], EdgePoolDetail]:
    """The file's edge pools by (network, name), each with the file's settings and gateways."""
    existing = (
        {(p.network_id, p.name): p for p in client.list_edge_pools()} if topology.edge_pools else {}
    )
    found: dict[tuple[str, str], EdgePoolDetail] = {}
    for spec in topology.edge_pools:
        network = networks[spec.network]
        held = existing.get((network.id, spec.name))
        if held is None:
            held = client.create_edge_pool(spec.name, network.id, spec.settings())
            say(f"edge pool {spec.name} (in {spec.network}, nat {held.nat})")
        elif _differs(spec, held):  # a setting: follow the file
            held = client.update_edge_pool(held.id, spec.settings())
            say(f"edge pool {spec.name}: settings as the file says")
        gateways = {g.name: g for g in held.gateways}
        for gateway in spec.gateways:
            host = hosts[gateway.host]
            have = gateways.get(gateway.name)
            if have is None:
                held = client.add_gateway(held.id, gateway.name, host.id, str(gateway.external_ip))
                say(
                    f"edge pool {spec.name}: gateway {gateway.name} on {gateway.host} "
                    f"({gateway.external_ip})"
                )
            elif have.host_id != host.id or have.external_ip != str(gateway.external_ip):
                raise ConflictError(
                    "gateway",
                    f"gateway {gateway.name} of edge pool {spec.name} is {have.external_ip} on "
                    f"host {have.host_id} in the lab's manager, the file says "
                    f"{gateway.external_ip} on {gateway.host} ({host.id})",
                )
        found[spec.network, spec.name] = held
    return found


def _anycast(
    topology: Topology, edge_pools: dict[tuple[str, str], EdgePoolDetail]
) -> tuple[AnycastAllocation, ...]:
    """The /64 of each edge pool in anycast mode and the hosts of its gateways (the admin's
    view of a pool shows its anycast /64)."""
    order = [h.name for h in topology.hosts]
    found = []
    for spec in topology.edge_pools:
        held = edge_pools[spec.network, spec.name]
        if held.anycast is not None:
            on = {g.host for g in spec.gateways}
            hosts = tuple(h for h in order if h in on)
            found.append(AnycastAllocation(ipaddress.IPv6Network(held.anycast), hosts))
    return tuple(found)


def _differs(spec: EdgePoolSpec, held: EdgePoolDetail) -> bool:
    """Does the manager hold another value for a setting the file gives?"""
    have = {
        "nat": held.nat,
        "hash": held.hash_fields,
        "choice": held.choice,
        "mode": held.mode,
        "split_above": held.split_above,
        "probe_interval": held.probe_interval,
    }
    return any(have[key] != value for key, value in spec.settings().items())


def _routes(
    client: Client,
    topology: Topology,
    networks: dict[str, NetworkOut],
    edge_pools: dict[tuple[str, str], EdgePoolDetail],
    say: Say,
) -> None:
    held: dict[str, dict[ipaddress.IPv4Network, str]] = {}
    for spec in topology.routes:
        network = networks[spec.network]
        if spec.network not in held:
            held[spec.network] = {
                ipaddress.IPv4Network(r.prefix): r.edge_pool_id
                for r in client.list_routes(network.id)
            }
        pool = edge_pools[spec.network, spec.edge_pool]
        through = held[spec.network].get(spec.prefix)
        if through is None:
            client.add_route(network.id, str(spec.prefix), pool.id)
            held[spec.network][spec.prefix] = pool.id
            say(f"route {spec.prefix} of {spec.network} through edge pool {spec.edge_pool}")
        elif through != pool.id:
            raise ConflictError(
                "route",
                f"route {spec.prefix} of network {spec.network} goes through edge pool "
                f"{through} in the lab's manager, the file says {spec.edge_pool} ({pool.id})",
            )


def _check_network(spec: NetworkSpec, found: NetworkOut) -> None:
    cidrs = [str(c) for c in spec.cidrs]
    if found.cidrs != cidrs or found.encoding != spec.encoding.value:
        raise ConflictError(
            "network",
            f"network {spec.name} is {', '.join(found.cidrs)} ({found.encoding}) in the lab's "
            f"manager, the file says {', '.join(cidrs)} ({spec.encoding.value})",
        )


def _check_node(spec: NodeSpec, found: NodeOut, host: HostOut) -> None:
    if found.ip != str(spec.ip) or found.host_id != host.id:
        raise ConflictError(
            "node",
            f"node {spec.name} is {found.ip} on host {found.host_id} in the lab's manager, "
            f"the file says {spec.ip} on {spec.host} ({host.id})",
        )


def _gateway(network: NetworkOut, node: NodeSpec) -> ipaddress.IPv4Address:
    """The manager's gateway for the CIDR that holds the node's address."""
    for cidr, gateway in zip(network.cidrs, network.gateways, strict=True):
        if node.ip in ipaddress.IPv4Network(cidr):
            return ipaddress.IPv4Address(gateway)
    raise ConflictError("node", f"{node.ip} is in none of network {network.name}'s CIDRs")
