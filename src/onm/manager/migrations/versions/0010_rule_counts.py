"""Firewall counts of edge pools (issue #10): what each gateway's own agent last reported per
rule (`rule_counts`) and per default verdict (`default_counts`). New tables only; they go with
their rule, gateway or host (ON DELETE CASCADE).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)  # migrations stand alone: not the tables module's type


def _keys() -> list[sa.Column[str]]:
    return [
        sa.Column(
            "host_id",
            sa.String(16),
            sa.ForeignKey("hosts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "gateway_id",
            sa.String(16),
            sa.ForeignKey("edge_gateways.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    ]


def _counts() -> list[sa.Column[object]]:
    return [
        sa.Column("packets", sa.BigInteger, nullable=False),
        sa.Column("carried", sa.BigInteger, nullable=False),
        sa.Column("changed_at", _TS, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "rule_counts",
        *_keys(),
        sa.Column(
            "rule_id",
            sa.String(16),
            sa.ForeignKey("edge_rules.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        *_counts(),
    )
    op.create_index("ix_rule_counts_rule", "rule_counts", ["rule_id"])
    op.create_table(
        "default_counts",
        *_keys(),
        sa.Column("verdict", sa.String(24), primary_key=True),
        *_counts(),
    )
    op.create_index("ix_default_counts_gateway", "default_counts", ["gateway_id"])


def downgrade() -> None:
    """Forget the counts (the gateways' agents report them again within seconds, from their
    own counters: what earlier agent lifetimes counted is lost)."""
    op.drop_index("ix_default_counts_gateway", "default_counts")
    op.drop_table("default_counts")
    op.drop_index("ix_rule_counts_rule", "rule_counts")
    op.drop_table("rule_counts")
