"""Base classes for request and response bodies."""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    """A request body: unknown fields are an error, not silently dropped; strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def model_response(model: BaseModel, *, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Serialise a response body once, in pydantic's core, skipping FastAPI's second validation."""
    return Response(model.model_dump_json(), status_code=status_code, headers=headers, media_type="application/json")
