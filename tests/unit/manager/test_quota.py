"""onm.manager.quota and tenants.set_quotas/usage: per-tenant limits over the manager's defaults.

A tenant's own limit replaces the default for that tenant only; null puts it back; a limit may
be lowered below the use (objects stay, new ones are refused); only admins set limits, a tenant
reads its own; every change is an event; the metrics export the limit that applies.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from onm.errors import ForbiddenError, InvalidInputError, NotFoundError, QuotaExceededError
from onm.manager import events, networks, nodes, tenants
from onm.manager.api.app import Context
from onm.manager.quota import Quotas
from onm.model import Host, Tenant
from onm.model.tenant import MAX_QUOTA, QuotaKind, QuotaUse
from support.manager_world import Actor, World, bearer

AsTenant = Callable[[Tenant], Actor]
AsHost = Callable[[Host], Actor]
DEFAULTS = Quotas(networks=10, nodes=20)


def uses(admin: Actor, ref: str) -> dict[str, tuple[int, bool, int]]:
    found = admin.read(lambda tx: tenants.usage(tx, ref, DEFAULTS))
    return {use.kind.value: (use.limit, use.own, use.used) for use in found.quotas}


def node_in(network: str, i: int) -> Callable[..., object]:
    return lambda tx: nodes.create(tx, f"q{i}", network, "x", f"10.0.0.{100 + i}", None, DEFAULTS)


# --- service level ------------------------------------------------------------------------------


def test_usage_shows_defaults_and_what_the_tenant_holds(admin: Actor, world: World) -> None:
    # tenant a: networks na and empty, nodes a1 and a2
    assert uses(admin, "a") == {"networks": (10, False, 2), "nodes": (20, False, 2)}
    assert uses(admin, "spare") == {"networks": (10, False, 0), "nodes": (20, False, 0)}


def test_admin_sets_own_limits_and_null_goes_back_to_the_default(
    admin: Actor, world: World
) -> None:
    set_ = admin(lambda tx: tenants.set_quotas(tx, "a", {"networks": 5, "nodes": 50}, DEFAULTS))
    assert [(u.kind, u.limit, u.own, u.used) for u in set_.quotas] == [
        (QuotaKind.NETWORKS, 5, True, 2),
        (QuotaKind.NODES, 50, True, 2),
    ]
    assert set_.tenant.quotas.networks == 5 and set_.tenant.quotas.nodes == 50
    assert admin.read(lambda tx: tenants.get(tx, "a")).quotas == set_.tenant.quotas
    # Naming one quota leaves the other alone; None is the default again.
    admin(lambda tx: tenants.set_quotas(tx, "a", {"nodes": None}, DEFAULTS))
    assert uses(admin, "a") == {"networks": (5, True, 2), "nodes": (20, False, 2)}
    assert uses(admin, "b") == {"networks": (10, False, 1), "nodes": (20, False, 1)}


def test_a_change_is_an_event_and_setting_what_is_set_records_none(
    admin: Actor, world: World, as_tenant: AsTenant
) -> None:
    before = admin.read(lambda tx: events.latest(tx, 1))[-1].seq
    admin(lambda tx: tenants.set_quotas(tx, "a", {"nodes": 5}, DEFAULTS))
    admin(lambda tx: tenants.set_quotas(tx, "a", {"nodes": 5, "networks": None}, DEFAULTS))
    admin(lambda tx: tenants.set_quotas(tx, "a", {"nodes": None}, DEFAULTS))
    found = admin.read(lambda tx: events.list_since(tx, before))
    assert [(e.kind, e.object_id, e.data["quotas"]) for e in found] == [
        ("tenant.quota_changed", world.a.id, {"nodes": {"from": None, "to": 5}}),
        ("tenant.quota_changed", world.a.id, {"nodes": {"from": 5, "to": None}}),
    ]
    assert {e.data["name"] for e in found} == {"a"}
    # The tenant sees the events about itself; another tenant does not.
    assert [e.kind for e in as_tenant(world.a).read(lambda tx: events.list_since(tx, before))] == [
        "tenant.quota_changed",
        "tenant.quota_changed",
    ]
    assert as_tenant(world.b).read(lambda tx: events.list_since(tx, before)) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"nodes": -1}, "quotas.nodes"),
        ({"networks": MAX_QUOTA + 1}, "quotas.networks"),
        ({"nodes": True}, "quotas.nodes"),
        ({"nodes": 2.0}, "quotas.nodes"),
        ({"nodes": "5"}, "quotas.nodes"),
        ({"pools": 3}, "quotas.pools"),
    ],
)
def test_bad_limits_name_the_field_and_change_nothing(
    admin: Actor, world: World, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        admin(lambda tx: tenants.set_quotas(tx, "a", changes, DEFAULTS))  # type: ignore[arg-type]
    assert caught.value.field == field
    assert uses(admin, "a")["nodes"] == (20, False, 2)


def test_the_bounds_themselves_are_limits(admin: Actor, world: World) -> None:
    admin(lambda tx: tenants.set_quotas(tx, "a", {"networks": 0, "nodes": MAX_QUOTA}, DEFAULTS))
    assert uses(admin, "a") == {"networks": (0, True, 2), "nodes": (MAX_QUOTA, True, 2)}


def test_only_admins_set_limits(
    admin: Actor, world: World, as_tenant: AsTenant, as_host: AsHost
) -> None:
    for actor in (as_tenant(world.a), as_tenant(world.b), as_host(world.x)):
        with pytest.raises(ForbiddenError):
            actor(lambda tx: tenants.set_quotas(tx, "a", {"nodes": 1000}, DEFAULTS))
    with pytest.raises(NotFoundError):
        admin(lambda tx: tenants.set_quotas(tx, "nobody", {"nodes": 1}, DEFAULTS))
    assert uses(admin, "a")["nodes"] == (20, False, 2)


def test_a_tenant_reads_its_own_usage_not_another_s(
    admin: Actor, world: World, as_tenant: AsTenant, as_host: AsHost
) -> None:
    admin(lambda tx: tenants.set_quotas(tx, "a", {"nodes": 7}, DEFAULTS))
    own = as_tenant(world.a).read(lambda tx: tenants.usage(tx, "a", DEFAULTS))
    assert own.quotas[1] == QuotaUse(QuotaKind.NODES, 7, True, 2)
    with pytest.raises(NotFoundError):
        as_tenant(world.b).read(lambda tx: tenants.usage(tx, "a", DEFAULTS))
    with pytest.raises(ForbiddenError):
        as_host(world.x).read(lambda tx: tenants.usage(tx, "a", DEFAULTS))


def test_the_check_honours_the_override_for_that_tenant_only(admin: Actor, world: World) -> None:
    admin(lambda tx: tenants.set_quotas(tx, "a", {"nodes": 3}, DEFAULTS))  # a holds 2
    admin(node_in("a/na", 1))
    with pytest.raises(QuotaExceededError) as caught:
        admin(node_in("a/na", 2))
    assert (caught.value.quota, caught.value.limit) == ("nodes", 3)
    assert caught.value.message == (
        "quota exceeded: tenant 'a' may hold 3 nodes "
        "(quota `nodes`, set for this tenant by `onm tenant set`)"
    )
    for i in range(3):  # tenant b (1 node, default 20) is unaffected
        admin(node_in("b/nb", i + 3))
    # Back on the default (20), tenant a has room again.
    admin(lambda tx: tenants.set_quotas(tx, "a", {"nodes": None}, DEFAULTS))
    admin(node_in("a/na", 2))


def test_a_limit_above_the_default_lets_the_tenant_hold_more(admin: Actor, world: World) -> None:
    tight = Quotas(networks=2, nodes=20)  # tenant a holds 2 networks: full on the default
    network = lambda tx: networks.create(tx, "a", "more", ["10.7.0.0/24"], "siit", tight)  # noqa: E731
    with pytest.raises(QuotaExceededError) as caught:
        admin(network)
    assert "set by the manager's --quota-networks" in caught.value.message
    admin(lambda tx: tenants.set_quotas(tx, "a", {"networks": 3}, tight))
    assert admin(network).name == "more"


def test_lowering_below_the_use_keeps_objects_and_refuses_new_ones(
    admin: Actor, world: World
) -> None:
    lowered = admin(lambda tx: tenants.set_quotas(tx, "a", {"nodes": 1}, DEFAULTS))
    nodes_use = lowered.quotas[1]
    assert (nodes_use.limit, nodes_use.used, nodes_use.over) == (1, 2, True)
    assert sorted(n.name for n in admin.read(lambda tx: nodes.list_all(tx, "a/na"))) == [
        "a1",
        "a2",
    ]
    with pytest.raises(QuotaExceededError):
        admin(node_in("a/na", 1))
    admin(lambda tx: nodes.delete_node(tx, "a/na/a1"))
    with pytest.raises(QuotaExceededError):  # at the limit: still no room
        admin(node_in("a/na", 1))
    assert not admin.read(lambda tx: tenants.usage(tx, "a", DEFAULTS)).quotas[1].over


# --- the API ------------------------------------------------------------------------------------


def patch(client: TestClient, ref: str, quotas: object, token: str | None = None) -> object:
    headers = {} if token is None else bearer(token)
    return client.patch(f"/v1/tenants/{ref}", json={"quotas": quotas}, headers=headers)


def test_api_admin_sets_and_tenant_reads_its_own(
    client: TestClient, context: Context, world: World
) -> None:
    context.quotas = DEFAULTS
    response = client.patch("/v1/tenants/a", json={"quotas": {"networks": 5, "nodes": 50}})
    assert response.status_code == 200, response.text
    assert response.json()["quotas"] == {
        "networks": {"limit": 5, "source": "tenant", "used": 2, "over": False},
        "nodes": {"limit": 50, "source": "tenant", "used": 2, "over": False},
    }
    tenant_a = bearer(world.tokens["tenant_a"])
    shown = client.get("/v1/tenants/a", headers=tenant_a).json()
    assert shown["quotas"] == response.json()["quotas"]
    assert shown["name"] == "a" and shown["id"] == world.a.id
    # null: back to the default; a quota left out keeps its limit
    response = client.patch("/v1/tenants/a", json={"quotas": {"nodes": None}})
    assert response.json()["quotas"] == {
        "networks": {"limit": 5, "source": "tenant", "used": 2, "over": False},
        "nodes": {"limit": 20, "source": "default", "used": 2, "over": False},
    }
    assert client.patch("/v1/tenants/a", json={}).json()["quotas"] == response.json()["quotas"]
    # Another tenant's tenant is absent; no tenant may set limits, not even its own.
    assert client.get("/v1/tenants/a", headers=bearer(world.tokens["tenant_b"])).status_code == 404
    refused = client.patch("/v1/tenants/a", json={"quotas": {"nodes": 1000}}, headers=tenant_a)
    assert refused.status_code == 403, refused.text
    assert client.get("/v1/tenants/a").json()["quotas"]["nodes"]["limit"] == 20


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quotas": {"nodes": -1}}, "quotas.nodes"),
        ({"quotas": {"nodes": MAX_QUOTA + 1}}, "quotas.nodes"),
        ({"quotas": {"nodes": "5"}}, "quotas.nodes"),
        ({"quotas": {"networks": True}}, "quotas.networks"),
        ({"quotas": {"networks": 1.5}}, "quotas.networks"),
        ({"quotas": {"pools": 1}}, "quotas.pools"),
        ({"quotas": None}, "quotas"),
        ({"name": "renamed"}, "name"),
    ],
)
def test_api_bad_limits_are_400_naming_the_field(
    client: TestClient, world: World, body: dict[str, object], field: str
) -> None:
    response = client.patch("/v1/tenants/a", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field


def test_api_lowering_below_use_is_accepted_and_says_so(client: TestClient, world: World) -> None:
    response = client.patch("/v1/tenants/a", json={"quotas": {"nodes": 1}})
    assert response.status_code == 200
    assert response.json()["quotas"]["nodes"] == {
        "limit": 1, "source": "tenant", "used": 2, "over": True
    }  # fmt: skip
    node = {"name": "new", "network": "a/na", "host": "x", "ip": "10.0.0.50"}
    refused = client.post("/v1/nodes", json=node)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "quota_exceeded"
    assert client.get("/v1/nodes/a/na/a1").status_code == 200  # existing ones stay


def test_api_override_of_two_nodes_refuses_the_third_and_spares_other_tenants(
    client: TestClient, world: World
) -> None:
    client.post("/v1/tenants", json={"name": "z"})
    client.post("/v1/tenants", json={"name": "w"})
    assert client.patch("/v1/tenants/z", json={"quotas": {"nodes": 2}}).status_code == 200
    for tenant in ("z", "w"):
        body = {"tenant": tenant, "name": "n", "cidrs": ["10.5.0.0/24"]}
        assert client.post("/v1/networks", json=body).status_code == 201
    for i in range(2):
        node = {"name": f"m{i}", "network": "z/n", "host": "x", "ip": f"10.5.0.{10 + i}"}
        assert client.post("/v1/nodes", json=node).status_code == 201
    third = {"name": "m2", "network": "z/n", "host": "x", "ip": "10.5.0.12"}
    refused = client.post("/v1/nodes", json=third)
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["message"] == (
        "quota exceeded: tenant 'z' may hold 2 nodes "
        "(quota `nodes`, set for this tenant by `onm tenant set`)"
    )
    for i in range(3):
        node = {"name": f"m{i}", "network": "w/n", "host": "y", "ip": f"10.5.0.{10 + i}"}
        assert client.post("/v1/nodes", json=node).status_code == 201


def gauge(context: Context, name: str, **labels: str) -> float | None:
    registry = CollectorRegistry()
    registry.register(context.metrics)
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def test_metrics_export_the_limit_that_applies(
    client: TestClient, context: Context, world: World
) -> None:
    context.metrics.watch(context.store, context.limiter.limits, DEFAULTS)
    assert gauge(context, "onm_manager_tenant_quota", tenant="a", kind="nodes") == 20
    client.patch("/v1/tenants/a", json={"quotas": {"nodes": 3, "networks": 4}})
    assert gauge(context, "onm_manager_tenant_quota", tenant="a", kind="nodes") == 3
    assert gauge(context, "onm_manager_tenant_quota", tenant="a", kind="networks") == 4
    assert gauge(context, "onm_manager_tenant_quota", tenant="b", kind="nodes") == 20
    assert gauge(context, "onm_manager_tenant_objects", tenant="a", kind="nodes") == 2
    assert gauge(context, "onm_manager_tenant_objects", tenant="spare", kind="networks") == 0
