"""Claims: the addresses nodes were seen using that are not their own (seed 0's automatic
detection of pools: two nodes of a network claiming one address become a proposed pool).

A new table `ip_claims`; nothing existing changes.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)  # migrations stand alone: not the tables module's type


def upgrade() -> None:
    op.create_table(
        "ip_claims",
        sa.Column("network_id", sa.String(16), sa.ForeignKey("networks.id"), primary_key=True),
        sa.Column("ip", sa.String(15), primary_key=True),
        sa.Column("node_id", sa.String(16), sa.ForeignKey("nodes.id"), primary_key=True),
        sa.Column("host_id", sa.String(16), sa.ForeignKey("hosts.id"), nullable=False),
        sa.Column("first_seen", _TS, nullable=False),
        sa.Column("last_seen", _TS, nullable=False),
        sa.Column("refused", sa.String(200), nullable=True),
    )
    op.create_index("ix_ip_claims_node", "ip_claims", ["node_id"])


def downgrade() -> None:
    """Forget the claims (agents report them again as nodes keep using the addresses)."""
    op.drop_index("ix_ip_claims_node", "ip_claims")
    op.drop_table("ip_claims")
