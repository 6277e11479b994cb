"""when each item's name and category were last seen on an order line

Revision ID: 3f9d2b7c41e5
Revises: 726851503437
Create Date: 2026-11-24 21:30:00

An item's name and category came from whichever line of it was synced last, missing values included: one line
without a category (customer-api takes it as optional) wiped the item's category, so category filters lost the item
and recovery offers no longer avoided it. Each value now keeps the purchase time of the line it came from, and only a
value of a line at least as recent replaces it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_kit.db

revision: str = "3f9d2b7c41e5"
down_revision: str | None = "726851503437"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("name_at", crm_kit.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("category_at", crm_kit.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("category_at")
        batch.drop_column("name_at")
