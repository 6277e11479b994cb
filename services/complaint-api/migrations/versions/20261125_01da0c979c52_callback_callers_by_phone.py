"""callback callers by phone

Revision ID: 01da0c979c52
Revises: f1b03f2adefa
Create Date: 2026-11-25 10:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "01da0c979c52"
down_revision: str | None = "f1b03f2adefa"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A callback left by phone alone, with neither a customer nor a complaint.
BY_PHONE_ALONE = "customer_id IS NULL AND complaint_id IS NULL AND phone IS NOT NULL"


def upgrade() -> None:
    # Callbacks left by phone alone and still waiting for their call are asked about once: the snapshot pass links
    # them to the live profile with that number, so that customer's erasure and export reach them. Completed ones
    # are left anonymous: the older a number's request, the likelier the number has changed hands since.
    op.execute(f"UPDATE callbacks SET snapshot_status = 'pending' WHERE {BY_PHONE_ALONE} AND status = 'pending'")


def downgrade() -> None:
    # The previous code knows no `no_customer` and never asks about a phone: anonymous callbacks go back to null.
    # Those already linked to a customer stay theirs.
    op.execute(f"UPDATE callbacks SET snapshot_status = NULL WHERE {BY_PHONE_ALONE}")
