"""What a request is answered when its database fails, on real PostgreSQL and SQLite through an app built by
`build_app`: a failure that may pass is a 503 to retry, a value the database will not take is a 422, a fault of the
service is a 500, and a database host that is gone or does not answer is a 503 in seconds."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, FastAPI, Request
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError

from crm_kit.app import build_app
from crm_kit.db import make_engine
from crm_kit.errors import failure_text
from crm_kit.settings import ServiceSettings
from crm_kit.testing import BACKENDS, temporary_database

router = APIRouter()
CREATE = "CREATE TABLE cells (code VARCHAR(3), note TEXT)"
INDEX = "CREATE INDEX ix_cells_note ON cells (note)"


@router.post("/v1/cells", status_code=201)
async def add_cell(request: Request, code: str, note: str = "") -> dict[str, str]:
    async with request.app.state.database.session_scope() as session:
        await session.execute(
            text("INSERT INTO cells (code, note) VALUES (:code, :note)"), {"code": code, "note": note}
        )
    return {"code": code}


@router.get("/v1/cells/count")
async def count_cells(request: Request) -> dict[str, int]:
    async with request.app.state.database.session_scope(read_only=True) as session:
        return {"count": (await session.execute(text("SELECT count(*) FROM cells"))).scalar_one()}


@router.get("/v1/number")
async def number(request: Request, value: str) -> dict[str, int]:
    async with request.app.state.database.session_scope(read_only=True) as session:
        cast = text("SELECT CAST(CAST(:value AS TEXT) AS INTEGER)")
        return {"number": (await session.execute(cast, {"value": value})).scalar_one()}


@router.get("/v1/cells")
async def list_cells(request: Request) -> list[dict[str, str]]:
    async with request.app.state.database.session_scope(read_only=True) as session:
        return [dict(row._mapping) for row in await session.execute(text("SELECT code, note FROM cells"))]


# Transactions PostgreSQL stops for now: waiting too long for a lock the test holds or for themselves, or writing
# where writes are not taken (as on a primary turned standby).
TRANSIENT = {
    "lock": ("SET LOCAL lock_timeout = '100ms'", "LOCK TABLE cells IN ACCESS EXCLUSIVE MODE"),
    "sleep": ("SET LOCAL statement_timeout = '50ms'", "SELECT pg_sleep(2)"),
    "read-only": ("SET TRANSACTION READ ONLY", "INSERT INTO cells (code) VALUES ('r')"),
}


@router.post("/v1/transient/{case}")
async def transient(request: Request, case: Literal["lock", "sleep", "read-only"]) -> dict[str, str]:
    async with request.app.state.database.session_scope() as session:
        for statement in TRANSIENT[case]:
            await session.execute(text(statement))
    return {"done": case}


@router.get("/v1/missing")
async def missing(request: Request) -> dict[str, int]:
    async with request.app.state.database.session_scope(read_only=True) as session:
        return {"count": (await session.execute(text("SELECT count(*) FROM no_such_table"))).scalar_one()}


@asynccontextmanager
async def _served(
    tmp_path: Path, database_url: str, **settings: object
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app on `database_url` with its lifespan running (an empty migrations folder: nothing to migrate), and a
    client of it."""
    (tmp_path / "migrations" / "versions").mkdir(parents=True, exist_ok=True)
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/migrations\n")
    app = build_app(
        ServiceSettings(environment="test", data_dir=tmp_path, access_log=False, database_url=database_url, **settings),
        title="t", version="0", description="", routers=[router], alembic_ini=tmp_path / "alembic.ini",
    )  # fmt: skip
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        yield app, client


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with temporary_database(request.param, "crm_kit_errors", tmp_path) as url:
        yield url


@pytest.fixture
async def client(database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with _served(tmp_path, database_url) as (app, http):
        async with app.state.database.engine.begin() as connection:
            await connection.execute(text(CREATE))
            await connection.execute(text(INDEX))
        yield http


def _problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["status"] == status
    return body


def _postgresql(url: str) -> bool:
    return url.startswith("postgresql")


async def test_a_value_the_database_refuses_is_a_422_and_nothing_is_stored(
    client: httpx.AsyncClient, database_url: str
) -> None:
    assert (await client.post("/v1/cells", params={"code": "abc"})).status_code == 201
    too_long = await client.post("/v1/cells", params={"code": "abcd"})  # VARCHAR(3): SQLite stores it anyway
    unindexable = await client.post("/v1/cells", params={"code": "x", "note": secrets.token_hex(8_000)})
    not_a_number = await client.get("/v1/number", params={"value": "twelve"})
    if not _postgresql(database_url):  # SQLite has no such limits: it takes each value
        assert [too_long.status_code, unindexable.status_code, not_a_number.status_code] == [201, 201, 200]
        return
    for response, code in [(too_long, "22001"), (unindexable, "54000"), (not_a_number, "22P02")]:
        body = _problem(response, 422)
        assert body["type"] == "https://errors.retail-crm.dev/unprocessable"
        assert code in str(body["detail"]) and "retry-after" not in response.headers
    assert (await client.get("/v1/cells/count")).json() == {"count": 1}


async def test_a_fault_of_the_service_is_a_500_not_a_503_to_retry(client: httpx.AsyncClient) -> None:
    body = _problem(await client.get("/v1/missing"), 500)
    assert body["detail"] == "an unexpected error occurred" and "no_such_table" not in str(body)


async def test_a_lock_or_a_statement_that_times_out_or_a_read_only_database_is_a_503_to_retry(
    client: httpx.AsyncClient, database_url: str
) -> None:
    if not _postgresql(database_url):
        pytest.skip("lock and statement timeouts are PostgreSQL's")
    holder = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE cells IN SHARE MODE")
            locked = await client.post("/v1/transient/lock")
        slow = await client.post("/v1/transient/sleep")
        read_only = await client.post("/v1/transient/read-only")
    finally:
        await holder.close()
    for response in (locked, slow, read_only):
        assert _problem(response, 503)["detail"] == "the database is not reachable; retry shortly"
        assert response.headers["retry-after"] == "1"
    assert (await client.post("/v1/transient/lock")).status_code == 200  # and the same request passes later


async def test_a_sqlite_file_that_cannot_be_opened_is_a_503(tmp_path: Path) -> None:
    async with _served(tmp_path, f"sqlite+aiosqlite:///{tmp_path}") as (_, client):  # a folder, not a file
        response = await client.get("/v1/cells/count")
    assert _problem(response, 503)["type"] == "https://errors.retail-crm.dev/service-unavailable"


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that takes TCP connections and never says a word: a database host that hangs."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener.getsockname()[1]


async def test_a_database_host_that_is_gone_or_hangs_is_a_503_within_the_connect_timeout(
    tmp_path: Path, silent_server: int
) -> None:
    gone = "postgresql+asyncpg://postgres@crm-kit-test-host.invalid:5432/x"  # .invalid never resolves (RFC 6761)
    hangs = f"postgresql+asyncpg://postgres@127.0.0.1:{silent_server}/x"
    for url in (gone, hangs):
        async with _served(tmp_path, url, db_connect_timeout=0.5) as (_, client):
            response = await asyncio.wait_for(client.get("/v1/cells/count"), timeout=10)
        assert _problem(response, 503)["detail"] == "the database is not reachable; retry shortly"
        assert response.headers["retry-after"] == "1"


class StallingProxy:
    """A TCP relay to the database that can go silent: connections stay open, nothing more gets through (a
    database host that stops answering mid-conversation, where no server-side limit can end the wait)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.flowing = asyncio.Event()
        self.flowing.set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self.target)
        await asyncio.gather(self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer))


async def test_a_database_that_goes_silent_mid_conversation_is_a_503_within_the_statement_timeout(
    tmp_path: Path, database_url: str
) -> None:
    if not _postgresql(database_url):
        pytest.skip("SQLite is a file, not a host that can go silent")
    url = make_url(database_url)
    proxy = StallingProxy((url.host or "127.0.0.1", url.port or 5432))
    server = await asyncio.start_server(proxy._relay, "127.0.0.1", 0)
    through = url.set(host="127.0.0.1", port=server.sockets[0].getsockname()[1]).render_as_string(hide_password=False)
    try:
        async with _served(tmp_path, through, db_connect_timeout=0.5, db_statement_timeout=0.5) as (app, client):
            async with app.state.database.engine.begin() as connection:
                await connection.execute(text(CREATE))
            assert (await client.get("/v1/cells/count")).json() == {"count": 0}  # the pool holds a connection now
            proxy.flowing.clear()
            stalled = await asyncio.wait_for(client.get("/v1/cells/count"), timeout=10)
            assert _problem(stalled, 503)["detail"] == "the database is not reachable; retry shortly"
            ready = await asyncio.wait_for(client.get("/readyz"), timeout=10)
            assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
            proxy.flowing.set()
    finally:
        proxy.flowing.set()
        server.close()


async def test_a_statement_prepared_before_a_migration_changed_its_table_is_a_503_and_passes_on_retry(
    client: httpx.AsyncClient, database_url: str
) -> None:
    if not _postgresql(database_url):
        pytest.skip("prepared statements are cached on PostgreSQL connections")
    assert (await client.post("/v1/cells", params={"code": "abc"})).status_code == 201
    assert (await client.get("/v1/cells")).status_code == 200  # the pool's connection caches the statement
    migration = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await migration.execute("ALTER TABLE cells ALTER COLUMN code TYPE VARCHAR(10)")
    finally:
        await migration.close()
    stale = await client.get("/v1/cells")
    assert _problem(stale, 503)["detail"] == "the database is not reachable; retry shortly"
    assert (await client.get("/v1/cells")).json() == [{"code": "abc", "note": ""}]


async def test_a_failed_job_keeps_the_database_message_without_the_statement(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:
            with pytest.raises(DBAPIError) as caught:
                await connection.execute(text("SELECT count(*) FROM no_such_table"))
    finally:
        await engine.dispose()
    failure = failure_text(caught.value)
    # PostgreSQL: relation "no_such_table" does not exist; SQLite: no such table: no_such_table
    assert failure.split(": ", 1)[0] in {"ProgrammingError", "OperationalError"} and "no_such_table" in failure
    assert "SELECT" not in failure and "sqlalche.me" not in failure
    assert failure_text(ValueError("x" * 5000)) == "ValueError: " + "x" * 1988
