"""onm.manager.tokens: bearer tokens shown once, stored as SHA-256, mapped back to principals."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select, update

from onm.errors import UnauthorizedError
from onm.manager import hosts, tables, tenants, tokens
from onm.model import PrincipalKind
from onm.model.principal import ADMIN
from support.manager_world import Actor, prefix_at


def stored(admin: Actor) -> list[tables.Row]:
    return admin.read(lambda tx: list(tx.connection.execute(select(tables.tokens))))


def test_admin_token_created_once(admin: Actor) -> None:
    token = admin(tokens.ensure_admin_token)
    assert token is not None
    assert token.startswith("onm_admin_")
    assert admin(tokens.ensure_admin_token) is None
    assert admin.read(lambda tx: tokens.authenticate(tx, token)) == ADMIN


def test_admin_token_replaced_when_revoked(admin: Actor) -> None:
    old = admin(tokens.ensure_admin_token)
    assert old is not None
    admin(lambda tx: tx.connection.execute(update(tables.tokens).values(revoked=True)))
    with pytest.raises(UnauthorizedError):
        admin.read(lambda tx: tokens.authenticate(tx, old))
    new = admin(tokens.ensure_admin_token)
    assert new is not None and new != old
    assert admin.read(lambda tx: tokens.authenticate(tx, new)).is_admin


def test_only_the_hash_is_stored(admin: Actor) -> None:
    admin_token = admin(tokens.ensure_admin_token)
    _, tenant_token = admin(lambda tx: tenants.create(tx, "t"))
    _, host_token = admin(lambda tx: hosts.create(tx, "h", prefix_at(1)))
    clear = {admin_token, tenant_token, host_token}
    rows = stored(admin)
    assert {row.hash for row in rows} == {hashlib.sha256(t.encode()).hexdigest() for t in clear}
    for row in rows:
        assert all(token not in str(tuple(row)) for token in clear)


def test_tokens_are_long_random_and_kind_prefixed(admin: Actor) -> None:
    made = [admin(lambda tx: tokens.issue(tx, PrincipalKind.HOST)) for _ in range(20)]
    assert len(set(made)) == len(made)
    for token in made:
        assert token.startswith("onm_host_")
        assert len(token.removeprefix("onm_host_")) >= 43  # 256 bits, base64url


def test_principals_of_each_kind(admin: Actor) -> None:
    tenant, tenant_token = admin(lambda tx: tenants.create(tx, "acme"))
    host, host_token = admin(lambda tx: hosts.create(tx, "rack1", prefix_at(1)))
    as_tenant = admin.read(lambda tx: tokens.authenticate(tx, tenant_token))
    as_host = admin.read(lambda tx: tokens.authenticate(tx, host_token))
    assert (as_tenant.kind, as_tenant.tenant_id, as_tenant.host_id, as_tenant.name) == (
        PrincipalKind.TENANT,
        tenant.id,
        None,
        "tenant:acme",
    )
    assert (as_host.kind, as_host.tenant_id, as_host.host_id, as_host.name) == (
        PrincipalKind.HOST,
        None,
        host.id,
        "host:rack1",
    )
    assert not as_tenant.is_admin and not as_host.is_admin


@pytest.mark.parametrize(
    "token", ["", "garbage", "onm_admin_", "onm_admin_" + "A" * 43, " ", "Bearer x"]
)
def test_unknown_tokens_are_unauthorized(admin: Actor, token: str) -> None:
    admin(tokens.ensure_admin_token)
    with pytest.raises(UnauthorizedError):
        admin.read(lambda tx: tokens.authenticate(tx, token))


def test_a_token_differing_by_one_character_is_unknown(admin: Actor) -> None:
    token = admin(tokens.ensure_admin_token)
    assert token is not None
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(UnauthorizedError):
        admin.read(lambda tx: tokens.authenticate(tx, flipped))


def test_revoke_touches_only_its_owner(admin: Actor) -> None:
    a, a_token = admin(lambda tx: tenants.create(tx, "a"))
    _, b_token = admin(lambda tx: tenants.create(tx, "b"))
    second_a = admin(lambda tx: tokens.issue(tx, PrincipalKind.TENANT, tenant_id=a.id))
    h, h_token = admin(lambda tx: hosts.create(tx, "h", prefix_at(1)))
    admin(lambda tx: tokens.revoke_tenant(tx, a.id))
    for gone in (a_token, second_a):
        with pytest.raises(UnauthorizedError):
            admin.read(lambda tx, t=gone: tokens.authenticate(tx, t))
    assert admin.read(lambda tx: tokens.authenticate(tx, b_token)).name == "tenant:b"
    admin(lambda tx: tokens.revoke_host(tx, h.id))
    with pytest.raises(UnauthorizedError):
        admin.read(lambda tx: tokens.authenticate(tx, h_token))
    assert admin.read(lambda tx: tokens.authenticate(tx, b_token)).name == "tenant:b"
