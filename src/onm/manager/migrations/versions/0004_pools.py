"""Pools (seed 0): a network's nodes sharing a virtual IP as alternative destinations.

New tables `pools` and `pool_members`; grants may name a pool (with the requester's ranking of
its members); networks get `auto_pools` (what a detected pool does), `propose` for existing
ones. Nothing existing changes meaning, so agents and their caches are unaffected.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)  # migrations stand alone: not the tables module's type


def upgrade() -> None:
    op.create_table(
        "pools",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("network_id", sa.String(16), sa.ForeignKey("networks.id"), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("ip", sa.String(15), nullable=False),
        sa.Column("mac", sa.String(17), nullable=False, unique=True),
        sa.Column("policy", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("all_down", sa.String(16), nullable=False),
        sa.Column("check_kind", sa.String(8), nullable=False),
        sa.Column("check_port", sa.Integer, nullable=True),
        sa.Column("check_path", sa.String(200), nullable=False),
        sa.Column("check_interval", sa.Float, nullable=False),
        sa.Column("check_timeout", sa.Float, nullable=False),
        sa.Column("check_rise", sa.Integer, nullable=False),
        sa.Column("check_fall", sa.Integer, nullable=False),
        sa.Column("rotate_packets", sa.Integer, nullable=True),
        sa.Column("rotate_seconds", sa.Float, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("turn", sa.BigInteger, nullable=False),
        sa.Column("actions", sa.JSON, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("network_id", "name", name="uq_pools_network_name"),
        sa.UniqueConstraint("network_id", "ip", name="uq_pools_network_ip"),
    )
    op.create_table(
        "pool_members",
        sa.Column("pool_id", sa.String(16), sa.ForeignKey("pools.id"), primary_key=True),
        sa.Column("node_id", sa.String(16), sa.ForeignKey("nodes.id"), primary_key=True),
        sa.Column("host_id", sa.String(16), sa.ForeignKey("hosts.id"), nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("slot", sa.Integer, nullable=False),
        sa.Column("health", sa.String(8), nullable=False),
        sa.Column("since", _TS, nullable=False),
        sa.Column("reported_at", _TS, nullable=True),
        sa.Column("load", sa.Float, nullable=False),
        sa.UniqueConstraint("pool_id", "host_id", "slot", name="uq_pool_members_host_slot"),
    )
    op.create_index("ix_pool_members_node", "pool_members", ["node_id"])
    op.create_table(
        "pool_deliveries",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
            autoincrement=True,
        ),
        sa.Column("pool_id", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("target", sa.String(2000), nullable=False),
        sa.Column("secret", sa.String(200), nullable=True),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_at", _TS, nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
    )  # fmt: skip
    op.create_index("ix_pool_deliveries_due", "pool_deliveries", ["state", "next_at"])
    with op.batch_alter_table("grants") as batch:
        batch.add_column(sa.Column("pool_id", sa.String(16), nullable=True))
        batch.add_column(sa.Column("ranking", sa.JSON, nullable=True))
        batch.create_foreign_key("fk_grants_pool_id_pools", "pools", ["pool_id"], ["id"])
        batch.create_index("ix_grants_pool", ["pool_id"])
    with op.batch_alter_table("networks") as batch:
        batch.add_column(
            sa.Column("auto_pools", sa.String(8), nullable=False, server_default="propose")
        )


def downgrade() -> None:
    """Drop pools: their IPs stop resolving; grants for them go with them."""
    op.execute("DELETE FROM grants WHERE pool_id IS NOT NULL")
    with op.batch_alter_table("networks") as batch:
        batch.drop_column("auto_pools")
    with op.batch_alter_table("grants") as batch:
        batch.drop_index("ix_grants_pool")
        batch.drop_constraint("fk_grants_pool_id_pools", type_="foreignkey")
        batch.drop_column("ranking")
        batch.drop_column("pool_id")
    op.drop_index("ix_pool_deliveries_due", "pool_deliveries")
    op.drop_table("pool_deliveries")
    op.drop_index("ix_pool_members_node", "pool_members")
    op.drop_table("pool_members")
    op.drop_table("pools")
