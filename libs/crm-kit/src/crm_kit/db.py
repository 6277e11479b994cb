"""Async SQLAlchemy wiring: engines for SQLite and PostgreSQL, one transaction per request.

SQLite gets WAL, foreign keys, a busy timeout and `BEGIN IMMEDIATE` for write transactions, so
concurrent writers queue on the database lock instead of failing with "database is locked" when a
read snapshot is upgraded. Read-only sessions (GET requests) run in autocommit and do not queue. It also
gets `crm_local_date`, the calendar date of a stored UTC time in a time zone (see `local_date`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from sqlalchemy import JSON, ColumnExpressionArgument, Date, DateTime, MetaData, Table, event, func, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.sql.expression import ColumnElement, FromClause, Select
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")
SelectT = TypeVar("SelectT", bound=Select[Any])


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that is always timezone-aware UTC, on SQLite (which stores naive text) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC times")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


READ_ONLY = "crm_read_only"


def _sqlite_local_date(stored: str | None, zone: str) -> str | None:
    """`crm_local_date` on SQLite: the ISO date, in the IANA time zone `zone`, of a UTC time as SQLite stores it."""
    if stored is None:
        return None
    return dt.datetime.fromisoformat(stored).replace(tzinfo=dt.UTC).astimezone(ZoneInfo(zone)).date().isoformat()


def local_date(session: AsyncSession, column: ColumnExpressionArgument[dt.datetime], zone: str) -> ColumnElement[Any]:
    """SQL: the calendar date of a UTC timestamp column in the IANA time zone `zone`, with the offset in force
    at each row's own time (daylight saving time included). A `date` on PostgreSQL, ISO text on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return func.timezone(zone, column).cast(Date)
    return func.crm_local_date(column, zone)


def _prepare_sqlite(engine: AsyncEngine, url: str, *, foreign_keys: bool) -> None:
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so that BEGIN IMMEDIATE below is ours to issue.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        dbapi_connection.create_function("crm_local_date", 2, _sqlite_local_date, deterministic=True)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Reads run in autocommit (each statement sees committed data); writes take the lock up front.
        if not conn.get_execution_options().get(READ_ONLY, False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    connect_timeout: float = 5,
    statement_timeout: float = 0,
    foreign_keys: bool = True,
) -> AsyncEngine:
    """The engine of `url`. `foreign_keys=False` leaves SQLite's foreign keys unenforced, for migrations only."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, hide_parameters=True)
        _prepare_sqlite(engine, url, foreign_keys=foreign_keys)
        return engine
    # hide_parameters: statement values (names, phones) never reach an error message or a log.
    # No pre-ping (a round trip per request): a connection that drops is invalidated on its first error
    # (that request answers 503) and the pool reconnects; recycling bounds the age of idle connections.
    # A new connection waits at most `connect_timeout` seconds (asyncpg's own default is 60) for a database
    # host that does not answer, so the request gets its 503 while the client still waits. A statement waits at
    # most `statement_timeout` seconds (asyncpg's command_timeout, on the client: it also ends the wait on a
    # database that went silent on an open connection, where no server-side limit would ever answer).
    connect_args: dict[str, Any] = {"timeout": connect_timeout}
    if statement_timeout > 0:
        connect_args["command_timeout"] = statement_timeout
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        hide_parameters=True,
        connect_args=connect_args,
    )


class Database:
    """An engine and its session factories: read-write (the default) and read-only."""

    def __init__(
        self, url: str, *, pool_size: int = 10, connect_timeout: float = 5, statement_timeout: float = 0
    ) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self.engine = make_engine(
            url, pool_size=pool_size, connect_timeout=connect_timeout, statement_timeout=statement_timeout
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # GET requests read in autocommit: one round trip per statement, no BEGIN/COMMIT around it.
        read_options: dict[str, Any] = {READ_ONLY: True}
        if self.engine.dialect.name == "postgresql":
            read_options["isolation_level"] = "AUTOCOMMIT"
        self.read_sessions = async_sessionmaker(self.engine.execution_options(**read_options), expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def session_scope(self, *, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit when the body succeeds, roll back when it raises."""
        factory = self.read_sessions if read_only else self.sessions
        async with factory() as session:
            if read_only:
                # Autocommit reads have nothing to commit; closing hands the connection back.
                yield session
                return
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise


async def insert_ignore(session: AsyncSession, table: Table | FromClause, rows: list[dict[str, Any]]) -> None:
    """`INSERT … ON CONFLICT DO NOTHING` in the session's dialect: rows already present are left as they are.

    The rows go as parameters of one statement (executemany), not as a multi-row VALUES list: one compiled
    statement serves every batch size, so a long-running feed follower does not fill the compiled cache.
    """
    if rows:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        await session.execute(dialect.insert(cast(Table, table)).on_conflict_do_nothing(), rows)


async def upsert(
    session: AsyncSession,
    table: Table | FromClause,
    rows: list[dict[str, Any]],
    *,
    key: list[str],
    update: Callable[[ReadOnlyColumnCollection[str, Any]], Mapping[str, Any]] | None = None,
) -> None:
    """`INSERT … ON CONFLICT (key) DO UPDATE`: new rows are added, present ones take the new values (as
    `insert_ignore`, one statement with the rows as its parameters). `update` gives the SET clause instead, from
    the row that was proposed (`excluded`), for a present row that keeps some of its values."""
    if not rows:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(cast(Table, table))
    columns = [c for c in rows[0] if c not in key]
    set_ = update(statement.excluded) if update else {c: statement.excluded[c] for c in columns}
    upserting = statement.on_conflict_do_update(index_elements=key, set_=set_)
    await session.execute(upserting, rows)


def skip_locked(session: AsyncSession, query: SelectT) -> SelectT:
    """Claim the selected rows for this transaction; on PostgreSQL, rows another replica holds are skipped.
    (SQLite has one writer at a time, so there is nothing to skip.)"""
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


def lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


async def transaction_lock(session: AsyncSession, name: str) -> None:
    """Serialise transactions that take the lock `name` until they end, across every replica.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: its write transactions already run one
    at a time (`BEGIN IMMEDIATE`), so there is nothing more to take.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    database: Database = request.app.state.database
    async with database.session_scope(read_only=request.method in ("GET", "HEAD")) as session:
        yield session


# scope="function": the commit runs before the response is sent, so a failed commit is reported to
# the caller (as a problem) instead of a success that was never stored.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]
