"""A second reference for the read benchmark: the cheapest FastAPI route, no database, no middleware.

`GET /v1/customers/{customer_id}` with a `uuid.UUID` path parameter returns the bare app's fixed body
as a pre-encoded `Response`. Its throughput is the ceiling any FastAPI endpoint can reach on this
machine, which puts the gap between customer-api and the bare ASGI app into two parts: what FastAPI
itself costs, and what customer-api adds on top (dependencies, database, serialisation, middleware).
Run it as `uvicorn fastapi_floor_app:app --app-dir bench`.
"""

from __future__ import annotations

import uuid

from bare_app import BODY
from fastapi import FastAPI, Response

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/v1/customers/{customer_id}")
async def read_customer(customer_id: uuid.UUID) -> Response:
    return Response(BODY, media_type="application/json")
