"""card numbers in upper case

Revision ID: 1c0bd6c6620f
Revises: e8b3d5f1a2c6
Create Date: 2026-11-25 10:00:00

A membership card number is one identifier in any case, but the unique index compared it as typed: `VIP8824F301`
and `vip8824f301` were two live profiles' cards. The API now stores card numbers upper case, and this upper-cases
the stored ones. Live profiles whose cards are one card in upper case cannot all take it: the one that holds it
in upper case already keeps it, or else the oldest takes it; the others keep their card as stored, and each is
logged as a warning with the profile holding the card, to be merged into it or given its own card: no card is lost,
and the upgrade does not fail on them. The changed profiles get a new version (their ETags change) and
updated_at; on PostgreSQL the update notifies `customer_changed`, so replicas drop them from their profile cache.
The downgrade leaves the upper-cased numbers: the older code takes them as they are.
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_kit.db

revision: str = "1c0bd6c6620f"
down_revision: str | None = "e8b3d5f1a2c6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("customer_api.migrations")

CUSTOMERS = sa.table(
    "customers",
    sa.column("id", sa.Uuid()),
    sa.column("status", sa.String()),
    sa.column("card_number", sa.String()),
    sa.column("version", sa.Integer()),
    sa.column("created_at", crm_kit.db.UTCDateTime()),
    sa.column("updated_at", crm_kit.db.UTCDateTime()),
)


def _upper(table: sa.FromClause) -> sa.ColumnElement[str]:
    return sa.func.upper(table.c.card_number)


def _live_lower_case(table: sa.FromClause) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.status == "active", table.c.card_number != _upper(table))


def upgrade() -> None:
    upper = _upper(CUSTOMERS)
    # Within each group of live cards that are one in upper case: first the one already upper case, then the oldest.
    rank = sa.func.row_number().over(
        partition_by=upper,
        order_by=[(CUSTOMERS.c.card_number == upper).desc(), CUSTOMERS.c.created_at, CUSTOMERS.c.id],
    )
    ranked = (
        sa.select(CUSTOMERS.c.id, rank.label("rank"))
        .where(CUSTOMERS.c.status == "active", CUSTOMERS.c.card_number.is_not(None))
        .subquery()
    )
    first = sa.select(ranked.c.id).where(ranked.c.rank == 1)
    op.execute(
        sa.update(CUSTOMERS)
        .where(_live_lower_case(CUSTOMERS), CUSTOMERS.c.id.in_(first))
        .values(card_number=upper, version=CUSTOMERS.c.version + 1, updated_at=crm_kit.db.utcnow())
    )
    left, holder = CUSTOMERS.alias("left_as_stored"), CUSTOMERS.alias("holder")
    collisions = sa.select(left.c.id, holder.c.id).join(
        holder, sa.and_(holder.c.card_number == _upper(left), holder.c.status == "active")
    )
    for left_id, holder_id in op.get_bind().execute(collisions.where(_live_lower_case(left))):
        log.warning(
            "customer %s keeps its card number as stored, not in upper case: customer %s holds it in upper case. "
            "Merge it into that profile if they are one customer, or give it its own card number.",
            left_id,
            holder_id,
        )


def downgrade() -> None:
    pass
