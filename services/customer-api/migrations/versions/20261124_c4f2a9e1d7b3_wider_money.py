"""wider money columns

Revision ID: c4f2a9e1d7b3
Revises: 5b1e0c7d9a21
Create Date: 2026-11-24 19:00:00

NUMERIC(14, 2) holds less than 10^12, but the API takes a line of 1,000,000 × 100,000,000 (10^14) and orders of 500
lines: PostgreSQL refused such an order that SQLite stored, and a customer whose orders each fit but add up past
10^12 made every value refresh fail on writing the sums. A line's amount and an order's total are now NUMERIC(20, 2)
(the largest order is 5 × 10^16), and the customer value sums NUMERIC(38, 2): the sum of every order one customer
could store (at most 2^63 of them) stays below 10^36. PostgreSQL alters the column types; SQLite, which does not
enforce a precision, rebuilds the tables in batch mode so its declared schema matches the models.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4f2a9e1d7b3"
down_revision: str | None = "5b1e0c7d9a21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WIDENED = {
    "purchases": (("total",), 20),
    "purchase_lines": (("amount",), 20),
    "customer_values": (
        ("monetary", "trailing_spend", "established_value", "expected_order_value", "predicted_value", "value_at_risk"),
        38,
    ),
}


def _retype(precision_of: dict[str, int]) -> None:
    for table, (columns, _) in WIDENED.items():
        with op.batch_alter_table(table) as batch_op:
            for column in columns:
                batch_op.alter_column(
                    column, type_=sa.Numeric(precision=precision_of[table], scale=2), existing_type=sa.Numeric()
                )


def upgrade() -> None:
    _retype({table: precision for table, (_, precision) in WIDENED.items()})


def downgrade() -> None:
    _retype(dict.fromkeys(WIDENED, 14))
