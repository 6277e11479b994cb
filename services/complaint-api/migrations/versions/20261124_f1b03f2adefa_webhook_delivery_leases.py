"""webhook delivery leases

Revision ID: f1b03f2adefa
Revises: 5c1e0a7b9d42
Create Date: 2026-11-24 23:15:17.840500
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_kit.db

revision: str = "f1b03f2adefa"
down_revision: str | None = "5c1e0a7b9d42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Attempts in flight when this runs were claimed by the old loop: their leases are not counted, and
    # they finish (or run out) as before.
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("leased_until", crm_kit.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_webhook_deliveries_leased", ["leased_until"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_leased")
        batch_op.drop_column("leased_until")
