"""offer withheld reason

Revision ID: 3c1a2fdd6a5d
Revises: 01da0c979c52
Create Date: 2026-11-26 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c1a2fdd6a5d"
down_revision: str | None = "01da0c979c52"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recovery_actions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("offer_withheld_reason", sa.String(length=100), nullable=True))


def downgrade() -> None:
    # A withheld offer keeps its status: the previous code fills pending offers only, so it stays unmade.
    with op.batch_alter_table("recovery_actions", schema=None) as batch_op:
        batch_op.drop_column("offer_withheld_reason")
