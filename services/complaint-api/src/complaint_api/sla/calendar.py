"""The business-hours calendar SLA clocks run on: when the customer-service centre is open, and how much open time
lies between two moments.

It owns the rules (one opening span per weekday, public-holiday closures, 调休 make-up working days, paused clocks)
and the arithmetic on them — `add`, `between`, `elapsed`, `due` — plus parsing the calendar from settings strings.
It is pure: stdlib `datetime`/`zoneinfo` only, no database and no web framework, so policies, the breach sweep and
the API can all share it and it can be tested by hand.

Conventions:
- Every datetime in or out is timezone-aware (naive ones raise `ValueError`); results are returned in UTC.
- Opening hours are wall-clock times in the calendar's time zone; business time is *real* elapsed time while open,
  so on a DST change day a span that contains the change is an hour shorter or longer (never in Asia/Shanghai).
- Open spans are half-open, `[start, end)`: at 18:00 a 09:00–18:00 centre is closed.
- The arithmetic walks whole day spans, never minutes, so an SLA of months costs a few hundred cheap steps.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "CHINA_2026_HOLIDAYS",
    "CHINA_2026_WORKDAYS",
    "BusinessCalendar",
    "MakeupHoursMissing",
    "Pause",
    "WorkingHours",
    "calendar_from_settings",
]

# A pause of the SLA clock: (from, until); `until` None means the clock is still stopped.
Pause = tuple[dt.datetime, dt.datetime | None]

_MIDNIGHT = dt.time(0)
_ONE_DAY = dt.timedelta(days=1)
_ZERO = dt.timedelta(0)
# How far to look for the next opening before declaring the calendar closed for good: longer than any real
# closure (the longest, 春节, is about 9 days), short enough that a misconfigured calendar fails fast.
_SEARCH_LIMIT_DAYS = 3 * 366
_WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class MakeupHoursMissing(ValueError):
    """There are make-up workdays but nothing says their hours: no `makeup_hours` and Monday is closed.

    Its own type so that whoever builds the calendar from configuration can name the setting to change."""


@dataclass(frozen=True)
class WorkingHours:
    """One opening span in a day, wall-clock `[start, end)` in the calendar's time zone.

    `end` must be after `start`; `end == 00:00` means midnight at the end of the day (written "24:00" in
    settings), which is the only way to express a span running to the end of the day with `dt.time`.
    """

    start: dt.time
    end: dt.time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            # The zone belongs to the calendar; a per-span zone would make the span mean two things.
            raise ValueError("WorkingHours takes wall-clock times without tzinfo; the calendar has the time zone")
        if self.end != _MIDNIGHT and self.end <= self.start:
            raise ValueError(f"WorkingHours end {self.end.isoformat()} must be after start {self.start.isoformat()}")

    def span(self, day: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        """This span on `day` as UTC datetimes: UTC so that subtraction is real elapsed time across DST changes
        (aware datetimes sharing one tzinfo subtract as wall-clock times)."""
        start = dt.datetime.combine(day, self.start, tzinfo=tz)
        end_day = day + _ONE_DAY if self.end == _MIDNIGHT else day
        end = dt.datetime.combine(end_day, self.end, tzinfo=tz)
        return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


@dataclass(frozen=True, kw_only=True)
class BusinessCalendar:
    """When the centre is open, and SLA arithmetic on that.

    Per local date the hours are decided in this order: a holiday is closed all day; a make-up working day
    (调休) is open with `makeup_hours` (default: the Monday hours); any other day has its weekday's hours
    (weekday 0 = Monday … 6 = Sunday; a missing weekday is closed).

    Keyword-only because `weekly` has no sensible default but follows `timezone`, which does.
    """

    timezone: str = "Asia/Shanghai"
    # Not hashed: a Mapping is unhashable; the other fields keep the hash consistent with equality.
    weekly: Mapping[int, WorkingHours | None] = field(hash=False)
    holidays: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()
    makeup_hours: WorkingHours | None = None

    # Derived once in __post_init__ so the hot loop does tuple indexing instead of Mapping lookups.
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)
    _week: tuple[WorkingHours | None, ...] = field(init=False, repr=False, compare=False)
    _makeup: WorkingHours | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            tz = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise ValueError(
                f"unknown time zone {self.timezone!r} (expected an IANA name like 'Asia/Shanghai')"
            ) from exc

        week: list[WorkingHours | None] = [None] * 7
        for weekday, hours in self.weekly.items():
            if not isinstance(weekday, int) or isinstance(weekday, bool) or not 0 <= weekday <= 6:
                raise ValueError(f"weekly keys are weekdays 0 (Monday) to 6 (Sunday), got {weekday!r}")
            if hours is not None and not isinstance(hours, WorkingHours):
                raise ValueError(f"weekly[{weekday}] must be WorkingHours or None, got {hours!r}")
            week[weekday] = hours

        holidays = _date_set(self.holidays, "holidays")
        workdays = _date_set(self.workdays, "workdays")
        clash = holidays & workdays
        if clash:
            raise ValueError(f"dates both holiday and make-up workday: {', '.join(sorted(map(str, clash)))}")

        if self.makeup_hours is not None and not isinstance(self.makeup_hours, WorkingHours):
            raise ValueError(f"makeup_hours must be WorkingHours or None, got {self.makeup_hours!r}")
        makeup = self.makeup_hours if self.makeup_hours is not None else week[0]
        if workdays and makeup is None:
            # Guessing another weekday's hours would silently pick the wrong shift; make the operator say it.
            raise MakeupHoursMissing("make-up workdays need hours but Monday is closed: set makeup_hours")
        if all(hours is None for hours in week) and not workdays:
            raise ValueError("the calendar is never open: no weekday has hours and there are no make-up workdays")

        # Frozen dataclass: normalised values go in through object.__setattr__. `weekly` is copied so that
        # mutating the caller's dict later cannot change a calendar that looks immutable.
        object.__setattr__(self, "weekly", MappingProxyType(dict(self.weekly)))
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "workdays", workdays)
        object.__setattr__(self, "_tz", tz)
        object.__setattr__(self, "_week", tuple(week))
        object.__setattr__(self, "_makeup", makeup)

    # -- queries -------------------------------------------------------------------------------------------

    def hours_on(self, day: dt.date) -> WorkingHours | None:
        """The opening hours on a local date, or None when closed all day."""
        if day in self.holidays:
            return None
        if day in self.workdays:
            return self._makeup
        return self._week[day.weekday()]

    def is_open(self, moment: dt.datetime) -> bool:
        """Whether the centre is open at `moment`."""
        at = _to_utc(moment, "moment")
        day = at.astimezone(self._tz).date()
        hours = self.hours_on(day)
        if hours is None:
            return False
        start, end = hours.span(day, self._tz)
        return start <= at < end

    def add(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        """The moment `duration` of business time after `start`, in UTC.

        Counting begins at the next opening when `start` is outside hours; a zero duration gives `start` when
        open, else the next opening. A duration that ends exactly at closing time gives the closing time (the
        earliest moment the time has run), not the next morning.
        """
        begin = _to_utc(start, "start")
        return _consume(self._spans(begin), _check_duration(duration))

    def between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """Business time in `[start, end)`."""
        begin, finish = _to_utc(start, "start"), _to_utc(end, "end")
        if finish < begin:
            raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
        return sum((b - a for a, b in self._spans(begin, finish)), _ZERO)

    def elapsed(self, start: dt.datetime, end: dt.datetime, pauses: Sequence[Pause]) -> dt.timedelta:
        """Business time in `[start, end)` not inside any pause.

        A pause with end None runs to `end`; pauses may overlap each other or stick out of `[start, end)`,
        business time covered twice is subtracted once.
        """
        begin, finish = _to_utc(start, "start"), _to_utc(end, "end")
        if finish < begin:
            raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
        merged = _merge_pauses(pauses, open_until=finish)
        return sum((b - a for a, b in _subtract(self._spans(begin, finish), merged)), _ZERO)

    def due(self, start: dt.datetime, duration: dt.timedelta, pauses: Sequence[Pause] = ()) -> dt.datetime | None:
        """When an SLA of `duration` business time started at `start` runs out, in UTC, given the clock was
        stopped during `pauses`.

        Closed pauses push the due time out by the business time inside them (overlaps counted once; pauses
        before `start` or outside hours change nothing). An open pause (end None) means the clock is stopped
        now, so there is no due time: None. By construction `elapsed(start, due(...), pauses) == duration`.
        """
        begin = _to_utc(start, "start")
        amount = _check_duration(duration)
        merged = _merge_pauses(pauses, open_until=begin)  # validates every pause, open or not
        if any(until is None for _, until in pauses):
            return None
        return _consume(_subtract(self._spans(begin), merged), amount)

    # -- the walk ------------------------------------------------------------------------------------------

    def _spans(self, start: dt.datetime, until: dt.datetime | None = None) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """Open spans (UTC, non-empty, in order) from `start`, clipped to `[start, until)`.

        Without `until` the walk is unbounded, so it raises ValueError after `_SEARCH_LIMIT_DAYS` consecutive
        days with no opening rather than loop forever on a calendar that never opens again.
        """
        tz = self._tz
        # A span never crosses local midnight, so no earlier local date can reach past `start`.
        day = start.astimezone(tz).date()
        last_day = until.astimezone(tz).date() if until is not None else None
        closed_days = 0
        while last_day is None or day <= last_day:
            hours = self.hours_on(day)
            if hours is not None:
                span_start, span_end = hours.span(day, tz)
                span_start = max(span_start, start)
                if until is not None:
                    span_end = min(span_end, until)
                if span_start < span_end:
                    closed_days = 0
                    yield span_start, span_end
                    day = _next_day(day)
                    continue
            closed_days += 1
            if until is None and closed_days > _SEARCH_LIMIT_DAYS:
                raise ValueError(
                    f"no opening within {_SEARCH_LIMIT_DAYS} days after {start.isoformat()}: "
                    "the calendar has no open day left (check weekly hours, holidays and workdays)"
                )
            day = _next_day(day)


# -- helpers ---------------------------------------------------------------------------------------------------


def _to_utc(value: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        # A naive time is ambiguous between the server's, the customer's and the centre's zone: refuse it.
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(dt.UTC)


def _check_duration(duration: dt.timedelta) -> dt.timedelta:
    if not isinstance(duration, dt.timedelta):
        raise TypeError(f"duration must be a timedelta, got {type(duration).__name__}")
    if duration < _ZERO:
        raise ValueError(f"duration must not be negative, got {duration}")
    return duration


def _next_day(day: dt.date) -> dt.date:
    try:
        return day + _ONE_DAY
    except OverflowError as exc:
        raise ValueError("the computation runs past the last representable date") from exc


def _date_set(values: Iterable[dt.date], name: str) -> frozenset[dt.date]:
    days = frozenset(values)
    for day in days:
        # datetime is a date subclass but never equal to one, so it would silently never match.
        if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
            raise ValueError(f"{name} must hold dates, got {day!r}")
    return days


def _merge_pauses(pauses: Sequence[Pause], *, open_until: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """Pauses as sorted, disjoint UTC intervals; an open pause ends at `open_until` (empty ones are dropped)."""
    intervals: list[tuple[dt.datetime, dt.datetime]] = []
    for index, pause in enumerate(pauses):
        if len(pause) != 2:
            raise ValueError(f"pauses[{index}] must be a (start, end or None) pair, got {pause!r}")
        raw_start, raw_end = pause
        start = _to_utc(raw_start, f"pauses[{index}] start")
        end = open_until if raw_end is None else _to_utc(raw_end, f"pauses[{index}] end")
        if raw_end is not None and end < start:
            raise ValueError(f"pauses[{index}] ends {raw_end.isoformat()} before it starts {raw_start.isoformat()}")
        if start < end:
            intervals.append((start, end))
    intervals.sort()
    merged: list[tuple[dt.datetime, dt.datetime]] = []
    for start, end in intervals:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _subtract(
    spans: Iterable[tuple[dt.datetime, dt.datetime]], pauses: Sequence[tuple[dt.datetime, dt.datetime]]
) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """The parts of `spans` outside `pauses` (both sorted and disjoint): one pass over each."""
    index = 0
    for span_start, span_end in spans:
        cursor = span_start
        while cursor < span_end:
            while index < len(pauses) and pauses[index][1] <= cursor:
                index += 1
            if index == len(pauses) or pauses[index][0] >= span_end:
                yield cursor, span_end
                break
            pause_start, pause_end = pauses[index]
            if pause_start > cursor:
                yield cursor, pause_start
            cursor = pause_end


def _consume(spans: Iterable[tuple[dt.datetime, dt.datetime]], duration: dt.timedelta) -> dt.datetime:
    """The moment `duration` of the (non-empty, ordered) spans has run."""
    remaining = duration
    for start, end in spans:
        length = end - start
        if remaining <= length:
            return start + remaining
        remaining -= length
    # `_spans` without `until` never ends: it yields or raises ValueError.
    raise AssertionError("unbounded span walk ended")


# -- settings --------------------------------------------------------------------------------------------------

_HOURS_RE = re.compile(
    r"^(?P<days>.*?)\s+(?:(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})|(?P<closed>closed))$"
)
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})$")
_SPAN_RE = re.compile(r"^(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HOURS_EXAMPLE = "'mon-fri 09:00-18:00; sat-sun 10:00-16:00'"


def calendar_from_settings(
    timezone: str, hours: str, holidays: Sequence[str], workdays: Sequence[str], makeup_hours: str | None = None
) -> BusinessCalendar:
    """A calendar from settings strings.

    `hours` is `;`-separated clauses `<days> <HH:MM>-<HH:MM>` or `<days> closed`, where `<days>` is a weekday
    (mon … sun), a range (`mon-fri`; `fri-mon` wraps round the weekend) or a comma list of those. Days not
    mentioned are closed; "24:00" as an end means midnight. `holidays` and `workdays` are ISO dates
    (YYYY-MM-DD). Make-up workdays get `makeup_hours`, one day's span `<HH:MM>-<HH:MM>`; when it is None or
    blank, the Monday hours. Bad input raises ValueError saying what is wrong.
    """
    weekly = _parse_hours(hours)
    return BusinessCalendar(
        timezone=timezone,
        weekly=weekly,
        holidays=frozenset(_parse_dates(holidays, "holidays")),
        workdays=frozenset(_parse_dates(workdays, "workdays")),
        makeup_hours=_parse_makeup_hours(makeup_hours),
    )


def _parse_hours(text: str) -> dict[int, WorkingHours | None]:
    if not isinstance(text, str):
        raise ValueError(f"hours must be a string like {_HOURS_EXAMPLE}, got {type(text).__name__}")
    clauses = [clause.strip() for clause in text.split(";") if clause.strip()]
    if not clauses:
        raise ValueError(f"hours is empty; expected e.g. {_HOURS_EXAMPLE}")
    weekly: dict[int, WorkingHours | None] = {}
    for clause in clauses:
        match = _HOURS_RE.match(clause.lower())
        if match is None:
            raise ValueError(f"hours clause {clause!r}: expected '<days> HH:MM-HH:MM' or '<days> closed'")
        span: WorkingHours | None = None
        if match["closed"] is None:
            span = _parse_span(match["start"], match["end"], f"hours clause {clause!r}")
        for weekday in _parse_days(match["days"], clause):
            if weekday in weekly:
                raise ValueError(f"hours clause {clause!r}: {_WEEKDAY_NAMES[weekday]} is already given")
            weekly[weekday] = span
    return weekly


def _parse_days(text: str, clause: str) -> list[int]:
    days: list[int] = []
    for item in (part.strip() for part in text.split(",")):
        first, sep, last = (bound.strip() for bound in item.partition("-"))
        for name in (first, last) if sep else (first,):
            if name not in _WEEKDAY_NAMES:
                raise ValueError(f"hours clause {clause!r}: unknown weekday {name!r} (use {', '.join(_WEEKDAY_NAMES)})")
        lo = _WEEKDAY_NAMES.index(first)
        hi = _WEEKDAY_NAMES.index(last) if sep else lo
        days.extend((lo + offset) % 7 for offset in range((hi - lo) % 7 + 1))
    return days


def _parse_makeup_hours(text: str | None) -> WorkingHours | None:
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    match = _SPAN_RE.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"makeup_hours {text!r}: expected one span HH:MM-HH:MM, e.g. '09:00-18:00'")
    return _parse_span(match["start"], match["end"], f"makeup_hours {text!r}")


def _parse_span(start_text: str, end_text: str, where: str) -> WorkingHours:
    """One opening span; `where` says which setting it came from in errors."""
    start = _parse_time(start_text, where, allow_24=False)
    end = _parse_time(end_text, where, allow_24=True)
    if end == _MIDNIGHT and end_text != "24:00":
        raise ValueError(f"{where}: end 00:00 is ambiguous, write 24:00 for midnight")
    try:
        return WorkingHours(start, end)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc


def _parse_time(text: str, where: str, *, allow_24: bool) -> dt.time:
    match = _TIME_RE.match(text)
    hour, minute = (int(match[1]), int(match[2])) if match else (-1, -1)
    if allow_24 and (hour, minute) == (24, 0):
        return _MIDNIGHT
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ValueError(f"{where}: {text!r} is not a time HH:MM")
    return dt.time(hour, minute)


def _parse_dates(values: Sequence[str], name: str) -> list[dt.date]:
    # A bare string is a Sequence[str] too; iterating it would yield characters, so reject it by name.
    if isinstance(values, str):
        raise ValueError(f"{name} must be a list of ISO dates, got the single string {values!r}")
    days: list[dt.date] = []
    for index, value in enumerate(values):
        # fromisoformat alone also accepts '20261001' and week dates; settings should use one spelling.
        if not isinstance(value, str) or not _DATE_RE.match(value.strip()):
            raise ValueError(f"{name}[{index}]: {value!r} is not an ISO date YYYY-MM-DD")
        try:
            days.append(dt.date.fromisoformat(value.strip()))
        except ValueError as exc:
            raise ValueError(f"{name}[{index}]: {value!r} is not a valid date ({exc})") from exc
    return days


# -- defaults: mainland China 2026 ------------------------------------------------------------------------------
#
# DEFAULT DATA, NOT LOGIC. The 2026 closures and 调休 make-up working days as announced by the State Council
# General Office notice on the 2026 holiday arrangements (国务院办公厅关于2026年部分节假日安排的通知,
# 2025-11-04). The State Council publishes a new notice every year (usually in November), so these lists must be
# checked against the official notice each year and belong in configuration (the `holidays` / `workdays`
# settings); the constants are only a convenient, clearly-dated default for 2026 and say nothing about 2027.


def _days(first: str, last: str) -> frozenset[dt.date]:
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return frozenset(start + dt.timedelta(days=offset) for offset in range((end - start).days + 1))


CHINA_2026_HOLIDAYS: frozenset[dt.date] = (
    _days("2026-01-01", "2026-01-03")  # 元旦 Thu–Sat
    | _days("2026-02-15", "2026-02-23")  # 春节 Sun (腊月二十八) – Mon (正月初七), 9 days
    | _days("2026-04-04", "2026-04-06")  # 清明节 Sat–Mon
    | _days("2026-05-01", "2026-05-05")  # 劳动节 Fri–Tue
    | _days("2026-06-19", "2026-06-21")  # 端午节 Fri–Sun
    | _days("2026-09-25", "2026-09-27")  # 中秋节 Fri–Sun
    | _days("2026-10-01", "2026-10-07")  # 国庆节 Thu–Wed
)

CHINA_2026_WORKDAYS: frozenset[dt.date] = frozenset(
    dt.date.fromisoformat(day)
    for day in (
        "2026-01-04",  # Sun, for 元旦
        "2026-02-14",  # Sat, for 春节
        "2026-02-28",  # Sat, for 春节
        "2026-05-09",  # Sat, for 劳动节
        "2026-09-20",  # Sun, for 国庆节
        "2026-10-10",  # Sat, for 国庆节
    )
)
