"""Shared request types."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

import pytest
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from crm_kit.schemas import DECIMAL_TEXT, Day, DecimalText, Flag, Timestamp

ADAPTER: TypeAdapter[dt.datetime] = TypeAdapter(Timestamp)
DAY: TypeAdapter[dt.date] = TypeAdapter(Day)
FLAG: TypeAdapter[bool] = TypeAdapter(Flag)


def test_a_timestamp_keeps_the_offset_it_was_sent_with() -> None:
    kept = ADAPTER.validate_python("2026-11-24T09:00:00+08:00")
    assert kept.utcoffset() == dt.timedelta(hours=8) and kept.hour == 9
    assert ADAPTER.validate_python("1900-01-01T00:00:00Z").year == 1900
    assert ADAPTER.validate_python("8999-12-31T23:59:59Z").year == 8999


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-24T09:00:00",  # naive
        "0001-01-01T00:00:00+00:01",  # no UTC time: converting it overflows
        "1899-12-31T23:59:59Z",
        "9000-01-01T00:00:00Z",
        "9999-12-31T23:59:59-23:59",
    ],
)
def test_a_timestamp_out_of_range_or_naive_is_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        ADAPTER.validate_python(value)


@pytest.mark.parametrize("value", [0, 1700000000, 0.5, "0.5", "1700000000", "-1", True, "nan"])
def test_a_timestamp_or_day_sent_as_a_number_is_refused(value: object) -> None:
    """pydantic alone reads these as seconds since 1970: `?to=0.5` was a window ending in 1970."""
    with pytest.raises(ValidationError, match="ISO 8601"):
        ADAPTER.validate_python(value)
    with pytest.raises(ValidationError, match="ISO 8601"):
        DAY.validate_python(value)


def test_a_day_is_written_out() -> None:
    assert DAY.validate_python("1988-05-20") == dt.date(1988, 5, 20)
    with pytest.raises(ValidationError):
        DAY.validate_python(432000000)  # 1983-09-10 to pydantic alone


@pytest.mark.parametrize("value", [0, 1, "true", "yes", "off", None])
def test_a_flag_is_true_or_false_only(value: object) -> None:
    with pytest.raises(ValidationError):
        FLAG.validate_python(value)
    assert FLAG.validate_python(True) is True and FLAG.validate_python(False) is False


class _Line(BaseModel):
    quantity: Annotated[Decimal, Field(gt=0, decimal_places=3), DecimalText()]
    refund: Annotated[Decimal, Field(ge=0), DecimalText()] | None = None


def test_decimal_text_is_plain_digits_as_documented() -> None:
    assert _Line(quantity="2.500").quantity == Decimal("2.5") and _Line(quantity=2).quantity == 2
    for written in ("1e3", "1_000", " 2 ", "", "NaN", "二"):
        with pytest.raises(ValidationError, match="written out"):
            _Line(quantity=written)
    with pytest.raises(ValidationError, match="greater than 0"):  # the field's own limits still hold
        _Line(quantity="0")
    properties = _Line.model_json_schema()["properties"]
    quantity = properties["quantity"]["anyOf"]
    assert {"type": "number", "exclusiveMinimum": 0.0} in quantity
    assert {"type": "string", "pattern": DECIMAL_TEXT} in quantity
    assert {"type": "string", "pattern": DECIMAL_TEXT} in properties["refund"]["anyOf"]
    assert all(key in ("anyOf", "default", "title") for key in properties["refund"])
