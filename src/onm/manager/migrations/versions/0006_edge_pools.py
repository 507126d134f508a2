"""Edge pools (seed 1): external networks, hosts in edge role, edge pools, their gateways, and
routes from a network to an edge pool.

Hosts get `role` (`node` for existing ones) and `external_id`; the rest is new tables, so
nothing existing changes meaning.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)  # migrations stand alone: not the tables module's type


def upgrade() -> None:
    op.create_table(
        "external_networks",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        sa.Column("cidr", sa.String(18), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("role", sa.String(8), nullable=False, server_default="node"))
        batch.add_column(sa.Column("external_id", sa.String(16), nullable=True))
        batch.create_foreign_key(
            "fk_hosts_external_id_external_networks", "external_networks", ["external_id"], ["id"]
        )
    op.create_table(
        "edge_pools",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("network_id", sa.String(16), sa.ForeignKey("networks.id"), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("nat", sa.String(8), nullable=False),
        sa.Column("hash_fields", sa.JSON, nullable=False),
        sa.Column("choice", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("split_above", sa.Float, nullable=True),
        sa.Column("probe_interval", sa.Float, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("network_id", "name", name="uq_edge_pools_network_name"),
    )
    op.create_table(
        "edge_gateways",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("pool_id", sa.String(16), sa.ForeignKey("edge_pools.id"), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("host_id", sa.String(16), sa.ForeignKey("hosts.id"), nullable=False),
        sa.Column("external_ip", sa.String(15), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("pool_id", "name", name="uq_edge_gateways_pool_name"),
    )
    op.create_index("ix_edge_gateways_external_ip", "edge_gateways", ["external_ip"])
    op.create_table(
        "routes",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("network_id", sa.String(16), sa.ForeignKey("networks.id"), nullable=False),
        sa.Column("prefix", sa.String(18), nullable=False),
        sa.Column("edge_pool_id", sa.String(16), sa.ForeignKey("edge_pools.id"), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("network_id", "prefix", name="uq_routes_network_prefix"),
    )


def downgrade() -> None:
    """Drop edge pools and routes; hosts lose their role (all become node hosts)."""
    op.drop_table("routes")
    op.drop_index("ix_edge_gateways_external_ip", "edge_gateways")
    op.drop_table("edge_gateways")
    op.drop_table("edge_pools")
    with op.batch_alter_table("hosts") as batch:
        batch.drop_constraint("fk_hosts_external_id_external_networks", type_="foreignkey")
        batch.drop_column("external_id")
        batch.drop_column("role")
    op.drop_table("external_networks")
