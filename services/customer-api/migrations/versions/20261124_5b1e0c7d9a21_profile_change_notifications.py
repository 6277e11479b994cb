"""profile change notifications

Revision ID: 5b1e0c7d9a21
Revises: 7603c38dd3f8
Create Date: 2026-11-24 09:00:00

On PostgreSQL every statement that updates or deletes profile rows notifies the channel
`customer_changed` with each changed id (or `*` when it changed many): replicas drop those profiles
from their read cache. SQLite has no notifications and no profile cache, so nothing changes there.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5b1e0c7d9a21"
down_revision: str | None = "7603c38dd3f8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Above this many rows in one statement a single `*` (forget everything) is cheaper than one notice per row.
MANY = 500


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION notify_customer_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF (SELECT count(*) FROM changed_rows) > {MANY} THEN
                PERFORM pg_notify('customer_changed', '*');
            ELSE
                PERFORM pg_notify('customer_changed', id::text) FROM changed_rows;
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    for event in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER customers_{event.lower()}_notify AFTER {event} ON customers "
            "REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION notify_customer_changed()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for event in ("update", "delete"):
        op.execute(f"DROP TRIGGER customers_{event}_notify ON customers")
    op.execute("DROP FUNCTION notify_customer_changed()")
