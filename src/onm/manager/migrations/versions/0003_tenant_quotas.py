"""Tenants may have their own quota limits: one nullable column per quota, NULL = the default.

Existing tenants get NULL, so they keep the manager's defaults (`--quota-networks`,
`--quota-nodes`) until an admin sets a limit of their own (`onm tenant set`).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_COLUMNS = ("quota_networks", "quota_nodes")


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        for name in _COLUMNS:
            batch.add_column(sa.Column(name, sa.Integer, nullable=True))


def downgrade() -> None:
    """Drop the tenants' own limits: every tenant is back on the manager's defaults."""
    with op.batch_alter_table("tenants") as batch:
        for name in _COLUMNS:
            batch.drop_column(name)
