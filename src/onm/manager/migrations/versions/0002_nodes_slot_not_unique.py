"""A host's nodes no longer need distinct slots: (network id, IPv4) tells them apart.

Ordinary nodes are created with slot 0 (docs/addressing.md), so a host holds more than the 63
nodes the 6-bit slot field allowed. Existing nodes keep their slot, and with it their substrate
address: agents and their peers go on using the addresses they were given.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_MAX_SLOT = 63  # what 0001 allowed per host: slots 1..63 of the 6-bit field


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_constraint("uq_nodes_host_slot", type_="unique")


def downgrade() -> None:
    """Give each host's nodes distinct slots 1..n again (their substrate addresses change)."""
    connection = op.get_bind()
    nodes = sa.table("nodes", sa.column("id"), sa.column("host_id"), sa.column("slot"))
    rows = connection.execute(sa.select(nodes.c.id, nodes.c.host_id).order_by(nodes.c.id))
    next_slot: dict[str, int] = {}
    for node_id, host_id in rows.all():
        slot = next_slot.get(host_id, 1)
        if slot > _MAX_SLOT:
            raise RuntimeError(f"host {host_id} has more than {_MAX_SLOT} nodes: cannot downgrade")
        next_slot[host_id] = slot + 1
        connection.execute(sa.update(nodes).where(nodes.c.id == node_id).values(slot=slot))
    with op.batch_alter_table("nodes") as batch:
        batch.create_unique_constraint("uq_nodes_host_slot", ["host_id", "slot"])
