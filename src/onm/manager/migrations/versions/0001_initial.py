"""Initial schema: tenants, networks, hosts, nodes, grants, tokens, events, revision counter.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    meta = op.create_table(
        "meta",
        sa.Column("key", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(meta, [{"key": "revision", "value": 0}])
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "networks",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("tenant_id", sa.String(16), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("vni", sa.Integer, nullable=False, unique=True),
        sa.Column("encoding", sa.String(8), nullable=False),
        sa.Column("cidrs", sa.JSON, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("tenant_id", "name", name="uq_networks_tenant_name"),
    )
    op.create_table(
        "hosts",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        sa.Column("prefix", sa.String(48), nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("desired_revision", sa.BigInteger, nullable=False),
        sa.Column("applied_revision", sa.BigInteger, nullable=False),
        sa.Column("last_report_at", _TS, nullable=True),
    )
    op.create_table(
        "nodes",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("network_id", sa.String(16), sa.ForeignKey("networks.id"), nullable=False),
        sa.Column("host_id", sa.String(16), sa.ForeignKey("hosts.id"), nullable=False),
        sa.Column("ip", sa.String(15), nullable=False),
        sa.Column("mac", sa.String(17), nullable=False, unique=True),
        sa.Column("slot", sa.Integer, nullable=False),
        sa.Column("interface", sa.String(15), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("network_id", "name", name="uq_nodes_network_name"),
        sa.UniqueConstraint("network_id", "ip", name="uq_nodes_network_ip"),
        sa.UniqueConstraint("host_id", "slot", name="uq_nodes_host_slot"),
        sa.UniqueConstraint("host_id", "interface", name="uq_nodes_host_interface"),
    )
    op.create_table(
        "grants",
        sa.Column("requester_id", sa.String(16), sa.ForeignKey("nodes.id"), primary_key=True),
        sa.Column("target_ip", sa.String(15), primary_key=True),
        sa.Column("network_id", sa.String(16), sa.ForeignKey("networks.id"), nullable=False),
        sa.Column("host_id", sa.String(16), sa.ForeignKey("hosts.id"), nullable=False),
        sa.Column("target_id", sa.String(16), sa.ForeignKey("nodes.id"), nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
    )
    op.create_index("ix_grants_target", "grants", ["target_id"])
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("tenant_id", sa.String(16), sa.ForeignKey("tenants.id"), nullable=True),
        sa.Column("host_id", sa.String(16), sa.ForeignKey("hosts.id"), nullable=True),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("object_id", sa.String(16), nullable=False),
        sa.Column("tenant_id", sa.String(16), nullable=True),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_events_tenant", "events", ["tenant_id", "seq"])


def downgrade() -> None:
    for table in ("events", "tokens", "grants", "nodes", "hosts", "networks", "tenants", "meta"):
        op.drop_table(table)
