"""an index on items.updated_at

Revision ID: 9b7e2c4d1a60
Revises: 3f9d2b7c41e5
Create Date: 2026-11-25 03:10:00

Every replica reads the items changed since its last look (each item's category, for recovery offers) after each
sync and on each model poll: without an index, a scan of the whole catalogue every few seconds.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9b7e2c4d1a60"
down_revision: str | None = "3f9d2b7c41e5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_items_updated_at", "items", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_items_updated_at", table_name="items")
