"""Shared request types."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import TypeAdapter, ValidationError

from crm_kit.schemas import Timestamp

ADAPTER: TypeAdapter[dt.datetime] = TypeAdapter(Timestamp)


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
