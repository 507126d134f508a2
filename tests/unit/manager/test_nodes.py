"""onm.manager.nodes: one virtual IP in one network on one host; MAC and interface allocated."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest

from onm.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from onm.manager import compiler, events, hosts, networks, nodes, tenants
from onm.manager.store import Tx
from onm.model import Host, Node, Tenant
from support.manager_world import NOW, Actor, prefix_at

AsTenant = Callable[[Tenant], Actor]
AsHost = Callable[[Host], Actor]


@pytest.fixture
def setup(admin: Actor) -> None:
    """Tenants a and b; a/n on 10.0.0.0/24 + 10.1.0.0/24, b/n on 10.0.0.0/24; hosts x and y."""

    def work(tx: Tx) -> None:
        tenants.create(tx, "a")
        tenants.create(tx, "b")
        networks.create(tx, "a", "n", ["10.0.0.0/24", "10.1.0.0/24"])
        networks.create(tx, "b", "n", ["10.0.0.0/24"])
        hosts.create(tx, "x", prefix_at(1))
        hosts.create(tx, "y", prefix_at(2))

    admin(work)


def make(
    actor: Actor,
    name: str,
    ip: str,
    network: str = "a/n",
    host: str = "x",
    interface: str | None = None,
) -> Node:
    return actor(lambda tx: nodes.create(tx, name, network, host, ip, interface))


def mac_value(mac: str) -> int:
    return int(mac.replace(":", ""), 16)


@pytest.mark.usefixtures("setup")
def test_create(admin: Actor) -> None:
    node = make(admin, "web", "10.0.0.10")
    net = admin.read(lambda tx: networks.get(tx, "a/n"))
    host = admin.read(lambda tx: hosts.get(tx, "x"))
    assert (node.name, node.network_id, node.host_id) == ("web", net.id, host.id)
    assert node.ip == ipaddress.IPv4Address("10.0.0.10")
    assert node.id.startswith("nod-")
    assert node.slot == nodes.ORDINARY_SLOT == 0
    assert node.created_at == NOW
    assert node.interface.startswith("onm")
    assert len(node.interface) <= 15
    assert admin.read(lambda tx: nodes.get(tx, node.id)) == node


@pytest.mark.usefixtures("setup")
def test_mac_is_unique_locally_administered_unicast_and_never_reused(admin: Actor) -> None:
    made = [make(admin, f"n{i}", f"10.0.0.{10 + i}", host="xy"[i % 2]) for i in range(6)]
    admin(lambda tx: nodes.delete_node(tx, "a/n/n5"))
    made.append(make(admin, "again", "10.0.0.15"))
    macs = [n.mac for n in made]
    assert len(set(macs)) == len(macs)
    for mac in macs:
        first = int(mac.split(":")[0], 16)
        assert first & 0x02, f"{mac} is not locally administered"
        assert not first & 0x01, f"{mac} is a group address"
        assert len(mac) == 17
    assert made[-1].mac != made[-2].mac  # the deleted node's MAC is not handed out again
    assert [mac_value(m) for m in macs] == sorted(mac_value(m) for m in macs)


@pytest.mark.usefixtures("setup")
def test_a_host_holds_far_more_than_63_nodes(admin: Actor) -> None:
    """Issue #7 defect 8: the 64th node on a host was refused ("no free slot")."""

    def fill(tx: Tx) -> list[Node]:
        made = [nodes.create(tx, f"n{i}", "a/n", "x", f"10.0.0.{10 + i}") for i in range(100)]
        made += [nodes.create(tx, f"m{i}", "b/n", "x", f"10.0.0.{10 + i}") for i in range(100)]
        return made

    made = admin(fill)
    assert len(admin.read(lambda tx: nodes.list_all(tx, host_ref="x"))) == 200
    assert {n.slot for n in made} == {nodes.ORDINARY_SLOT}
    for field in ("mac", "interface"):
        assert len({getattr(n, field) for n in made}) == 200, field
    host = admin.read(lambda tx: hosts.get(tx, "x"))
    net_a = admin.read(lambda tx: networks.get(tx, "a/n"))
    net_b = admin.read(lambda tx: networks.get(tx, "b/n"))
    addresses = {
        compiler.substrate_address(host.prefix, net_a if i < 100 else net_b, n)
        for i, n in enumerate(made)
    }
    assert len(addresses) == 200  # (network id, IPv4) tells them apart inside the /64
    assert all(a in host.prefix.network for a in addresses)


@pytest.mark.usefixtures("setup")
def test_same_ip_in_other_networks_is_fine(admin: Actor) -> None:
    a = make(admin, "a", "10.0.0.10", network="a/n", host="x")
    b = make(admin, "b", "10.0.0.10", network="b/n", host="x")  # same IP, same host
    assert a.ip == b.ip
    assert a.network_id != b.network_id
    host = admin.read(lambda tx: hosts.get(tx, "x"))
    net_a = admin.read(lambda tx: networks.get(tx, "a/n"))
    net_b = admin.read(lambda tx: networks.get(tx, "b/n"))
    address_a = compiler.substrate_address(host.prefix, net_a, a)
    address_b = compiler.substrate_address(host.prefix, net_b, b)
    assert address_a != address_b


@pytest.mark.usefixtures("setup")
def test_one_ip_belongs_to_one_node_per_network(admin: Actor) -> None:
    make(admin, "first", "10.0.0.10", host="x")
    with pytest.raises(ConflictError) as caught:
        make(admin, "second", "10.0.0.10", host="y")
    assert caught.value.field == "ip"
    assert "'first'" in caught.value.reason


@pytest.mark.usefixtures("setup")
def test_one_name_per_network(admin: Actor) -> None:
    make(admin, "web", "10.0.0.10")
    with pytest.raises(ConflictError) as caught:
        make(admin, "web", "10.0.0.11", host="y")
    assert caught.value.field == "name"
    make(admin, "web", "10.0.0.10", network="b/n")  # the name is free in another network


@pytest.mark.usefixtures("setup")
@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("10.2.0.5", "not inside"),
        ("192.168.0.1", "not inside"),
        ("10.0.0.0", "network or broadcast"),
        ("10.0.0.255", "network or broadcast"),
        ("10.1.0.0", "network or broadcast"),  # ... of the second CIDR too
        ("10.1.0.255", "network or broadcast"),
        ("10.0.0.1", "gateway"),
        ("10.0.0.256", "not an IPv4 address"),
        ("10.0.0", "not an IPv4 address"),
        ("fd00::1", "not an IPv4 address"),
        ("", "not an IPv4 address"),
    ],
)
def test_unusable_ip_names_the_field(admin: Actor, ip: str, reason: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        make(admin, "n", ip)
    assert caught.value.field == "ip"
    assert reason in caught.value.reason


@pytest.mark.usefixtures("setup")
def test_every_cidr_keeps_its_gateway(admin: Actor) -> None:
    # Each CIDR's first address is the router nodes of that CIDR use: never a node's.
    with pytest.raises(InvalidInputError) as caught:
        make(admin, "n", "10.1.0.1")
    assert caught.value.field == "ip"
    assert make(admin, "m", "10.1.0.254").ip == ipaddress.IPv4Address("10.1.0.254")


@pytest.mark.usefixtures("setup")
def test_interface_given(admin: Actor) -> None:
    assert make(admin, "n", "10.0.0.10", interface="veth-web.0").interface == "veth-web.0"


@pytest.mark.usefixtures("setup")
@pytest.mark.parametrize("interface", ["", "a" * 16, "has space", "a/b", ".", "..", "tap:0"])
def test_bad_interface_names_the_field(admin: Actor, interface: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        make(admin, "n", "10.0.0.10", interface=interface)
    assert caught.value.field == "interface"


@pytest.mark.usefixtures("setup")
def test_interface_unique_per_host(admin: Actor) -> None:
    make(admin, "n", "10.0.0.10", host="x", interface="tap0")
    with pytest.raises(ConflictError) as caught:
        make(admin, "m", "10.0.0.11", host="x", interface="tap0")
    assert caught.value.field == "interface"
    make(admin, "m", "10.0.0.11", host="y", interface="tap0")


@pytest.mark.usefixtures("setup")
def test_invalid_name(admin: Actor) -> None:
    with pytest.raises(InvalidInputError) as caught:
        make(admin, "Web", "10.0.0.10")
    assert caught.value.field == "name"


@pytest.mark.usefixtures("setup")
def test_unknown_network_or_host(admin: Actor) -> None:
    with pytest.raises(NotFoundError):
        make(admin, "n", "10.0.0.10", network="a/none")
    with pytest.raises(NotFoundError):
        make(admin, "n", "10.0.0.10", host="none")


@pytest.mark.usefixtures("setup")
def test_tenant_places_nodes_in_its_own_networks_only(admin: Actor, as_tenant: AsTenant) -> None:
    a = admin.read(lambda tx: tenants.get(tx, "a"))
    node = make(as_tenant(a), "n", "10.0.0.10", network="n", host="y")
    assert node.network_id == admin.read(lambda tx: networks.get(tx, "a/n")).id
    with pytest.raises(NotFoundError):
        make(as_tenant(a), "m", "10.0.0.10", network="b/n")


@pytest.mark.usefixtures("setup")
def test_hosts_may_not_create_or_delete(admin: Actor, as_host: AsHost) -> None:
    x = admin.read(lambda tx: hosts.get(tx, "x"))
    with pytest.raises(ForbiddenError):
        make(as_host(x), "n", "10.0.0.10")
    make(admin, "n", "10.0.0.10")
    with pytest.raises(ForbiddenError):
        as_host(x)(lambda tx: nodes.delete_node(tx, "a/n/n"))


@pytest.mark.usefixtures("setup")
def test_get_by_id_by_name_in_network_and_by_path(admin: Actor) -> None:
    a = make(admin, "web", "10.0.0.10", network="a/n")
    b = make(admin, "web", "10.0.0.10", network="b/n")
    only = make(admin, "db", "10.0.0.11", network="a/n")
    assert admin.read(lambda tx: nodes.get(tx, a.id)) == a
    assert admin.read(lambda tx: nodes.get(tx, "web", "a/n")) == a
    assert admin.read(lambda tx: nodes.get(tx, "b/n/web")) == b
    assert admin.read(lambda tx: nodes.get(tx, "db")) == only
    with pytest.raises(InvalidInputError) as caught:
        admin.read(lambda tx: nodes.get(tx, "web"))
    assert caught.value.field == "node"
    with pytest.raises(NotFoundError):
        admin.read(lambda tx: nodes.get(tx, "db", "b/n"))


@pytest.mark.usefixtures("setup")
def test_list_filters_and_visibility(admin: Actor, as_tenant: AsTenant, as_host: AsHost) -> None:
    ax = make(admin, "ax", "10.0.0.10", network="a/n", host="x")
    ay = make(admin, "ay", "10.0.0.11", network="a/n", host="y")
    bx = make(admin, "bx", "10.0.0.10", network="b/n", host="x")
    a = admin.read(lambda tx: tenants.get(tx, "a"))
    x = admin.read(lambda tx: hosts.get(tx, "x"))
    assert admin.read(nodes.list_all) == [ax, ay, bx]
    assert admin.read(lambda tx: nodes.list_all(tx, "a/n")) == [ax, ay]
    assert admin.read(lambda tx: nodes.list_all(tx, None, "x")) == [ax, bx]
    assert admin.read(lambda tx: nodes.list_all(tx, "b/n", "y")) == []
    assert as_tenant(a).read(nodes.list_all) == [ax, ay]
    assert as_tenant(a).read(lambda tx: nodes.list_all(tx, None, "x")) == [ax]
    with pytest.raises(NotFoundError):
        as_tenant(a).read(lambda tx: nodes.get(tx, bx.id))
    assert as_host(x).read(nodes.list_all) == [ax, bx]
    assert as_host(x).read(lambda tx: nodes.list_all(tx, "a/n")) == [ax]
    with pytest.raises(NotFoundError):
        as_host(x).read(lambda tx: nodes.get(tx, ay.id))
    with pytest.raises(NotFoundError):
        as_host(x).read(lambda tx: nodes.list_all(tx, None, "y"))


@pytest.mark.usefixtures("setup")
def test_delete(admin: Actor, as_tenant: AsTenant) -> None:
    node = make(admin, "web", "10.0.0.10", network="a/n")
    other = make(admin, "web", "10.0.0.10", network="b/n")
    a = admin.read(lambda tx: tenants.get(tx, "a"))
    with pytest.raises(NotFoundError):
        as_tenant(a)(lambda tx: nodes.delete_node(tx, other.id))
    assert as_tenant(a)(lambda tx: nodes.delete_node(tx, "web", "n")) == node
    assert admin.read(nodes.list_all) == [other]
    with pytest.raises(NotFoundError):
        admin(lambda tx: nodes.delete_node(tx, node.id))


@pytest.mark.usefixtures("setup")
def test_changes_are_events_of_the_network_tenant(admin: Actor) -> None:
    node = make(admin, "web", "10.0.0.10", network="b/n", host="y")
    admin(lambda tx: nodes.delete_node(tx, node.id))
    b = admin.read(lambda tx: tenants.get(tx, "b"))
    created, deleted = admin.read(events.latest)[-2:]
    assert (created.kind, created.object_id, created.tenant_id) == ("node.created", node.id, b.id)
    assert created.data == {"name": "web", "network": "n", "host": "y", "ip": "10.0.0.10"}
    assert (deleted.kind, deleted.object_id, deleted.tenant_id) == ("node.deleted", node.id, b.id)
    assert deleted.data == {"name": "web", "network": "n", "ip": "10.0.0.10"}


@pytest.mark.usefixtures("setup")
def test_a_name_cannot_pose_as_another_objects_id(admin: Actor, as_tenant: AsTenant) -> None:
    """Ids and names share one lookup: a tenant naming its node after another tenant's node id
    would make that id ambiguous for admins and hosts (regression)."""
    theirs = make(admin, "theirs", "10.0.0.10", network="b/n", host="y")
    a = admin.read(lambda tx: tenants.get(tx, "a"))
    with pytest.raises(InvalidInputError) as caught:
        make(as_tenant(a), theirs.id, "10.0.0.10", network="n", host="y")
    assert caught.value.field == "name"
    assert admin.read(lambda tx: nodes.get(tx, theirs.id)) == theirs
