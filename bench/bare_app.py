"""The reference for the read benchmark: a raw ASGI callable, no framework, no database.

Every HTTP request gets the same JSON body, shaped and sized like a `GET /v1/customers/{id}`
answer of the seeded customers, so that the comparison measures what customer-api adds on top
of uvicorn (routing, dependencies, the database round trip, serialisation, middleware), not a
difference in bytes on the wire. Run it as `uvicorn bare_app:app --app-dir bench`.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Receive, Scope, Send

CUSTOMER = {
    "id": "0196f1c2-7a3e-7c1d-9a51-3b2f6a1c0e42",
    "type": "individual",
    "status": "active",
    "name": "王芳",
    "phone": "+8613812345678",
    "email": "wang.fang.000123@example.cn",
    "gender": "female",
    "birthday": None,
    "address": {"province": "上海市", "city": "上海市", "district": "静安区"},
    "card_number": None,
    "tags": ["vip", "bench"],
    "attributes": {},
    "owner_id": "staff-017",
    "credit_rating": None,
    "tier": "regular",
    "segment": None,
    "consents": {},
    "restricted": False,
    "pii_masked": False,
    "version": 1,
    "created_at": "2026-11-23T10:15:00.123456Z",
    "updated_at": "2026-11-23T10:15:00.123456Z",
}
BODY = json.dumps(CUSTOMER, ensure_ascii=False, separators=(",", ":")).encode()
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())],
}
RESPONSE = {"type": "http.response.body", "body": BODY}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message: Any = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send(START)
    await send(RESPONSE)
