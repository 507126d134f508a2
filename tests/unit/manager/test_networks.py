"""onm.manager.networks: a tenant's IPv4 CIDRs, a 24-bit network id, visibility by principal."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from onm.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from onm.manager import events, hosts, networks, nodes, tenants
from onm.manager.store import Tx
from onm.model import Encoding, Host, Network, Tenant
from support.manager_world import NOW, Actor, prefix_at

AsTenant = Callable[[Tenant], Actor]
AsHost = Callable[[Host], Actor]


@pytest.fixture
def a(admin: Actor) -> Tenant:
    return admin(lambda tx: tenants.create(tx, "a"))[0]


@pytest.fixture
def b(admin: Actor) -> Tenant:
    return admin(lambda tx: tenants.create(tx, "b"))[0]


def create(
    actor: Actor, tenant: str | None, name: str, *cidrs: str, encoding: str = "siit"
) -> Network:
    return actor(lambda tx: networks.create(tx, tenant, name, list(cidrs), encoding))


def test_create(admin: Actor, a: Tenant) -> None:
    network = create(admin, "a", "web", "10.0.0.0/24", "10.1.0.0/16")
    assert network.tenant_id == a.id
    assert network.name == "web"
    assert network.id.startswith("net-")
    assert network.cidrs == (
        ipaddress.IPv4Network("10.0.0.0/24"),
        ipaddress.IPv4Network("10.1.0.0/16"),
    )
    assert network.encoding is Encoding.SIIT
    assert network.created_at == NOW
    assert network.gateway == ipaddress.IPv4Address("10.0.0.1")
    assert admin.read(lambda tx: networks.get(tx, network.id)) == network


def test_encap_encoding(admin: Actor, a: Tenant) -> None:
    assert create(admin, "a", "n", "10.0.0.0/24", encoding="encap").encoding is Encoding.ENCAP


def test_unknown_encoding_names_the_field(admin: Actor, a: Tenant) -> None:
    with pytest.raises(InvalidInputError) as caught:
        create(admin, "a", "n", "10.0.0.0/24", encoding="gre")
    assert caught.value.field == "encoding"
    assert "siit" in caught.value.reason and "encap" in caught.value.reason


def test_vni_allocated_uniquely_and_increasing(admin: Actor, a: Tenant, b: Tenant) -> None:
    made = [create(admin, t, f"n{i}", "10.0.0.0/24") for i, t in enumerate("abab")]
    assert [n.vni for n in made] == [1, 2, 3, 4]


def test_deleted_networks_vni_is_not_reused(admin: Actor, a: Tenant) -> None:
    # Hosts may still cache substrate addresses of the deleted network: a new one must differ.
    first = create(admin, "a", "n0", "10.0.0.0/24")
    admin(lambda tx: networks.delete_network(tx, "n0"))
    assert create(admin, "a", "n1", "10.0.0.0/24").vni == first.vni + 1


def test_vni_fills_the_lowest_gap_once_the_top_is_used(
    admin: Actor, a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(networks, "MAX_VNI", 4)
    made = [create(admin, "a", f"n{i}", "10.0.0.0/24") for i in range(4)]
    assert [n.vni for n in made] == [1, 2, 3, 4]
    admin(lambda tx: networks.delete_network(tx, "n1"))
    assert create(admin, "a", "again", "10.0.0.0/24").vni == 2
    with pytest.raises(ConflictError) as caught:
        create(admin, "a", "full", "10.0.0.0/24")
    assert caught.value.field == "network"


def test_same_and_overlapping_cidrs_across_tenants(admin: Actor, a: Tenant, b: Tenant) -> None:
    na = create(admin, "a", "n", "10.0.0.0/24")
    nb = create(admin, "b", "n", "10.0.0.0/24")
    nb2 = create(admin, "b", "wide", "10.0.0.0/8")
    assert na.cidrs == nb.cidrs
    assert nb2.cidrs[0].overlaps(na.cidrs[0])
    assert len({na.vni, nb.vni, nb2.vni}) == 3


@pytest.mark.parametrize(
    "cidrs",
    [
        ["10.0.0.0/16", "10.0.1.0/24"],  # the second inside the first
        ["10.0.1.0/24", "10.0.0.0/16"],  # the first inside the second
        ["10.0.0.0/24", "10.0.0.0/24"],  # the same twice
    ],
)
def test_overlap_within_one_network_is_rejected(admin: Actor, a: Tenant, cidrs: list[str]) -> None:
    with pytest.raises(InvalidInputError) as caught:
        create(admin, "a", "n", *cidrs)
    assert caught.value.field == "cidrs"
    assert "overlaps" in caught.value.reason


@pytest.mark.parametrize(
    ("cidrs", "reason"),
    [
        ([], "at least one"),
        (["10.0.0.1/24"], "not an IPv4 CIDR"),  # host bits set
        (["10.0.0.0/33"], "not an IPv4 CIDR"),
        (["300.0.0.0/8"], "not an IPv4 CIDR"),
        (["fd00::/64"], "not an IPv4 CIDR"),
        (["ten"], "not an IPv4 CIDR"),
        (["10.0.0.0/31"], "too small"),
        (["10.0.0.0/32"], "too small"),
        ([f"10.{i}.0.0/16" for i in range(33)], "at most 32"),
    ],
)
def test_invalid_cidrs_name_the_field(
    admin: Actor, a: Tenant, cidrs: list[str], reason: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        create(admin, "a", "n", *cidrs)
    assert caught.value.field == "cidrs"
    assert reason in caught.value.reason


def test_slash_30_is_the_smallest_network(admin: Actor, a: Tenant) -> None:
    assert create(admin, "a", "n", "10.0.0.0/30").gateway == ipaddress.IPv4Address("10.0.0.1")


def test_invalid_name(admin: Actor, a: Tenant) -> None:
    with pytest.raises(InvalidInputError) as caught:
        create(admin, "a", "Web", "10.0.0.0/24")
    assert caught.value.field == "name"


def test_duplicate_name_within_a_tenant_is_a_conflict(admin: Actor, a: Tenant, b: Tenant) -> None:
    create(admin, "a", "n", "10.0.0.0/24")
    with pytest.raises(ConflictError) as caught:
        create(admin, "a", "n", "10.9.0.0/24")
    assert caught.value.field == "name"
    create(admin, "b", "n", "10.0.0.0/24")  # another tenant may use the name


def test_admin_must_say_which_tenant(admin: Actor, a: Tenant) -> None:
    with pytest.raises(InvalidInputError) as caught:
        create(admin, None, "n", "10.0.0.0/24")
    assert caught.value.field == "tenant"


def test_unknown_tenant(admin: Actor) -> None:
    with pytest.raises(NotFoundError):
        create(admin, "nobody", "n", "10.0.0.0/24")


def test_tenant_creates_in_its_own_tenant_only(
    admin: Actor, as_tenant: AsTenant, a: Tenant, b: Tenant
) -> None:
    network = create(as_tenant(a), None, "n", "10.0.0.0/24")
    assert network.tenant_id == a.id
    assert create(as_tenant(a), "a", "m", "10.0.0.0/24").tenant_id == a.id
    with pytest.raises(NotFoundError):
        create(as_tenant(a), "b", "n", "10.0.0.0/24")
    with pytest.raises(NotFoundError):
        create(as_tenant(a), b.id, "n", "10.0.0.0/24")


def test_get_by_id_name_and_tenant_slash_name(admin: Actor, a: Tenant, b: Tenant) -> None:
    na = create(admin, "a", "n", "10.0.0.0/24")
    nb = create(admin, "b", "n", "10.0.0.0/24")
    only = create(admin, "a", "only", "10.0.0.0/24")
    assert admin.read(lambda tx: networks.get(tx, na.id)) == na
    assert admin.read(lambda tx: networks.get(tx, "a/n")) == na
    assert admin.read(lambda tx: networks.get(tx, "b/n")) == nb
    assert admin.read(lambda tx: networks.get(tx, "only")) == only
    with pytest.raises(InvalidInputError) as caught:
        admin.read(lambda tx: networks.get(tx, "n"))
    assert caught.value.field == "network"
    assert "tenant/n" in caught.value.reason
    for missing in ("nothing", "a/nothing", "c/n", "net-000000000000"):
        with pytest.raises(NotFoundError):
            admin.read(lambda tx, ref=missing: networks.get(tx, ref))


def test_tenant_sees_only_its_networks(
    admin: Actor, as_tenant: AsTenant, a: Tenant, b: Tenant
) -> None:
    na = create(admin, "a", "n", "10.0.0.0/24")
    nb = create(admin, "b", "n", "10.0.0.0/24")
    as_a = as_tenant(a)
    assert as_a.read(lambda tx: networks.get(tx, "n")) == na  # unambiguous for a
    assert as_a.read(networks.list_all) == [na]
    for ref in (nb.id, "b/n"):
        with pytest.raises(NotFoundError):
            as_a.read(lambda tx, ref=ref: networks.get(tx, ref))
    with pytest.raises(NotFoundError):
        as_a.read(lambda tx: networks.list_all(tx, "b"))
    assert {n.id for n in admin.read(networks.list_all)} == {na.id, nb.id}
    assert admin.read(lambda tx: networks.list_all(tx, "b")) == [nb]


def test_host_sees_only_networks_it_has_nodes_in(admin: Actor, as_host: AsHost, a: Tenant) -> None:
    x, _ = admin(lambda tx: hosts.create(tx, "x", prefix_at(1)))
    admin(lambda tx: hosts.create(tx, "y", prefix_at(2)))
    used = create(admin, "a", "used", "10.0.0.0/24")
    create(admin, "a", "elsewhere", "10.0.0.0/24")
    admin(lambda tx: nodes.create(tx, "n1", "a/used", "x", "10.0.0.2"))
    admin(lambda tx: nodes.create(tx, "n2", "a/elsewhere", "y", "10.0.0.2"))
    assert as_host(x).read(lambda tx: networks.get(tx, "a/used")) == used
    with pytest.raises(NotFoundError):
        as_host(x).read(lambda tx: networks.get(tx, "a/elsewhere"))
    with pytest.raises(ForbiddenError):
        as_host(x).read(networks.list_all)


def test_hosts_may_not_create_or_delete(admin: Actor, as_host: AsHost, a: Tenant) -> None:
    x, _ = admin(lambda tx: hosts.create(tx, "x", prefix_at(1)))
    with pytest.raises(ForbiddenError):
        create(as_host(x), "a", "n", "10.0.0.0/24")
    create(admin, "a", "n", "10.0.0.0/24")
    with pytest.raises(ForbiddenError):
        as_host(x)(lambda tx: networks.delete_network(tx, "a/n"))


def test_delete_refuses_while_nodes_exist(admin: Actor, a: Tenant) -> None:
    admin(lambda tx: hosts.create(tx, "x", prefix_at(1)))
    create(admin, "a", "n", "10.0.0.0/24")
    admin(lambda tx: nodes.create(tx, "n1", "n", "x", "10.0.0.2"))
    with pytest.raises(ConflictError) as caught:
        admin(lambda tx: networks.delete_network(tx, "n"))
    assert caught.value.field == "network"
    admin(lambda tx: nodes.delete_node(tx, "n1", "n"))
    admin(lambda tx: networks.delete_network(tx, "n"))
    assert admin.read(networks.list_all) == []


def test_tenant_deletes_its_own_not_others(
    admin: Actor, as_tenant: AsTenant, a: Tenant, b: Tenant
) -> None:
    create(admin, "b", "n", "10.0.0.0/24")
    with pytest.raises(NotFoundError):
        as_tenant(a)(lambda tx: networks.delete_network(tx, "b/n"))
    create(admin, "a", "n", "10.0.0.0/24")
    deleted = as_tenant(a)(lambda tx: networks.delete_network(tx, "n"))
    assert deleted.tenant_id == a.id
    assert [n.tenant_id for n in admin.read(networks.list_all)] == [b.id]


def test_hosts_of(admin: Actor, a: Tenant) -> None:
    x, _ = admin(lambda tx: hosts.create(tx, "x", prefix_at(1)))
    y, _ = admin(lambda tx: hosts.create(tx, "y", prefix_at(2)))
    admin(lambda tx: hosts.create(tx, "z", prefix_at(3)))
    n = create(admin, "a", "n", "10.0.0.0/24")
    assert admin.read(lambda tx: networks.hosts_of(tx, n.id)) == set()

    def place(tx: Tx) -> None:
        for i, host in enumerate(("x", "y", "x")):
            nodes.create(tx, f"n{i}", "n", host, f"10.0.0.{i + 2}")

    admin(place)
    assert admin.read(lambda tx: networks.hosts_of(tx, n.id)) == {x.id, y.id}


def test_changes_are_events_of_the_tenant(admin: Actor, a: Tenant) -> None:
    network = create(admin, "a", "n", "10.0.0.0/24", encoding="encap")
    admin(lambda tx: networks.delete_network(tx, "n"))
    created, deleted = admin.read(events.latest)[-2:]
    assert (created.kind, created.object_id, created.tenant_id) == (
        "network.created",
        network.id,
        a.id,
    )
    assert created.data == {
        "name": "n",
        "vni": network.vni,
        "cidrs": ["10.0.0.0/24"],
        "encoding": "encap",
        "auto_pools": "propose",
    }
    assert (deleted.kind, deleted.object_id, deleted.tenant_id) == (
        "network.deleted",
        network.id,
        a.id,
    )


# --- the CIDR rule over HTTP (issue #7, defect 4) -------------------------------------------

ISSUE_CIDRS = [
    ("0.0.0.0/0", '"this network"'),
    ("0.0.0.0/8", '"this network"'),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"),
    ("224.0.0.0/24", "multicast"),
    ("239.1.0.0/16", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.0/24", "reserved"),
    ("255.255.255.255/32", "limited broadcast"),
]


@pytest.mark.parametrize(("cidr", "why"), ISSUE_CIDRS)
def test_nonsense_cidrs_are_422_naming_the_field_and_why(
    client: TestClient, cidr: str, why: str
) -> None:
    """Each of these was answered 201 with a gateway such as 224.0.0.1 before the rule."""
    assert client.post("/v1/tenants", json={"name": "t"}).status_code == 201
    body = {"tenant": "t", "name": "n", "cidrs": ["10.0.0.0/24", cidr]}
    response = client.post("/v1/networks", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "cidrs" and error["code"] == "invalid_input"
    assert why in error["message"] and cidr in error["message"]
    assert client.get("/v1/networks").json() == []


@pytest.mark.parametrize("cidr", ["100.64.0.0/10", "198.18.0.0/15", "192.0.2.0/24", "8.8.8.0/24"])
def test_shared_benchmarking_documentation_and_public_cidrs_are_fine(
    client: TestClient, cidr: str
) -> None:
    assert client.post("/v1/tenants", json={"name": "t"}).status_code == 201
    response = client.post("/v1/networks", json={"tenant": "t", "name": "n", "cidrs": [cidr]})
    assert response.status_code == 201, response.text


def test_a_slash_30_holds_exactly_one_node(admin: Actor, a: Tenant) -> None:
    net = create(admin, "a", "p2p", "10.9.0.0/30")
    host = admin(lambda tx: hosts.create(tx, "h", prefix_at(1)))[0]
    for ip in ("10.9.0.0", "10.9.0.1", "10.9.0.3"):  # network, gateway, broadcast
        with pytest.raises(InvalidInputError) as caught:
            admin(lambda tx, ip=ip: nodes.create(tx, f"n{ip[-1]}", net.id, host.id, ip))
        assert caught.value.field == "ip"
    made = admin(lambda tx: nodes.create(tx, "only", net.id, host.id, "10.9.0.2"))
    assert str(made.ip) == "10.9.0.2"
