"""onm.manager.hosts: a /64 each (given or derived from the location), tokens, status, reports."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from onm.addressing import HostPrefix, Location
from onm.errors import (
    AddressingError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnauthorizedError,
)
from onm.manager import events, hosts, networks, nodes, tenants, tokens
from onm.manager.store import Tx
from onm.model import Host, PrincipalKind, Tenant
from support.manager_world import NOW, Actor, Clock, prefix_at

AsTenant = Callable[[Tenant], Actor]
AsHost = Callable[[Host], Actor]


def make(
    actor: Actor, name: str, prefix: str | None = None, location: Location | None = None
) -> tuple[Host, str]:
    return actor(lambda tx: hosts.create(tx, name, prefix, location))


def test_create_with_prefix(admin: Actor) -> None:
    host, token = make(admin, "h", "fd00:0:102:304::/64")
    assert host.name == "h"
    assert host.id.startswith("hst-")
    assert host.prefix == HostPrefix.from_network("fd00:0:102:304::/64")
    assert host.prefix.location == Location(locale=1, area=2, rack=3, node=4)
    assert host.created_at == NOW
    assert token.startswith("onm_host_")
    principal = admin.read(lambda tx: tokens.authenticate(tx, token))
    assert (principal.kind, principal.host_id, principal.name) == (
        PrincipalKind.HOST,
        host.id,
        "host:h",
    )
    assert admin.read(lambda tx: hosts.get(tx, "h")) == host
    assert admin.read(lambda tx: hosts.get(tx, host.id)) == host


@pytest.mark.parametrize(
    "location",
    [
        Location(locale=0, area=0, rack=0, node=0),
        Location(locale=1, area=2, rack=3, node=4),
        Location(locale=63, area=255, rack=255, node=255),
    ],
)
def test_prefix_derived_from_location(admin: Actor, location: Location) -> None:
    host, _ = make(admin, "h", location=location)
    assert host.prefix == HostPrefix(location)
    assert host.prefix.location == location


def test_prefix_and_matching_location(admin: Actor) -> None:
    location = Location(locale=1, area=2, rack=3, node=4)
    host, _ = make(admin, "h", str(HostPrefix(location)), location)
    assert host.prefix == HostPrefix(location)


def test_prefix_and_location_that_disagree(admin: Actor) -> None:
    with pytest.raises(InvalidInputError) as caught:
        make(admin, "h", "fd00:0:102:304::/64", Location(locale=1, area=2, rack=3, node=5))
    assert caught.value.field == "prefix"
    assert "does not match" in caught.value.reason


def test_neither_prefix_nor_location(admin: Actor) -> None:
    with pytest.raises(InvalidInputError) as caught:
        make(admin, "h")
    assert caught.value.field == "prefix"


@pytest.mark.parametrize(
    "prefix",
    [
        "fd00:0:102::/48",
        "fd00:0:102:304::/96",
        "fd00:0:102:304::1/64",  # host bits set
        "fd00:0:102:304::",  # a bare address is a /128
        "10.0.0.0/8",
        "not a prefix",
    ],
)
def test_bad_prefix_names_the_field(admin: Actor, prefix: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        make(admin, "h", prefix)
    assert caught.value.field == "prefix"


def test_location_out_of_range_is_refused_when_built() -> None:
    with pytest.raises(AddressingError) as caught:
        Location(locale=64, area=0, rack=0, node=0)
    assert caught.value.field == "locale"


def test_invalid_name(admin: Actor) -> None:
    with pytest.raises(InvalidInputError) as caught:
        make(admin, "H_1", prefix_at(1))
    assert caught.value.field == "name"


def test_duplicate_name_or_prefix_is_a_conflict_naming_the_field(admin: Actor) -> None:
    make(admin, "h", prefix_at(1))
    with pytest.raises(ConflictError) as by_name:
        make(admin, "h", prefix_at(2))
    assert by_name.value.field == "name"
    with pytest.raises(ConflictError) as by_prefix:
        make(admin, "other", location=HostPrefix.from_network(prefix_at(1)).location)
    assert by_prefix.value.field == "prefix"
    assert "'h'" in by_prefix.value.reason


def test_only_admins_create_and_delete(admin: Actor, as_tenant: AsTenant, as_host: AsHost) -> None:
    tenant, _ = admin(lambda tx: tenants.create(tx, "t"))
    host, _ = make(admin, "h", prefix_at(1))
    for actor in (as_tenant(tenant), as_host(host)):
        with pytest.raises(ForbiddenError):
            make(actor, "other", prefix_at(2))
        with pytest.raises(ForbiddenError):
            actor(lambda tx: hosts.delete_host(tx, "h"))


def test_tenants_read_every_host_hosts_only_themselves(
    admin: Actor, as_tenant: AsTenant, as_host: AsHost
) -> None:
    tenant, _ = admin(lambda tx: tenants.create(tx, "t"))
    x, _ = make(admin, "x", prefix_at(1))
    y, _ = make(admin, "y", prefix_at(2))
    assert as_tenant(tenant).read(hosts.list_all) == [x, y]
    assert as_tenant(tenant).read(lambda tx: hosts.get(tx, "y")) == y
    assert as_host(x).read(hosts.list_all) == [x]
    assert as_host(x).read(lambda tx: hosts.get(tx, "x")) == x
    with pytest.raises(NotFoundError):
        as_host(x).read(lambda tx: hosts.get(tx, "y"))
    with pytest.raises(NotFoundError):
        as_host(x).read(lambda tx: hosts.get(tx, y.id))


def test_only_tenants_are_kept_from_the_substrate(
    admin: Actor, as_tenant: AsTenant, as_host: AsHost
) -> None:
    tenant, _ = admin(lambda tx: tenants.create(tx, "t"))
    x, _ = make(admin, "x", prefix_at(1))
    assert admin.read(hosts.shows_substrate)
    assert as_host(x).read(hosts.shows_substrate)
    assert not as_tenant(tenant).read(hosts.shows_substrate)


def test_the_openapi_document_has_both_host_views(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert "prefix" not in schemas["HostPublic"]["properties"]
    assert "prefix" in schemas["HostOut"]["required"]
    for path in ("/v1/hosts", "/v1/hosts/{ref}"):
        answer = document["paths"][path]["get"]["responses"]["200"]["content"]
        text = json.dumps(answer["application/json"]["schema"])
        assert "#/components/schemas/HostPublic" in text and "#/components/schemas/HostOut" in text


def test_delete_refuses_while_nodes_run(admin: Actor) -> None:
    admin(lambda tx: tenants.create(tx, "t"))
    admin(lambda tx: networks.create(tx, "t", "n", ["10.0.0.0/24"]))
    make(admin, "h", prefix_at(1))
    admin(lambda tx: nodes.create(tx, "a", "n", "h", "10.0.0.2"))
    with pytest.raises(ConflictError) as caught:
        admin(lambda tx: hosts.delete_host(tx, "h"))
    assert caught.value.field == "host"


def test_delete_removes_host_and_revokes_its_token(admin: Actor) -> None:
    host, token = make(admin, "h", prefix_at(1))
    assert admin(lambda tx: hosts.delete_host(tx, "h")) == host
    assert admin.read(hosts.list_all) == []
    with pytest.raises(UnauthorizedError):
        admin.read(lambda tx: tokens.authenticate(tx, token))
    make(admin, "h", prefix_at(1))  # name and prefix are free again
    with pytest.raises(NotFoundError):
        admin(lambda tx: hosts.delete_host(tx, "nobody"))


def test_new_host_has_its_own_revision_to_apply(admin: Actor) -> None:
    make(admin, "h", prefix_at(1))
    status = admin.read(lambda tx: hosts.status(tx, "h"))
    assert (status.desired_revision, status.applied_revision, status.last_report_at) == (1, 0, None)
    assert status.lagging


def test_report_records_applied_revision_and_time(
    admin: Actor, as_host: AsHost, clock: Clock
) -> None:
    host, _ = make(admin, "h", prefix_at(1))
    clock.advance(dt.timedelta(seconds=5))
    status = as_host(host)(lambda tx: hosts.report(tx, "h", 1))
    assert (status.applied_revision, status.last_report_at) == (1, NOW + dt.timedelta(seconds=5))
    assert not status.lagging
    assert admin.read(Tx.current_revision) == 1  # a report is not a change


@pytest.mark.parametrize("applied", [-1, 2, 10**30])
def test_report_refuses_what_is_not_a_revision(admin: Actor, applied: int) -> None:
    make(admin, "h", prefix_at(1))
    with pytest.raises(InvalidInputError) as caught:
        admin(lambda tx: hosts.report(tx, "h", applied))
    assert caught.value.field == "applied_revision"


def test_report_only_for_oneself(admin: Actor, as_host: AsHost, as_tenant: AsTenant) -> None:
    x, _ = make(admin, "x", prefix_at(1))
    make(admin, "y", prefix_at(2))
    tenant, _ = admin(lambda tx: tenants.create(tx, "t"))
    with pytest.raises(NotFoundError):
        as_host(x)(lambda tx: hosts.report(tx, "y", 0))
    # Tenants may see hosts, but never speak for them.
    with pytest.raises(ForbiddenError):
        as_tenant(tenant)(lambda tx: hosts.report(tx, "x", 0))
    with pytest.raises(NotFoundError):
        admin(lambda tx: hosts.report(tx, "nobody", 0))


def test_statuses_for_admins_only(admin: Actor, as_host: AsHost, as_tenant: AsTenant) -> None:
    x, _ = make(admin, "x", prefix_at(1))
    make(admin, "y", prefix_at(2))
    tenant, _ = admin(lambda tx: tenants.create(tx, "t"))
    as_host(x)(lambda tx: hosts.report(tx, "x", 2))
    rows = admin.read(hosts.statuses)
    assert [(s.host.name, s.desired_revision, s.applied_revision, s.lagging) for s in rows] == [
        ("x", 1, 2, False),
        ("y", 2, 0, True),
    ]
    for actor in (as_host(x), as_tenant(tenant)):
        with pytest.raises(ForbiddenError):
            actor.read(hosts.statuses)


def test_events_are_infrastructure(admin: Actor) -> None:
    host, _ = make(admin, "h", prefix_at(1))
    admin(lambda tx: hosts.delete_host(tx, "h"))
    rows = admin.read(events.latest)
    assert [(e.kind, e.object_id, e.tenant_id) for e in rows] == [
        ("host.created", host.id, None),
        ("host.deleted", host.id, None),
    ]
    assert rows[0].data == {"name": "h", "prefix": prefix_at(1), "role": "node"}
