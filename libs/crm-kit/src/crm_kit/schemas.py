"""Base classes for request and response bodies."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    """A request body: unknown fields are an error, not silently dropped; strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def refuse_null(value: Any) -> Any:
    """A ``mode="before"`` field validator for partial updates: null is a 422 for a field that cannot be empty
    (leaving the field out keeps its value), rather than a 500 at the database or in the response."""
    if value is None:
        raise ValueError("may not be null; leave the field out to keep its value")
    return value


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def model_response(model: BaseModel, *, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Serialise a response body once, in pydantic's core, skipping FastAPI's second validation."""
    return Response(model.model_dump_json(), status_code=status_code, headers=headers, media_type="application/json")
