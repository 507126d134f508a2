"""Gateway health (issue #10): what agents say of each edge gateway, the manager's verdict, and
a pool's rebalance generation.

Edge gateways get `health` (`unknown` for existing ones until agents report), `health_since`
and `health_why`; edge pools get `rebalance` (0); `gateway_reports` is new. Nothing existing
changes meaning.

Revision ID: 0008
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)  # migrations stand alone: not the tables module's type


def upgrade() -> None:
    with op.batch_alter_table("edge_pools") as batch:
        batch.add_column(sa.Column("rebalance", sa.BigInteger, nullable=False, server_default="0"))
    with op.batch_alter_table("edge_gateways") as batch:
        batch.add_column(
            sa.Column("health", sa.String(8), nullable=False, server_default="unknown")
        )
        batch.add_column(sa.Column("health_since", _TS, nullable=True))
        batch.add_column(sa.Column("health_why", sa.String(200), nullable=True))
    op.create_table(
        "gateway_reports",
        sa.Column("gateway_id", sa.String(16), sa.ForeignKey("edge_gateways.id"), primary_key=True),
        sa.Column("host_id", sa.String(16), sa.ForeignKey("hosts.id"), primary_key=True),
        sa.Column("alive", sa.Boolean, nullable=False),
        sa.Column("pinned", sa.BigInteger, nullable=False),
        sa.Column("flows", sa.BigInteger, nullable=False),
        sa.Column("packets", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("reported_at", _TS, nullable=False),
    )
    op.create_index("ix_gateway_reports_host", "gateway_reports", ["host_id"])


def downgrade() -> None:
    """Forget the reports and verdicts (agents report again within seconds) and generations."""
    op.drop_index("ix_gateway_reports_host", "gateway_reports")
    op.drop_table("gateway_reports")
    with op.batch_alter_table("edge_gateways") as batch:
        batch.drop_column("health_why")
        batch.drop_column("health_since")
        batch.drop_column("health")
    with op.batch_alter_table("edge_pools") as batch:
        batch.drop_column("rebalance")
