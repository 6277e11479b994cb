"""Shared request types."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from crm_kit.schemas import Day, DecimalText, Flag, Omittable, Timestamp, WholeNumber

ADAPTER: TypeAdapter[dt.datetime] = TypeAdapter(Timestamp)
DAY: TypeAdapter[dt.date] = TypeAdapter(Day)
FLAG: TypeAdapter[bool] = TypeAdapter(Flag)
WHOLE: TypeAdapter[int | None] = TypeAdapter(Annotated[int, Field(ge=1, le=5), WholeNumber] | None)


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


@pytest.mark.parametrize("value", [True, False, "3", 2.5, 0, 6])
def test_a_whole_number_is_a_json_integer_only(value: object) -> None:
    with pytest.raises(ValidationError):
        WHOLE.validate_python(value)
    assert WHOLE.validate_python(3) == 3 and WHOLE.validate_python(None) is None
    assert WHOLE.validate_python(2.0) == 2 and type(WHOLE.validate_python(2.0)) is int  # JSON Schema: an integer
    assert WHOLE.json_schema()["anyOf"][0] == {"type": "integer", "minimum": 1, "maximum": 5}  # the bounds stay


class _Line(BaseModel):
    quantity: Annotated[Decimal, Field(gt=0, le=Decimal("1000000"), decimal_places=3), DecimalText()]
    refund: Annotated[Decimal, Field(ge=0, le=Decimal("10000"), decimal_places=2), DecimalText()] | None = None


QUANTITY = _Line.model_json_schema()["properties"]["quantity"]["anyOf"]
QUANTITY_TEXT = next(branch["pattern"] for branch in QUANTITY if branch["type"] == "string")


def test_decimal_text_is_plain_digits_as_documented() -> None:
    assert _Line(quantity="2.500").quantity == Decimal("2.5") and _Line(quantity=2).quantity == 2
    assert _Line(quantity="0012.500").quantity == Decimal("12.5")  # the same value: pydantic counts no such zeros
    for written in ("1e3", "1_000", " 2 ", "", "NaN", "二", ".5", "-1", "0", "0.000", "1000000.001", "1.0001"):
        with pytest.raises(ValidationError, match="written out"):
            _Line(quantity=written)
    assert {"type": "number", "exclusiveMinimum": 0.0, "maximum": 1000000.0, "multipleOf": 0.001} in QUANTITY
    refund = _Line.model_json_schema()["properties"]["refund"]
    assert refund["anyOf"][0]["multipleOf"] == 0.01 and {"type": "null"} in refund["anyOf"]
    assert all(key in ("anyOf", "default", "title") for key in refund)


@given(st.from_regex(QUANTITY_TEXT, fullmatch=True))
def test_every_quantity_the_schema_allows_is_taken(text: str) -> None:
    assert 0 < _Line(quantity=text).quantity <= 1000000


def _a_plain_quantity(text: str) -> bool:
    """The rule in words: plain digits, above 0, at most 1,000,000, and no more than 3 decimal places once
    trailing zeros are dropped."""
    if not re.fullmatch(r"\+?[0-9]+(\.[0-9]+)?", text):
        return False
    value = Decimal(text)
    return 0 < value <= 1000000 and value == value.quantize(Decimal("0.001"))


@given(st.text(alphabet="0123456789.+-١", max_size=12) | st.decimals(allow_nan=False, places=4).map(str))
def test_the_pattern_and_the_model_both_follow_the_rule(text: str) -> None:
    try:
        _Line(quantity=text)
        taken = True
    except ValidationError:
        taken = False
    assert taken == bool(re.fullmatch(QUANTITY_TEXT, text)) == _a_plain_quantity(text)


def test_decimal_text_needs_limits_it_can_write_as_a_pattern() -> None:
    with pytest.raises(TypeError, match="power of ten"):

        class _Unbounded(BaseModel):
            price: Annotated[Decimal, Field(ge=0, decimal_places=2), DecimalText()]


class _Patch(BaseModel):
    name: Omittable[str] = None
    tags: Omittable[list[str]] = Field(None, max_length=3)


def test_an_omittable_field_may_be_left_out_but_not_null() -> None:
    assert _Patch().model_fields_set == set() and _Patch(name="王芳").name == "王芳"
    with pytest.raises(ValidationError, match="may not be null"):
        _Patch(name=None)
    properties = _Patch.model_json_schema()["properties"]
    assert properties["name"]["type"] == "string" and "anyOf" not in properties["name"]
    assert properties["tags"]["type"] == "array" and properties["tags"]["maxItems"] == 3


def test_the_schema_gives_the_years_a_timestamp_may_carry() -> None:
    pattern = ADAPTER.json_schema()["pattern"]
    for taken in ("1900-01-01T00:00:00Z", "2026-11-24T09:00:00+08:00", "8999-12-31T00:00:00Z"):
        assert re.search(pattern, taken)
        ADAPTER.validate_python(taken)
    for refused in ("1899-12-31T23:00:00Z", "9000-01-01T00:00:00Z", "0637-05-08T14:56:39Z"):
        assert not re.search(pattern, refused)
        with pytest.raises(ValidationError):
            ADAPTER.validate_python(refused)
