"""The Alembic migrations and `onm.manager.tables` describe one schema, on both backends.

The manager creates its database only through the migrations, while the use cases query it
through `tables.metadata`: if the two drift apart, a constraint the code relies on (or one it
no longer wants, like 0001's one slot per host) silently differs from what runs. Alembic's own
comparison of a migrated database with the metadata must find nothing. Migration 0002 lets a
host hold nodes with one slot and keeps the slots (so the substrate addresses) of existing nodes;
0003 adds the tenants' own quota limits, NULL (the default) for existing tenants.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from onm.manager import tables
from onm.manager.store import MIGRATIONS

NOW = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def migrate(engine: sa.Engine, target: str, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, target)


def differences(engine: sa.Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, tables.metadata))


def test_migrated_database_matches_the_tables_module(engine: sa.Engine) -> None:
    migrate(engine, "head")
    assert differences(engine) == []


def unique_constraints(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        found = sa.inspect(connection).get_unique_constraints("nodes")
    return {str(c["name"]) for c in found}


def test_0002_drops_one_slot_per_host_and_keeps_existing_slots(engine: sa.Engine) -> None:
    migrate(engine, "0001")
    assert "uq_nodes_host_slot" in unique_constraints(engine)
    with engine.begin() as connection:
        connection.execute(sa.insert(tables.tenants).values(id="ten-1", name="t", created_at=NOW))
        connection.execute(
            sa.insert(tables.networks).values(
                id="net-1", tenant_id="ten-1", name="n", vni=1, encoding="siit",
                cidrs=["10.0.0.0/24"], created_at=NOW,
            )
        )  # fmt: skip
        connection.execute(
            sa.insert(tables.hosts).values(
                id="hst-1", name="h", prefix="fd00:0:1::/64", created_at=NOW,
                desired_revision=0, applied_revision=0,
            )
        )  # fmt: skip
        for i in (1, 2):
            connection.execute(
                sa.insert(tables.nodes).values(
                    id=f"nod-{i}", name=f"n{i}", network_id="net-1", host_id="hst-1",
                    ip=f"10.0.0.{i + 1}", mac=f"02:00:00:00:00:0{i}", slot=i,
                    interface=f"onm{i}", created_at=NOW,
                )
            )  # fmt: skip

    migrate(engine, "head")
    assert "uq_nodes_host_slot" not in unique_constraints(engine)
    with engine.begin() as connection:
        slots = dict(connection.execute(sa.select(tables.nodes.c.id, tables.nodes.c.slot)).all())
        assert slots == {"nod-1": 1, "nod-2": 2}  # existing addresses do not move
        connection.execute(sa.update(tables.nodes).values(slot=0))  # what new nodes get

    migrate(engine, "0001", down=True)
    assert "uq_nodes_host_slot" in unique_constraints(engine)
    with engine.connect() as connection:
        slots = dict(connection.execute(sa.select(tables.nodes.c.id, tables.nodes.c.slot)).all())
    assert sorted(slots.values()) == [1, 2]  # distinct again, as 0001 requires


def tenant_columns(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        return {str(c["name"]) for c in sa.inspect(connection).get_columns("tenants")}


def test_0003_gives_existing_tenants_the_defaults_and_keeps_them_on_downgrade(
    engine: sa.Engine,
) -> None:
    migrate(engine, "0002")
    assert "quota_nodes" not in tenant_columns(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO tenants (id, name, created_at) VALUES ('ten-1', 't', :at)"),
            {"at": NOW},
        )
    migrate(engine, "0003")
    assert {"quota_networks", "quota_nodes"} <= tenant_columns(engine)
    t = tables.tenants
    with engine.begin() as connection:
        row = connection.execute(sa.select(t).where(t.c.id == "ten-1")).one()
        assert (row.quota_networks, row.quota_nodes) == (None, None)  # the manager's defaults
        connection.execute(sa.update(t).values(quota_nodes=5))
        assert connection.execute(sa.select(t.c.quota_nodes)).scalar_one() == 5

    migrate(engine, "0002", down=True)
    assert {"quota_networks", "quota_nodes"} & tenant_columns(engine) == set()
    with engine.connect() as connection:
        names = connection.execute(sa.text("SELECT id, name FROM tenants")).all()
    assert [tuple(r) for r in names] == [("ten-1", "t")]


def table_names(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        return set(sa.inspect(connection).get_table_names())


def test_0004_adds_pools_and_gives_existing_networks_propose(engine: sa.Engine) -> None:
    migrate(engine, "0003")
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO tenants (id, name, created_at) VALUES ('ten-1', 't', :at)"),
            {"at": NOW},
        )
        connection.execute(
            sa.text(
                "INSERT INTO networks (id, tenant_id, name, vni, encoding, cidrs, created_at) "
                "VALUES ('net-1', 'ten-1', 'n', 1, 'siit', '[\"10.0.0.0/24\"]', :at)"
            ),
            {"at": NOW},
        )
    migrate(engine, "0004")
    assert {"pools", "pool_members"} <= table_names(engine)
    with engine.connect() as connection:
        assert connection.execute(sa.select(tables.networks.c.auto_pools)).scalar_one() == "propose"
    migrate(engine, "0003", down=True)
    assert {"pools", "pool_members"} & table_names(engine) == set()
    with engine.connect() as connection:
        names = connection.execute(sa.text("SELECT id, name FROM networks")).all()
    assert [tuple(r) for r in names] == [("net-1", "n")]


def test_0005_adds_claims_and_takes_them_away_on_downgrade(engine: sa.Engine) -> None:
    migrate(engine, "0004")
    assert "ip_claims" not in table_names(engine)
    migrate(engine, "0005")
    assert "ip_claims" in table_names(engine)
    migrate(engine, "0004", down=True)
    assert "ip_claims" not in table_names(engine)


def test_0006_adds_edge_pools_and_gives_existing_hosts_the_node_role(engine: sa.Engine) -> None:
    migrate(engine, "0005")
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO hosts (id, name, prefix, created_at, desired_revision, "
                "applied_revision) VALUES ('hst-1', 'h', 'fd00:0:101:101::/64', :at, 0, 0)"
            ),
            {"at": NOW},
        )
    migrate(engine, "0006")
    assert {"external_networks", "edge_pools", "edge_gateways", "routes"} <= table_names(engine)
    with engine.connect() as connection:
        assert connection.execute(sa.select(tables.hosts.c.role)).scalar_one() == "node"
    migrate(engine, "0005", down=True)
    assert {"edge_pools", "routes"} & table_names(engine) == set()
    with engine.connect() as connection:
        names = connection.execute(sa.text("SELECT id, name FROM hosts")).all()
    assert [tuple(r) for r in names] == [("hst-1", "h")]


def test_0009_gives_anycast_pools_a_column_and_takes_it_back(engine: sa.Engine) -> None:
    migrate(engine, "0009")
    with engine.connect() as connection:
        columns = {c["name"] for c in sa.inspect(connection).get_columns("edge_pools")}
    assert "anycast" in columns
    migrate(engine, "0008", down=True)
    with engine.connect() as connection:
        columns = {c["name"] for c in sa.inspect(connection).get_columns("edge_pools")}
    assert "anycast" not in columns


def test_0010_adds_the_firewall_counts_and_takes_them_away(engine: sa.Engine) -> None:
    migrate(engine, "0009")
    assert {"rule_counts", "default_counts"} & table_names(engine) == set()
    migrate(engine, "0010")
    assert {"rule_counts", "default_counts"} <= table_names(engine)
    with engine.connect() as connection:
        keys = sa.inspect(connection).get_foreign_keys("rule_counts")
    assert {(k["referred_table"], (k.get("options") or {}).get("ondelete")) for k in keys} == {
        ("hosts", "CASCADE"),
        ("edge_gateways", "CASCADE"),
        ("edge_rules", "CASCADE"),
    }
    migrate(engine, "0009", down=True)
    assert {"rule_counts", "default_counts"} & table_names(engine) == set()
