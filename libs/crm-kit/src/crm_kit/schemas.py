"""Base classes for request and response bodies, and the types and validators their fields share."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any, TypeVar

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

T = TypeVar("T")

#: The years a request's times may be written in: wide enough for any business record, narrow enough that
#: converting to UTC and adding or subtracting a period (a 30-day default window, a 90-day follow-up) cannot
#: overflow. The year is the one written, so the schema's pattern (YEARS) states the rule exactly.
FIRST_YEAR, LAST_YEAR = 1900, 8999


def _in_range(value: dt.datetime) -> dt.datetime:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"the year must be from {FIRST_YEAR} to {LAST_YEAR}")
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


class Documented:
    """Annotated metadata that adds keywords to a type's JSON schema (a pattern, a description), for a rule the
    type's validators already enforce."""

    def __init__(self, **keywords: Any) -> None:
        self.keywords = keywords

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {**handler(schema), **self.keywords}


#: The years FIRST_YEAR to LAST_YEAR, as the start of a date or time.
YEARS = r"^(19[0-9]{2}|[2-8][0-9]{3})-"

#: A timezone-aware time from FIRST_YEAR to LAST_YEAR, written out and kept in the offset it was sent with;
#: otherwise a 422.
Timestamp = Annotated[
    AwareDatetime, BeforeValidator(_written_out), AfterValidator(_in_range), Documented(pattern=YEARS)
]
#: How far ahead of this clock another may run: a time written as "now" on a till or a phone is still now.
CLOCK_SKEW = dt.timedelta(minutes=5)


def _not_ahead(value: dt.datetime) -> dt.datetime:
    if value > dt.datetime.now(dt.UTC) + CLOCK_SKEW:
        raise ValueError("cannot be in the future")
    return value


#: A Timestamp of something that has happened (or ends now): one ahead of this clock by more than CLOCK_SKEW is
#: a 422.
PastTimestamp = Annotated[Timestamp, AfterValidator(_not_ahead)]
#: A calendar day written out (2026-11-24); a number is a 422.
Day = Annotated[dt.date, BeforeValidator(_written_out)]
#: A body's true or false; pydantic would also take 0, 1, "yes" or "off".
Flag = Annotated[bool, Strict()]


def _whole(value: Any) -> Any:
    if isinstance(value, bool | str):
        raise ValueError("must be a whole number, not text or true/false")
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: Annotated metadata of a body's integer, after its ``Field`` bounds (before them, a bound left the OpenAPI schema of
#: an optional field): pydantic alone would also take true (as 1) or "3". 2.0 is taken, as JSON Schema's integer is.
WholeNumber = BeforeValidator(_whole)


class DecimalText:
    """Annotated metadata of a request decimal, after its ``Field`` constraints, which must give an upper bound
    (``le``, a power of ten) and the decimal places. Text must be plain digits within those limits ("12.50",
    no exponent, no spaces), and the OpenAPI schema says so: a pattern for text, ``multipleOf`` for a JSON
    number. pydantic alone documents any string and takes "1e3", "1_000" or " 2 "."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        limits = handler(source)
        pattern = re.compile(_decimal_pattern(limits))

        def plain(value: Any) -> Any:
            if isinstance(value, str) and not pattern.fullmatch(value):
                raise ValueError(f"must be a decimal written out, such as 12.50, {_limits_in_words(limits)}")
            return value

        return core_schema.no_info_before_validator_function(plain, limits)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        limits = schema["schema"]  # type: ignore[typeddict-item]  # the decimal schema this metadata wraps
        for branch in json_schema.get("anyOf", []):
            if branch.get("type") == "string":
                branch["pattern"] = _decimal_pattern(limits)
            elif branch.get("type") == "number":
                branch["multipleOf"] = float(Decimal(1).scaleb(-limits["decimal_places"]))
        return json_schema


def _decimal_pattern(limits: core_schema.CoreSchema) -> str:
    """The text a decimal within ``limits`` may be written as: from 0 (``ge=0``) or above it (``gt=0``) up to
    ``le``, with at most ``decimal_places``, in ASCII digits. Leading and trailing zeros are taken, as the value
    is the same (pydantic counts digits without them): "0012.500" is 12.5."""
    places, upper = limits.get("decimal_places"), limits.get("le")
    whole = len(str(int(upper))) - 1 if upper is not None else 0  # le = 10 ** whole
    positive = limits.get("gt") == 0
    if not places or upper != Decimal(10) ** whole or not (positive or limits.get("ge") == 0):
        raise TypeError("DecimalText needs decimal_places, ge=0 or gt=0, and le a power of ten")
    fraction = rf"(\.[0-9]{{1,{places}}}0*)?"
    if positive:  # a nonzero digit in the whole part, or else in the fraction
        below = rf"[1-9][0-9]{{0,{whole - 1}}}{fraction}|0\.[0-9]{{0,{places - 1}}}[1-9]0*"
    else:
        below = rf"[0-9]{{1,{whole}}}{fraction}"
    return rf"^\+?0*({below}|1{'0' * whole}(\.0+)?)$"


def _limits_in_words(limits: core_schema.CoreSchema) -> str:
    lower = "above 0" if limits.get("gt") == 0 else "from 0"
    return f"{lower} up to {limits['le']}, with at most {limits['decimal_places']} decimal places"


#: An amount of money in a response: a decimal string with two places ("12.30").
Money = Annotated[Decimal, PlainSerializer(lambda v: f"{v:.2f}", return_type=str)]


class RequestModel(BaseModel):
    """A request body: unknown fields are an error, not silently dropped; strings are trimmed; numbers are finite.

    Python's JSON parser takes `NaN` and `Infinity`, which are not JSON, and reads `1e400` as infinity: SQLite stored
    them as null and PostgreSQL refused them, so they are a 422 here, on every backend."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)


class _NotNull:
    """Annotated metadata of a partial update's field that cannot be empty: null is a 422 (leaving the field
    out keeps its value), rather than a 500 at the database or in the response, and the schema offers no null."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(_refuse_null, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        kept = [branch for branch in json_schema.pop("anyOf") if branch != {"type": "null"}]
        return {**json_schema, **kept[0]} if len(kept) == 1 else {**json_schema, "anyOf": kept}


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may not be null; leave the field out to keep its value")
    return value


#: A field of a partial update that may be left out (None in Python) but not sent as null.
Omittable = Annotated[T | None, _NotNull()]


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def model_response(model: BaseModel, *, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Serialise a response body once, in pydantic's core, skipping FastAPI's second validation."""
    return Response(model.model_dump_json(), status_code=status_code, headers=headers, media_type="application/json")
