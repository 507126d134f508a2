"""Edge pools in anycast mode (seed 1: an anycast address an ECMP router spreads): each such
pool holds the /64 its gateways share, allocated by the manager; NULL for the rest, so
existing pools keep their meaning.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("edge_pools") as batch:
        batch.add_column(sa.Column("anycast", sa.String(48), nullable=True))
        batch.create_unique_constraint("uq_edge_pools_anycast", ["anycast"])


def downgrade() -> None:
    """Anycast pools lose their /64 and go back to direct mode."""
    op.execute("UPDATE edge_pools SET mode = 'direct' WHERE mode = 'anycast'")
    with op.batch_alter_table("edge_pools") as batch:
        batch.drop_constraint("uq_edge_pools_anycast", type_="unique")
        batch.drop_column("anycast")
