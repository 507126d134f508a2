"""onm.manager.tenants: admins create and delete tenants; a tenant sees only itself."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from onm.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnauthorizedError,
)
from onm.manager import hosts, networks, tenants, tokens
from onm.model import Host, PrincipalKind, Tenant
from support.manager_world import NOW, Actor, prefix_at

AsTenant = Callable[[Tenant], Actor]
AsHost = Callable[[Host], Actor]


def test_create_returns_tenant_and_a_working_token(admin: Actor) -> None:
    tenant, token = admin(lambda tx: tenants.create(tx, "acme"))
    assert tenant.name == "acme"
    assert tenant.id.startswith("ten-")
    assert tenant.created_at == NOW
    assert token.startswith("onm_tenant_")
    principal = admin.read(lambda tx: tokens.authenticate(tx, token))
    assert principal.kind is PrincipalKind.TENANT
    assert principal.tenant_id == tenant.id
    assert principal.name == "tenant:acme"


def test_get_by_id_or_name(admin: Actor) -> None:
    tenant, _ = admin(lambda tx: tenants.create(tx, "acme"))
    assert admin.read(lambda tx: tenants.get(tx, tenant.id)) == tenant
    assert admin.read(lambda tx: tenants.get(tx, "acme")) == tenant
    with pytest.raises(NotFoundError):
        admin.read(lambda tx: tenants.get(tx, "nobody"))


def test_duplicate_name_is_a_conflict_on_name(admin: Actor) -> None:
    admin(lambda tx: tenants.create(tx, "acme"))
    with pytest.raises(ConflictError) as caught:
        admin(lambda tx: tenants.create(tx, "acme"))
    assert caught.value.field == "name"
    assert "acme" in caught.value.reason


@pytest.mark.parametrize("name", ["", "Acme", "a_b", "-a", "a-", "a" * 64, "a b", "é"])
def test_invalid_name_names_the_field(admin: Actor, name: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        admin(lambda tx: tenants.create(tx, name))
    assert caught.value.field == "name"


def test_list_is_sorted_by_name(admin: Actor) -> None:
    for name in ("zeta", "alpha", "mid"):
        admin(lambda tx, name=name: tenants.create(tx, name))
    assert [t.name for t in admin.read(tenants.list_all)] == ["alpha", "mid", "zeta"]


def test_tenant_sees_only_itself(admin: Actor, as_tenant: AsTenant) -> None:
    a, _ = admin(lambda tx: tenants.create(tx, "a"))
    b, _ = admin(lambda tx: tenants.create(tx, "b"))
    assert as_tenant(a).read(tenants.list_all) == [a]
    assert as_tenant(a).read(lambda tx: tenants.get(tx, "a")) == a
    with pytest.raises(NotFoundError) as other:
        as_tenant(a).read(lambda tx: tenants.get(tx, "b"))
    with pytest.raises(NotFoundError) as missing:
        as_tenant(a).read(lambda tx: tenants.get(tx, "nobody"))
    # Another tenant's object answers exactly like no object at all.
    assert str(other.value).replace("'b'", "X") == str(missing.value).replace("'nobody'", "X")
    with pytest.raises(NotFoundError):
        as_tenant(a).read(lambda tx: tenants.get(tx, b.id))


def test_only_admins_create_and_delete(admin: Actor, as_tenant: AsTenant) -> None:
    a, _ = admin(lambda tx: tenants.create(tx, "a"))
    with pytest.raises(ForbiddenError):
        as_tenant(a)(lambda tx: tenants.create(tx, "b"))
    with pytest.raises(ForbiddenError):
        as_tenant(a)(lambda tx: tenants.delete_tenant(tx, "a"))


def test_hosts_may_not_read_tenants(admin: Actor, as_host: AsHost) -> None:
    host, _ = admin(lambda tx: hosts.create(tx, "h", prefix_at(1)))
    admin(lambda tx: tenants.create(tx, "a"))
    with pytest.raises(ForbiddenError):
        as_host(host).read(tenants.list_all)
    with pytest.raises(ForbiddenError):
        as_host(host).read(lambda tx: tenants.get(tx, "a"))


def test_delete_refuses_while_networks_exist(admin: Actor) -> None:
    admin(lambda tx: tenants.create(tx, "a"))
    admin(lambda tx: networks.create(tx, "a", "n", ["10.0.0.0/24"]))
    with pytest.raises(ConflictError) as caught:
        admin(lambda tx: tenants.delete_tenant(tx, "a"))
    assert caught.value.field == "tenant"
    assert admin.read(lambda tx: tenants.get(tx, "a")).name == "a"


def test_delete_removes_tenant_and_revokes_its_tokens(admin: Actor) -> None:
    tenant, token = admin(lambda tx: tenants.create(tx, "a"))
    deleted = admin(lambda tx: tenants.delete_tenant(tx, "a"))
    assert deleted == tenant
    with pytest.raises(NotFoundError):
        admin.read(lambda tx: tenants.get(tx, "a"))
    with pytest.raises(UnauthorizedError):
        admin.read(lambda tx: tokens.authenticate(tx, token))
    # The name is free again.
    admin(lambda tx: tenants.create(tx, "a"))


def test_delete_unknown_is_not_found(admin: Actor) -> None:
    with pytest.raises(NotFoundError):
        admin(lambda tx: tenants.delete_tenant(tx, "nobody"))
