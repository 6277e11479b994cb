"""complaints, knowledge base and SLA

Revision ID: d51f8257cd06
Revises:
Create Date: 2026-11-23 19:30:51.627467
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_kit.db

revision: str = "d51f8257cd06"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "complaint_numbers",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_complaint_numbers")),
    )
    op.create_table(
        "complaints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column(
            "customer_snapshot",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("snapshot_status", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=True),
        sa.Column("assignee_id", sa.String(length=64), nullable=True),
        sa.Column("answered_article_id", sa.Uuid(), nullable=True),
        sa.Column(
            "suggestions", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("root_cause", sa.String(length=100), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("corrective_action", sa.Text(), nullable=True),
        sa.Column("duplicate_of", sa.Uuid(), nullable=True),
        sa.Column("follows_up", sa.Uuid(), nullable=True),
        sa.Column("cancel_reason", sa.String(length=200), nullable=True),
        sa.Column("on_hold_since", crm_kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "sla_pauses", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("first_response_breached", sa.Boolean(), nullable=False),
        sa.Column("resolution_breached", sa.Boolean(), nullable=False),
        sa.Column("first_response_due", crm_kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolution_due", crm_kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_responded_at", crm_kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", crm_kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", crm_kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.Column(
            "satisfaction", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", crm_kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crm_kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["duplicate_of"], ["complaints.id"], name=op.f("fk_complaints_duplicate_of_complaints")
        ),
        sa.ForeignKeyConstraint(["follows_up"], ["complaints.id"], name=op.f("fk_complaints_follows_up_complaints")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaints")),
        sa.UniqueConstraint("number", name=op.f("uq_complaints_number")),
    )
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_complaints_assignee_id"), ["assignee_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_complaints_category"), ["category"], unique=False)
        batch_op.create_index(batch_op.f("ix_complaints_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_complaints_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_complaints_department"), ["department"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_complaints_first_response_breached"), ["first_response_breached"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_complaints_priority"), ["priority"], unique=False)
        batch_op.create_index(batch_op.f("ix_complaints_resolution_breached"), ["resolution_breached"], unique=False)
        batch_op.create_index(batch_op.f("ix_complaints_root_cause"), ["root_cause"], unique=False)
        batch_op.create_index(batch_op.f("ix_complaints_snapshot_status"), ["snapshot_status"], unique=False)
        batch_op.create_index(batch_op.f("ix_complaints_status"), ["status"], unique=False)

    op.create_table(
        "kb_articles",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column(
            "tags", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", crm_kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crm_kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_articles")),
        sa.UniqueConstraint("slug", name=op.f("uq_kb_articles_slug")),
    )
    with op.batch_alter_table("kb_articles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kb_articles_category"), ["category"], unique=False)

    op.create_table(
        "kb_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_revision")),
    )
    op.create_table(
        "sla_policies",
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("first_response_minutes", sa.Integer(), nullable=False),
        sa.Column("resolution_minutes", sa.Integer(), nullable=False),
        sa.Column("updated_at", crm_kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("priority", name=op.f("pk_sla_policies")),
    )
    op.create_table(
        "complaint_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("complaint_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("occurred_at", crm_kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "data", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["complaint_id"], ["complaints.id"], name=op.f("fk_complaint_events_complaint_id_complaints")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_events")),
    )
    with op.batch_alter_table("complaint_events", schema=None) as batch_op:
        batch_op.create_index("ix_complaint_events_timeline", ["complaint_id", "id"], unique=False)

    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column(
            "response_headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("resource", sa.String(length=300), nullable=True),
        sa.Column("created_at", crm_kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("principal", "key", name=op.f("pk_idempotency_keys")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idempotency_keys_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_idempotency_keys_resource"), ["resource"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_resource"))
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_created_at"))

    op.drop_table("idempotency_keys")
    with op.batch_alter_table("complaint_events", schema=None) as batch_op:
        batch_op.drop_index("ix_complaint_events_timeline")

    op.drop_table("complaint_events")
    op.drop_table("sla_policies")
    op.drop_table("kb_revision")
    with op.batch_alter_table("kb_articles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kb_articles_category"))

    op.drop_table("kb_articles")
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_complaints_status"))
        batch_op.drop_index(batch_op.f("ix_complaints_snapshot_status"))
        batch_op.drop_index(batch_op.f("ix_complaints_root_cause"))
        batch_op.drop_index(batch_op.f("ix_complaints_resolution_breached"))
        batch_op.drop_index(batch_op.f("ix_complaints_priority"))
        batch_op.drop_index(batch_op.f("ix_complaints_first_response_breached"))
        batch_op.drop_index(batch_op.f("ix_complaints_department"))
        batch_op.drop_index(batch_op.f("ix_complaints_customer_id"))
        batch_op.drop_index(batch_op.f("ix_complaints_created_at"))
        batch_op.drop_index(batch_op.f("ix_complaints_category"))
        batch_op.drop_index(batch_op.f("ix_complaints_assignee_id"))

    op.drop_table("complaints")
    op.drop_table("complaint_numbers")
