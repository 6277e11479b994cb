"""callback snapshot status

Revision ID: 5c1e0a7b9d42
Revises: ae7243b65181
Create Date: 2026-11-24 23:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c1e0a7b9d42"
down_revision: str | None = "ae7243b65181"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("snapshot_status", sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f("ix_callbacks_snapshot_status"), ["snapshot_status"], unique=False)
    # Callbacks still waiting for their call are asked about once: those taken while customer-api was down get
    # their name and priority at last; for the others the answer only repeats what is known or raises the tier.
    op.execute("UPDATE callbacks SET snapshot_status = 'pending' WHERE customer_id IS NOT NULL AND status = 'pending'")


def downgrade() -> None:
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_callbacks_snapshot_status"))
        batch_op.drop_column("snapshot_status")
