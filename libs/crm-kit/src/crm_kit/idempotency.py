"""`Idempotency-Key` for creates, stored in the service's own database.

The first request with a key reserves it in the same transaction as the create and stores the
response; a retry with the same key and body gets that response again (`Idempotent-Replayed: true`);
the same key with another body is a 422. A failed request stores nothing, so its retry runs afresh.
A response forgotten since (its person erased, its profile merged away) is not replayed, and the request is not
carried out again: a retry is a 410 (erased) or a 409 (merged: `Location` leads to the surviving profile).
Two racing requests with one key: the second waits on the key's row and then replays the first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Request, Response
from sqlalchemy import Column, Integer, LargeBinary, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kit.auth import Principal, current_principal
from crm_kit.db import JSONType, SessionDep, UTCDateTime, new_metadata, utcnow
from crm_kit.errors import Conflict, Gone, Unprocessable

kit_metadata = new_metadata()

idempotency_keys = Table(
    "idempotency_keys",
    kit_metadata,
    Column("principal", String(100), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response_body", LargeBinary, nullable=True),
    Column("response_headers", JSONType, nullable=True),
    # The created resource's path, so erasing a person also forgets responses that described them.
    Column("resource", String(300), nullable=True, index=True),
    Column("created_at", UTCDateTime, nullable=False, index=True),
)

_REPLAYED_HEADERS = ("location", "etag", "content-type")


def fingerprint(method: str, path: str, body: bytes) -> str:
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


class Idempotency:
    def __init__(self, session: AsyncSession, principal: Principal, key: str | None, print_: str) -> None:
        self.session = session
        self.principal = principal
        self.key = key
        self.fingerprint = print_

    async def execute(self, produce: Callable[[], Awaitable[Response]], *, resource: str | None = None) -> Response:
        """Run `produce` once per key; replay its response for retries. The response is about `resource` (by
        default the `Location` it answers with), so that `forget_responses` on that path forgets it."""
        if self.key is None:
            return await produce()
        stored = await self._load()
        if stored is not None:
            return self._replay(stored)
        try:
            async with self.session.begin_nested():
                await self.session.execute(
                    insert(idempotency_keys).values(
                        principal=self.principal.name,
                        key=self.key,
                        fingerprint=self.fingerprint,
                        created_at=utcnow(),
                    )
                )
        except IntegrityError:
            stored = await self._load()
            if stored is None:
                raise Conflict("a request with this Idempotency-Key is in progress; retry") from None
            return self._replay(stored)
        response = await produce()
        headers = {k: v for k, v in response.headers.items() if k.lower() in _REPLAYED_HEADERS}
        await self.session.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.principal == self.principal.name, idempotency_keys.c.key == self.key)
            .values(
                status_code=response.status_code,
                response_body=bytes(response.body),
                response_headers=headers,
                resource=resource or response.headers.get("location"),
            )
        )
        return response

    async def _load(self) -> dict[str, Any] | None:
        row = await self.session.execute(
            select(idempotency_keys).where(
                idempotency_keys.c.principal == self.principal.name, idempotency_keys.c.key == self.key
            )
        )
        found = row.mappings().first()
        return dict(found) if found else None

    def _replay(self, stored: dict[str, Any]) -> Response:
        if stored["fingerprint"] != self.fingerprint:
            raise Unprocessable("this Idempotency-Key was used with a different request body", field="Idempotency-Key")
        if stored["status_code"] is None:
            raise Conflict("a request with this Idempotency-Key is in progress; retry")
        if stored["response_body"] is None:
            if stored["status_code"] == Gone.status:
                raise Gone("this request was carried out before, and what it created has since been erased")
            raise Conflict(
                "this request was carried out before, and what it created has since been merged into another "
                "profile (Location leads to it)",
                headers={"Location": stored["resource"]},
            )
        headers = dict(stored["response_headers"] or {})
        headers["Idempotent-Replayed"] = "true"
        return Response(stored["response_body"], status_code=stored["status_code"], headers=headers)


async def _idempotency(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(current_principal)],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Retry-safe create: the same key and body replay the first response",
        ),
    ] = None,
) -> Idempotency:
    body = await request.body()
    return Idempotency(session, principal, idempotency_key, fingerprint(request.method, request.url.path, body))


IdempotencyDep = Annotated[Idempotency, Depends(_idempotency)]


async def forget_responses(session: AsyncSession, resource_prefix: str, *, erased: bool) -> None:
    """Forget stored responses about resources under a path (`erased`: a PIPL erasure, else a merge): the body and
    headers go, the key stays, so that a retry is refused (410 or 409) rather than carried out again."""
    await session.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.resource.startswith(resource_prefix, autoescape=True))
        .values(status_code=Gone.status if erased else Conflict.status, response_body=None, response_headers=None)
    )
