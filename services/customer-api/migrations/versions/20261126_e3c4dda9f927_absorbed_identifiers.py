"""identifiers absorbed in merges

Revision ID: e3c4dda9f927
Revises: 1c0bd6c6620f
Create Date: 2026-11-26 10:00:00

A merge into a profile that had its own phone, email or card number dropped the duplicate's: the old membership
card and number found nobody any more. `customer_identifiers` keeps them under the surviving profile, one row per
identifier (unique in kind and value). Merges made before this upgrade dropped theirs for good; there is nothing
to bring back. The downgrade drops the table, and with it what later merges kept.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_kit.db

revision: str = "e3c4dda9f927"
down_revision: str | None = "1c0bd6c6620f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_identifiers",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=254), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", crm_kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_customer_identifiers_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("kind", "value", name=op.f("pk_customer_identifiers")),
    )
    op.create_index(op.f("ix_customer_identifiers_customer_id"), "customer_identifiers", ["customer_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_customer_identifiers_customer_id"), table_name="customer_identifiers")
    op.drop_table("customer_identifiers")
