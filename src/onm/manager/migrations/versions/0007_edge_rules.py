"""Edge pool firewall rules and public IPs (issue #10; onm.model.edge_rule).

Two new tables; nothing existing changes. A rule or public IP goes with its edge pool (and a
public IP with its node) by ON DELETE CASCADE. A public IP is unique on its external network.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)  # migrations stand alone: not the tables module's type


def upgrade() -> None:
    op.create_table(
        "edge_rules",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column(
            "pool_id",
            sa.String(16),
            sa.ForeignKey("edge_pools.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("proto", sa.String(8), nullable=False),
        sa.Column("ports", sa.JSON, nullable=True),
        sa.Column("remote", sa.String(18), nullable=True),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_edge_rules_pool", "edge_rules", ["pool_id", "position"])
    op.create_table(
        "public_ips",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column(
            "pool_id",
            sa.String(16),
            sa.ForeignKey("edge_pools.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "node_id", sa.String(16), sa.ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "external_id", sa.String(16), sa.ForeignKey("external_networks.id"), nullable=False
        ),
        sa.Column("ip", sa.String(15), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("external_id", "ip", name="uq_public_ips_external_ip"),
        sa.UniqueConstraint("pool_id", "node_id", name="uq_public_ips_pool_node"),
    )
    op.create_index("ix_public_ips_node", "public_ips", ["node_id"])


def downgrade() -> None:
    """Drop every rule and public IP."""
    op.drop_index("ix_public_ips_node", "public_ips")
    op.drop_table("public_ips")
    op.drop_index("ix_edge_rules_pool", "edge_rules")
    op.drop_table("edge_rules")
