"""customer value

Revision ID: 7603c38dd3f8
Revises: 22e834a16932
Create Date: 2026-11-23 18:57:07.885186
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_kit.db

revision: str = "7603c38dd3f8"
down_revision: str | None = "22e834a16932"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "analytics_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("as_of", crm_kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("stage", sa.String(length=64), nullable=True),
        sa.Column("requested_at", crm_kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", crm_kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", crm_kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", crm_kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "stats", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_jobs")),
    )
    op.create_table(
        "clv_models",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("as_of", crm_kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fitted_at", crm_kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("time_unit_days", sa.Integer(), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column(
            "bgnbd", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column(
            "gamma_gamma", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column(
            "holdout", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clv_models")),
    )
    op.create_table(
        "customer_values",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("as_of", crm_kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("computed_at", crm_kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("first_purchase_at", crm_kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_purchase_at", crm_kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("recency_days", sa.Integer(), nullable=True),
        sa.Column("frequency", sa.Integer(), nullable=False),
        sa.Column("monetary", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("r_score", sa.Integer(), nullable=True),
        sa.Column("f_score", sa.Integer(), nullable=True),
        sa.Column("m_score", sa.Integer(), nullable=True),
        sa.Column("segment", sa.String(length=32), nullable=True),
        sa.Column("trailing_spend", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("established_value", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("repeat_purchases", sa.Integer(), nullable=False),
        sa.Column("typical_interval_days", sa.Float(), nullable=True),
        sa.Column("p_alive", sa.Float(), nullable=True),
        sa.Column("p_alive_previous", sa.Float(), nullable=True),
        sa.Column("expected_purchases", sa.Float(), nullable=True),
        sa.Column("expected_order_value", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("predicted_value", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("churn_risk", sa.Float(), nullable=True),
        sa.Column("at_risk", sa.Boolean(), nullable=False),
        sa.Column("value_at_risk", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column(
            "churn_reasons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_customer_values_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(["model_id"], ["clv_models.id"], name=op.f("fk_customer_values_model_id_clv_models")),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_values")),
    )
    # At most one refresh is queued or running: a second request joins it.
    active = sa.text("status IN ('queued', 'running')")
    op.create_index(
        "uq_analytics_jobs_active",
        "analytics_jobs",
        [sa.text("(1)")],
        unique=True,
        sqlite_where=active,
        postgresql_where=active,
    )
    with op.batch_alter_table("customer_values", schema=None) as batch_op:
        batch_op.create_index("ix_customer_values_at_risk", ["at_risk", "value_at_risk"], unique=False)
        batch_op.create_index(batch_op.f("ix_customer_values_segment"), ["segment"], unique=False)

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tier_locked", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_index("uq_analytics_jobs_active", table_name="analytics_jobs")

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("tier_locked")

    with op.batch_alter_table("customer_values", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_values_segment"))
        batch_op.drop_index("ix_customer_values_at_risk")

    op.drop_table("customer_values")
    op.drop_table("clv_models")
    op.drop_table("analytics_jobs")
