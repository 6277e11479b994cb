"""Base classes for request and response bodies, and the types and validators their fields share."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Response
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    Strict,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

#: The times a request may carry, in UTC: wide enough for any business record, narrow enough that converting
#: to UTC and adding or subtracting a period (a 30-day default window, a 90-day follow-up) cannot overflow.
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


def _in_range(value: dt.datetime) -> dt.datetime:
    try:
        inside = EARLIEST <= value.astimezone(dt.UTC) < LATEST
    except OverflowError:  # 0001-01-01T00:00+00:01 has no UTC time
        inside = False
    if not inside:
        raise ValueError(f"must be from {EARLIEST.year} up to {LATEST.year} (UTC)")
    return value


def _written_out(value: Any) -> Any:
    """Times and dates come as ISO 8601 text. pydantic also reads a number, or text that is one (as every query
    parameter is), as seconds since 1970, so `"as_of": 0`, `?to=0.5` or `"birthday": 0` would pass for a day
    in 1970."""
    if isinstance(value, dt.date) or (isinstance(value, str) and not _is_number(value)):
        return value
    raise ValueError("must be ISO 8601 text, e.g. 2026-11-24T09:00:00+08:00 or 2026-11-24, not a number")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


#: A timezone-aware time within [EARLIEST, LATEST), written out and kept in the offset it was sent with;
#: otherwise a 422.
Timestamp = Annotated[AwareDatetime, BeforeValidator(_written_out), AfterValidator(_in_range)]
#: A calendar day written out (2026-11-24); a number is a 422.
Day = Annotated[dt.date, BeforeValidator(_written_out)]
#: A body's true or false; pydantic would also take 0, 1, "yes" or "off".
Flag = Annotated[bool, Strict()]

#: A decimal sent as text: an optional sign, digits and an optional fraction.
DECIMAL_TEXT = r"^[+-]?\d+(\.\d+)?$"


class DecimalText:
    """Annotated metadata of a request decimal, after its ``Field`` constraints: text must match DECIMAL_TEXT
    ("12.50"), and the OpenAPI schema says so; a JSON number is taken as well. pydantic alone documents any
    string and takes "1e3", "1_000" or " 2 "."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(_plain_decimal, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        for branch in json_schema.get("anyOf", []):
            if branch.get("type") == "string":
                branch["pattern"] = DECIMAL_TEXT
        return json_schema


def _plain_decimal(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(DECIMAL_TEXT, value):
        raise ValueError("must be a decimal number written out, such as 12.50")
    return value


#: An amount of money in a response: a decimal string with two places ("12.30").
Money = Annotated[Decimal, PlainSerializer(lambda v: f"{v:.2f}", return_type=str)]


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
