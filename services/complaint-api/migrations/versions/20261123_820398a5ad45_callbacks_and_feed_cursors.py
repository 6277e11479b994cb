"""callbacks and feed cursors

Revision ID: 820398a5ad45
Revises: d51f8257cd06
Create Date: 2026-11-23 19:34:28.834847
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


import crm_kit.db

revision: str = "820398a5ad45"
down_revision: str | None = "d51f8257cd06"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "feed_cursors",
        sa.Column("feed", sa.String(length=64), nullable=False),
        sa.Column("cursor", sa.String(length=512), nullable=True),
        sa.Column("updated_at", crm_kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("feed", name=op.f("pk_feed_cursors")),
    )
    op.create_table(
        "callbacks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("complaint_id", sa.Uuid(), nullable=True),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("preferred_at", crm_kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("due_at", crm_kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("agent", sa.String(length=100), nullable=True),
        sa.Column("completed_at", crm_kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", crm_kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crm_kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaints.id"], name=op.f("fk_callbacks_complaint_id_complaints")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callbacks")),
    )
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_callbacks_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ix_callbacks_queue", ["status", "due_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.drop_index("ix_callbacks_queue")
        batch_op.drop_index(batch_op.f("ix_callbacks_customer_id"))

    op.drop_table("callbacks")
    op.drop_table("feed_cursors")
