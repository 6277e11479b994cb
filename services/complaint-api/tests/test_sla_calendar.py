"""The SLA business-hours calendar: hand-checked cases, DST robustness, settings parsing, and long adds against a
slow hour-by-hour reference walk."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest

from complaint_api.config import Settings
from complaint_api.sla.calendar import (
    CHINA_2026_HOLIDAYS,
    CHINA_2026_WORKDAYS,
    BusinessCalendar,
    Pause,
    WorkingHours,
    calendar_from_settings,
)

SH = ZoneInfo("Asia/Shanghai")  # UTC+8 all year
BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.UTC
H = dt.timedelta(hours=1)
NINE_TO_SIX = WorkingHours(dt.time(9), dt.time(18))


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=SH)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def office(
    holidays: frozenset[dt.date] = frozenset(),
    workdays: frozenset[dt.date] = frozenset(),
    makeup_hours: WorkingHours | None = None,
) -> BusinessCalendar:
    """Mon–Fri 09:00–18:00 in Shanghai, no holidays unless given."""
    return BusinessCalendar(
        weekly={day: NINE_TO_SIX for day in range(5)}, holidays=holidays, workdays=workdays, makeup_hours=makeup_hours
    )


def china_office() -> BusinessCalendar:
    """Mon–Fri 09:00–18:00 with the 2026 State Council closures and 调休 make-up days."""
    return office(holidays=CHINA_2026_HOLIDAYS, workdays=CHINA_2026_WORKDAYS)


# -- add ---------------------------------------------------------------------------------------------------------


def test_friday_afternoon_sla_is_due_monday_noon_in_utc() -> None:
    # Fri 2026-03-06 17:00 +08, 4 business hours: Fri 17–18 = 1 h, weekend closed, Mon 03-09 09:00 + 3 h
    # = 12:00 +08 = 04:00Z.
    due = office().add(sh(2026, 3, 6, 17), 4 * H)
    assert due == utc(2026, 3, 9, 4)
    assert due.tzinfo is UTC


def test_input_zone_does_not_matter() -> None:
    # Fri 17:00 +08 is Fri 09:00Z; same answer as above.
    assert office().add(utc(2026, 3, 6, 9), 4 * H) == utc(2026, 3, 9, 4)


def test_across_national_day_closure() -> None:
    # Wed 2026-09-30 16:00 +08, 8 h: Wed 16–18 = 2 h; 10-01..10-07 国庆 closed (Thu–Wed); next working day
    # Thu 10-08 09:00 + 6 h = 15:00 +08 = 07:00Z. (The make-up Saturday 10-10 comes later and does not matter.)
    assert china_office().add(sh(2026, 9, 30, 16), 8 * H) == utc(2026, 10, 8, 7)
    # Without the holidays it would be Thu 10-01 15:00 +08.
    assert office().add(sh(2026, 9, 30, 16), 8 * H) == utc(2026, 10, 1, 7)


def test_makeup_saturday_counts_as_open() -> None:
    cal = china_office()
    # Sat 2026-10-10 is a 调休 working day with the Monday hours; the next Saturday is closed.
    assert cal.is_open(sh(2026, 10, 10, 10))
    assert not cal.is_open(sh(2026, 10, 10, 8, 59))
    assert not cal.is_open(sh(2026, 10, 17, 10))
    # Fri 10-09 17:00, 2 h: Fri 17–18 = 1 h, Sat 10-10 09:00 + 1 h = 10:00 +08 = 02:00Z (not Monday).
    assert cal.add(sh(2026, 10, 9, 17), 2 * H) == utc(2026, 10, 10, 2)
    # Fri 09-18 17:00, 4 h: 1 h Fri, Sat 09-19 closed, Sun 09-20 make-up day 09:00 + 3 h = 12:00 +08 = 04:00Z.
    assert cal.add(sh(2026, 9, 18, 17), 4 * H) == utc(2026, 9, 20, 4)


def test_makeup_hours_override() -> None:
    cal = office(workdays=frozenset({dt.date(2026, 10, 10)}), makeup_hours=WorkingHours(dt.time(10), dt.time(15)))
    # Fri 10-09 17:00, 2 h: 1 h Fri, Sat 10:00 + 1 h = 11:00 +08 = 03:00Z.
    assert cal.add(sh(2026, 10, 9, 17), 2 * H) == utc(2026, 10, 10, 3)


def test_starting_outside_hours_counts_from_next_opening() -> None:
    cal = office()
    # Tue 2026-03-10 07:30 + 1 h: opens 09:00 -> 10:00 +08 = 02:00Z.
    assert cal.add(sh(2026, 3, 10, 7, 30), H) == utc(2026, 3, 10, 2)
    # Tue 20:00 + 1 h -> Wed 10:00 +08.
    assert cal.add(sh(2026, 3, 10, 20), H) == utc(2026, 3, 11, 2)
    # Sat 2026-03-07 11:00 + 1 h -> Mon 10:00 +08.
    assert cal.add(sh(2026, 3, 7, 11), H) == utc(2026, 3, 9, 2)
    # At 18:00 sharp the office is closed ([09:00, 18:00)): + 30 min -> Wed 09:30 +08.
    assert cal.add(sh(2026, 3, 10, 18), dt.timedelta(minutes=30)) == utc(2026, 3, 11, 1, 30)


def test_zero_duration_and_closing_time() -> None:
    cal = office()
    # Open: the start itself (in UTC). Closed: the next opening.
    assert cal.add(sh(2026, 3, 10, 11, 15), dt.timedelta(0)) == utc(2026, 3, 10, 3, 15)
    assert cal.add(sh(2026, 3, 7, 11), dt.timedelta(0)) == utc(2026, 3, 9, 1)
    assert cal.add(sh(2026, 3, 10, 18), dt.timedelta(0)) == utc(2026, 3, 11, 1)
    # Running out exactly at closing gives 18:00, not the next morning: Tue 17:00 + 1 h = 18:00 +08 = 10:00Z.
    assert cal.add(sh(2026, 3, 10, 17), H) == utc(2026, 3, 10, 10)


def test_is_open() -> None:
    cal = office()
    assert cal.is_open(sh(2026, 3, 10, 9))
    assert cal.is_open(sh(2026, 3, 10, 17, 59, 59))
    assert not cal.is_open(sh(2026, 3, 10, 18))
    assert not cal.is_open(sh(2026, 3, 8, 12))  # Sunday
    assert cal.is_open(utc(2026, 3, 10, 1))  # 09:00 +08


def test_negative_duration_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        office().add(sh(2026, 3, 10, 9), -H)


# -- between / elapsed -------------------------------------------------------------------------------------------


def test_between() -> None:
    cal = office()
    # Fri 17:00 -> Mon 12:00: 1 h + 3 h.
    assert cal.between(sh(2026, 3, 6, 17), sh(2026, 3, 9, 12)) == 4 * H
    # Whole weeks: Mon 00:00 -> next Mon 00:00 = 5 × 9 h.
    assert cal.between(sh(2026, 3, 9), sh(2026, 3, 16)) == 45 * H
    assert cal.between(sh(2026, 3, 9, 12), sh(2026, 3, 9, 12)) == dt.timedelta(0)
    # Wed 09-30 00:00 -> Sun 10-11 00:00 with 国庆: Wed 9 h, Thu 10-01..Wed 10-07 0, Thu 10-08 9 h, Fri 9 h,
    # Sat 10-10 make-up 9 h = 36 h.
    assert china_office().between(sh(2026, 9, 30), sh(2026, 10, 11)) == 36 * H
    with pytest.raises(ValueError, match="before start"):
        cal.between(sh(2026, 3, 9, 12), sh(2026, 3, 9, 11))


def test_elapsed_with_overlapping_pauses() -> None:
    cal = office()
    start, end = sh(2026, 3, 9, 9), sh(2026, 3, 11, 18)  # Mon 09:00 -> Wed 18:00 = 27 business hours
    assert cal.between(start, end) == 27 * H
    pauses: list[Pause] = [
        (sh(2026, 3, 9, 10), sh(2026, 3, 9, 12)),  # Mon 10–12 ┐ overlap: union Mon 10–14 = 4 h
        (sh(2026, 3, 9, 11), sh(2026, 3, 9, 14)),  # Mon 11–14 ┘
        (sh(2026, 3, 10, 17), sh(2026, 3, 11, 10)),  # Tue 17 -> Wed 10: Tue 17–18 + Wed 09–10 = 2 h
        (sh(2026, 3, 8, 12), sh(2026, 3, 9, 9, 30)),  # sticks out before start: only Mon 09:00–09:30 = 0.5 h
        (sh(2026, 3, 11, 17, 30), None),  # open: runs to `end`, Wed 17:30–18:00 = 0.5 h
        (sh(2026, 3, 12, 9), sh(2026, 3, 12, 12)),  # entirely after `end`: 0
    ]
    # 27 h − (4 + 2 + 0.5 + 0.5) h = 20 h.
    assert cal.elapsed(start, end, pauses) == 20 * H
    assert cal.elapsed(start, end, []) == 27 * H
    # The pause list order does not matter.
    assert cal.elapsed(start, end, pauses[::-1]) == 20 * H


def test_elapsed_pause_covering_everything() -> None:
    cal = office()
    start, end = sh(2026, 3, 9, 9), sh(2026, 3, 11, 18)
    assert cal.elapsed(start, end, [(sh(2026, 3, 1), None)]) == dt.timedelta(0)


# -- due ---------------------------------------------------------------------------------------------------------


def test_due_without_pauses_equals_add() -> None:
    cal = office()
    assert cal.due(sh(2026, 3, 6, 17), 4 * H) == utc(2026, 3, 9, 4)


def test_closed_pause_pushes_due_by_business_time_inside_it() -> None:
    cal = office()
    start = sh(2026, 3, 9, 9)  # Mon 09:00; 8 h unpaused -> Mon 17:00
    assert cal.due(start, 8 * H) == sh(2026, 3, 9, 17)
    # Pause Mon 10:00–14:00 holds 4 business hours -> due = add(start, 12 h): Mon 9 h to 18:00, Tue 09:00 + 3 h
    # = Tue 12:00 +08 = 04:00Z.
    pause_start, pause_end = sh(2026, 3, 9, 10), sh(2026, 3, 9, 14)
    pause: Pause = (pause_start, pause_end)
    assert cal.between(pause_start, pause_end) == 4 * H
    due = cal.due(start, 8 * H, [pause])
    assert due is not None
    assert due == utc(2026, 3, 10, 4)
    assert due == cal.add(start, 8 * H + 4 * H)
    assert cal.elapsed(start, due, [pause]) == 8 * H

    # Overnight pause Mon 17:00 -> Tue 10:00 holds 2 business hours (Mon 17–18, Tue 09–10). 16 h unpaused is
    # Tue 16:00; paused: Mon 09–17 = 8 h, stopped, Tue 10–18 = 8 h -> Tue 18:00 +08 = 10:00Z.
    overnight: Pause = (sh(2026, 3, 9, 17), sh(2026, 3, 10, 10))
    assert cal.due(start, 16 * H) == sh(2026, 3, 10, 16)
    assert cal.due(start, 16 * H, [overnight]) == utc(2026, 3, 10, 10)


def test_pauses_outside_hours_or_before_start_change_nothing() -> None:
    cal = office()
    start = sh(2026, 3, 9, 9)
    pauses: list[Pause] = [
        (sh(2026, 3, 7, 9), sh(2026, 3, 8, 20)),  # the weekend before
        (sh(2026, 3, 9, 19), sh(2026, 3, 10, 8)),  # Mon night, closed
        (sh(2026, 3, 2, 9), sh(2026, 3, 6, 18)),  # last week, before start
    ]
    assert cal.due(start, 16 * H, pauses) == cal.add(start, 16 * H) == sh(2026, 3, 10, 16)


def test_overlapping_pauses_push_once() -> None:
    cal = office()
    start = sh(2026, 3, 9, 9)
    # Mon 10–12 and 11–14 overlap: 4 h in total, as in the single-pause case.
    pauses: list[Pause] = [(sh(2026, 3, 9, 11), sh(2026, 3, 9, 14)), (sh(2026, 3, 9, 10), sh(2026, 3, 9, 12))]
    assert cal.due(start, 8 * H, pauses) == utc(2026, 3, 10, 4)


def test_open_pause_means_no_due_time() -> None:
    cal = office()
    start = sh(2026, 3, 9, 9)
    assert cal.due(start, 8 * H, [(sh(2026, 3, 9, 10), sh(2026, 3, 9, 11)), (sh(2026, 3, 9, 12), None)]) is None


def test_bad_pauses_rejected() -> None:
    cal = office()
    start = sh(2026, 3, 9, 9)
    with pytest.raises(ValueError, match="before it starts"):
        cal.due(start, H, [(sh(2026, 3, 9, 12), sh(2026, 3, 9, 11))])
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.due(start, H, [(dt.datetime(2026, 3, 9, 12), None)])


# -- naive datetimes ---------------------------------------------------------------------------------------------


def test_naive_datetimes_rejected() -> None:
    cal = office()
    naive = dt.datetime(2026, 3, 9, 9)
    aware = sh(2026, 3, 9, 9)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.is_open(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.add(naive, H)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.between(aware, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.elapsed(naive, aware, [])
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.elapsed(aware, aware + H, [(aware, naive)])
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.due(naive, H)


# -- DST robustness (Europe/Berlin: 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00) -----------------------


def test_dst_spring_forward_office_hours() -> None:
    cal = BusinessCalendar(timezone="Europe/Berlin", weekly={day: NINE_TO_SIX for day in range(5)})
    # Fri 03-27 17:00 CET (16:00Z) + 2 h: Fri 17–18 = 1 h, Mon 03-30 09:00 CEST (07:00Z) + 1 h = 08:00Z.
    assert cal.add(dt.datetime(2026, 3, 27, 17, tzinfo=BERLIN), 2 * H) == utc(2026, 3, 30, 8)
    # The wall-clock hours are kept on both sides of the change: 09:00 local is 08:00Z before, 07:00Z after.
    assert cal.is_open(utc(2026, 3, 27, 8)) and not cal.is_open(utc(2026, 3, 27, 7, 59))
    assert cal.is_open(utc(2026, 3, 30, 7)) and not cal.is_open(utc(2026, 3, 30, 6, 59))


def test_dst_days_are_23_and_25_hours_long_round_the_clock() -> None:
    cal = calendar_from_settings("Europe/Berlin", "mon-sun 00:00-24:00", [], [])
    # Sun 2026-03-29 lasts 23 real hours, Sun 2026-10-25 lasts 25.
    assert cal.between(dt.datetime(2026, 3, 29, tzinfo=BERLIN), dt.datetime(2026, 3, 30, tzinfo=BERLIN)) == 23 * H
    assert cal.between(dt.datetime(2026, 10, 25, tzinfo=BERLIN), dt.datetime(2026, 10, 26, tzinfo=BERLIN)) == 25 * H
    # Sat 03-28 12:00 CET (11:00Z) + 24 h of open time = Sun 12:00Z = 14:00 CEST.
    assert cal.add(dt.datetime(2026, 3, 28, 12, tzinfo=BERLIN), 24 * H) == utc(2026, 3, 29, 11)
    assert cal.is_open(utc(2026, 3, 29, 1, 30))  # the "missing" wall-clock hour is still open real time


# -- calendars that never open ------------------------------------------------------------------------------------


def test_never_open_calendar_rejected() -> None:
    with pytest.raises(ValueError, match="never open"):
        BusinessCalendar(weekly={})
    with pytest.raises(ValueError, match="never open"):
        BusinessCalendar(weekly=dict.fromkeys(range(7)))


def test_calendar_that_stops_opening_raises_instead_of_looping() -> None:
    # Open only on one make-up day; asking after it would scan forever without the 3-year cap.
    cal = BusinessCalendar(
        weekly={}, workdays=frozenset({dt.date(2026, 10, 10)}), makeup_hours=WorkingHours(dt.time(9), dt.time(18))
    )
    assert cal.add(sh(2026, 10, 1), H) == sh(2026, 10, 10, 10)
    with pytest.raises(ValueError, match="no opening within"):
        cal.add(sh(2026, 11, 1), H)
    with pytest.raises(ValueError, match="no opening within"):
        cal.due(sh(2026, 11, 1), H)
    # Bounded queries need no cap.
    assert cal.between(sh(2026, 11, 1), sh(2030, 1, 1)) == dt.timedelta(0)


def test_calendar_validation() -> None:
    with pytest.raises(ValueError, match="after start"):
        WorkingHours(dt.time(18), dt.time(9))
    with pytest.raises(ValueError, match="weekdays 0"):
        BusinessCalendar(weekly={7: NINE_TO_SIX})
    with pytest.raises(ValueError, match="unknown time zone"):
        BusinessCalendar(timezone="Mars/Olympus_Mons", weekly={0: NINE_TO_SIX})
    with pytest.raises(ValueError, match="Monday is closed"):
        BusinessCalendar(weekly={5: NINE_TO_SIX}, workdays=frozenset({dt.date(2026, 10, 10)}))
    with pytest.raises(ValueError, match="both holiday and make-up"):
        office(holidays=frozenset({dt.date(2026, 10, 10)}), workdays=frozenset({dt.date(2026, 10, 10)}))


# -- settings ----------------------------------------------------------------------------------------------------


def test_calendar_from_settings() -> None:
    cal = calendar_from_settings(
        "Asia/Shanghai", "mon-fri 09:00-18:00; sat-sun 10:00-16:00", ["2026-10-01", "2026-10-02"], ["2026-10-10"]
    )
    assert cal.timezone == "Asia/Shanghai"
    assert cal.weekly[0] == NINE_TO_SIX and cal.weekly[4] == NINE_TO_SIX
    assert cal.weekly[5] == cal.weekly[6] == WorkingHours(dt.time(10), dt.time(16))
    assert cal.holidays == {dt.date(2026, 10, 1), dt.date(2026, 10, 2)}
    assert cal.workdays == {dt.date(2026, 10, 10)}
    # The make-up Saturday gets the Monday hours (09:00), not the Saturday ones (10:00).
    assert cal.is_open(sh(2026, 10, 10, 9, 30)) and not cal.is_open(sh(2026, 10, 17, 9, 30))

    every_day = calendar_from_settings("Asia/Shanghai", "mon-sun 09:00-21:00", [], [])
    assert all(every_day.weekly[day] == WorkingHours(dt.time(9), dt.time(21)) for day in range(7))

    # Case and spacing are forgiven; fri-mon wraps round the weekend; wed is explicitly closed, thu unmentioned.
    mixed = calendar_from_settings(
        "Asia/Shanghai", " TUE,sat 9:00 - 12:00 ; fri,sun-mon 08:00-24:00; wed closed; ", [], []
    )
    assert mixed.weekly[0] == mixed.weekly[4] == mixed.weekly[6] == WorkingHours(dt.time(8), dt.time(0))
    assert mixed.weekly[1] == mixed.weekly[5] == WorkingHours(dt.time(9), dt.time(12))
    assert mixed.weekly[2] is None and 3 not in mixed.weekly
    assert mixed.is_open(sh(2026, 3, 9, 23, 59)) and not mixed.is_open(sh(2026, 3, 10, 0))  # Mon till midnight
    wrapped = calendar_from_settings("Asia/Shanghai", "fri-mon 10:00-20:00", [], [])
    assert sorted(wrapped.weekly) == [0, 4, 5, 6]


def test_makeup_hours_from_settings() -> None:
    # Monday closed: the make-up Saturday needs hours of its own.
    cal = calendar_from_settings("Asia/Shanghai", "tue-sun 09:00-21:00", [], ["2026-10-10"], " 10:00 - 16:00 ")
    assert cal.makeup_hours == WorkingHours(dt.time(10), dt.time(16))
    assert cal.is_open(sh(2026, 10, 10, 10)) and not cal.is_open(sh(2026, 10, 10, 9, 30))  # Saturday: 10:00–16:00
    assert cal.is_open(sh(2026, 10, 17, 9, 30))  # an ordinary Saturday keeps 09:00–21:00
    assert not cal.is_open(sh(2026, 10, 12, 10))  # Monday is closed
    assert cal.add(sh(2026, 10, 10, 15, 30), H) == sh(2026, 10, 11, 9, 30)  # half an hour left on Saturday
    # Unset or blank: the Monday hours, as before.
    for unset in (None, "", "  "):
        monday = calendar_from_settings("Asia/Shanghai", "mon-fri 09:00-18:00", [], ["2026-10-10"], unset)
        assert monday.hours_on(dt.date(2026, 10, 10)) == NINE_TO_SIX
    with pytest.raises(ValueError, match="Monday is closed: set makeup_hours"):
        calendar_from_settings("Asia/Shanghai", "tue-sun 09:00-21:00", [], ["2026-10-10"])
    # Without make-up workdays a closed Monday needs nothing.
    assert calendar_from_settings("Asia/Shanghai", "tue-sun 09:00-21:00", [], []).makeup_hours is None


@pytest.mark.parametrize(
    ("makeup", "message"),
    [
        ("mon 09:00-18:00", "expected one span HH:MM-HH:MM"),
        ("closed", "expected one span HH:MM-HH:MM"),
        ("09:00-18:00; 19:00-20:00", "expected one span HH:MM-HH:MM"),
        ("18:00-09:00", r"makeup_hours '18:00-09:00': WorkingHours end 09:00:00 must be after start"),
        ("09:00-00:00", "write 24:00"),
        ("09:00-25:00", "not a time"),
    ],
)
def test_bad_makeup_hours(makeup: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        calendar_from_settings("Asia/Shanghai", "mon-fri 09:00-18:00", [], ["2026-10-10"], makeup)


def test_the_service_settings_name_the_makeup_hours_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COMPLAINT_API_WORKDAYS", "COMPLAINT_API_MAKEUP_HOURS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COMPLAINT_API_BUSINESS_HOURS", "tue-sun 09:00-21:00")
    # The default workdays are the 2026 调休 days, so a closed Monday needs the setting.
    with pytest.raises(ValueError, match=r"Monday is closed .*: set COMPLAINT_API_MAKEUP_HOURS"):
        Settings().calendar()
    monkeypatch.setenv("COMPLAINT_API_MAKEUP_HOURS", "09:00-18:00")
    cal = Settings().calendar()
    assert cal.hours_on(dt.date(2026, 10, 10)) == NINE_TO_SIX  # a 2026 make-up Saturday
    assert cal.hours_on(dt.date(2026, 10, 12)) is None  # Monday


def test_calendar_from_settings_mon_twice_via_wrap() -> None:
    with pytest.raises(ValueError, match="mon is already given"):
        calendar_from_settings("Asia/Shanghai", "mon 09:00-12:00; fri-mon 08:00-20:00", [], [])


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ("", "hours is empty"),
        (" ; ", "hours is empty"),
        ("mon-fri", "expected '<days> HH:MM-HH:MM'"),
        ("09:00-18:00", "expected '<days> HH:MM-HH:MM'"),
        ("mon-fri 18:00-09:00", "must be after start"),
        ("mon-fri 09:00-09:00", "must be after start"),
        ("mon-fri 09:00-00:00", "write 24:00"),
        ("mon-fri 25:00-26:00", "not a time"),
        ("mon-fri 09:60-18:00", "not a time"),
        ("mon-fru 09:00-18:00", "unknown weekday 'fru'"),
        ("weekdays 09:00-18:00", "unknown weekday"),
        ("mon-fri 09:00-18:00; fri 10:00-12:00", "fri is already given"),
        ("sat closed; sun closed", "never open"),
    ],
)
def test_calendar_from_settings_bad_hours(hours: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        calendar_from_settings("Asia/Shanghai", hours, [], [])


def test_calendar_from_settings_bad_dates_and_zone() -> None:
    good = "mon-fri 09:00-18:00"
    with pytest.raises(ValueError, match=r"holidays\[1\]: '2026-13-01' is not a valid date"):
        calendar_from_settings("Asia/Shanghai", good, ["2026-10-01", "2026-13-01"], [])
    with pytest.raises(ValueError, match=r"workdays\[0\]: '10/10/2026' is not an ISO date"):
        calendar_from_settings("Asia/Shanghai", good, [], ["10/10/2026"])
    with pytest.raises(ValueError, match="single string"):
        calendar_from_settings("Asia/Shanghai", good, "2026-10-01", [])
    with pytest.raises(ValueError, match="both holiday and make-up"):
        calendar_from_settings("Asia/Shanghai", good, ["2026-10-10"], ["2026-10-10"])
    with pytest.raises(ValueError, match="unknown time zone 'Asia/Beijing'"):
        calendar_from_settings("Asia/Beijing", good, [], [])


# -- the 2026 defaults -------------------------------------------------------------------------------------------


def test_china_2026_defaults_shape() -> None:
    # 3 + 9 + 3 + 5 + 3 + 3 + 7 closure days; six make-up days, all on weekends and none a holiday.
    assert len(CHINA_2026_HOLIDAYS) == 33
    assert {dt.date(2026, 2, 17), dt.date(2026, 10, 1), dt.date(2026, 10, 7)} <= CHINA_2026_HOLIDAYS
    assert len(CHINA_2026_WORKDAYS) == 6
    assert all(day.weekday() >= 5 for day in CHINA_2026_WORKDAYS)
    assert not CHINA_2026_HOLIDAYS & CHINA_2026_WORKDAYS
    assert all(day.year == 2026 for day in CHINA_2026_HOLIDAYS | CHINA_2026_WORKDAYS)


# -- long adds against a slow reference ----------------------------------------------------------------------------

# A fixed-offset zone keeps the reference simple (wall time = UTC + 8 h); the calendar has whole-hour spans so the
# reference may step hour by hour: every segment [t, next whole hour) is entirely open or entirely closed.
REF_HOURS = {0: (9, 18), 1: (9, 18), 2: (9, 18), 3: (9, 18), 4: (9, 18), 5: (10, 16)}
REF_MAKEUP = (9, 18)


def ref_calendar() -> BusinessCalendar:
    return calendar_from_settings(
        "Asia/Shanghai",
        "mon-fri 09:00-18:00; sat 10:00-16:00",
        [day.isoformat() for day in CHINA_2026_HOLIDAYS],
        [day.isoformat() for day in CHINA_2026_WORKDAYS],
    )


def ref_open(local: dt.datetime) -> bool:
    day = local.date()
    if day in CHINA_2026_HOLIDAYS:
        return False
    hours = REF_MAKEUP if day in CHINA_2026_WORKDAYS else REF_HOURS.get(day.weekday())
    return hours is not None and hours[0] <= local.hour < hours[1]


def ref_add(start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
    """Walk hour by hour in Shanghai wall time; return the earliest moment `duration` of open time has passed
    (for a zero duration: the first open moment)."""
    t = start.astimezone(SH).replace(tzinfo=None)
    remaining = duration
    while True:
        next_hour = t.replace(minute=0, second=0, microsecond=0) + H
        if ref_open(t):
            if remaining <= next_hour - t:
                return (t + remaining).replace(tzinfo=SH).astimezone(UTC)
            remaining -= next_hour - t
        t = next_hour


def ref_between(start: dt.datetime, end: dt.datetime) -> dt.timedelta:
    t, stop = start.astimezone(SH).replace(tzinfo=None), end.astimezone(SH).replace(tzinfo=None)
    total = dt.timedelta(0)
    while t < stop:
        step_end = min(t.replace(minute=0, second=0, microsecond=0) + H, stop)
        if ref_open(t):
            total += step_end - t
        t = step_end
    return total


def random_moment(rng: random.Random) -> dt.datetime:
    return sh(2026, 1, 1) + dt.timedelta(minutes=rng.randrange(365 * 24 * 60))


def test_long_adds_match_hour_by_hour_reference() -> None:
    cal = ref_calendar()
    rng = random.Random(20261001)
    cases = [(random_moment(rng), dt.timedelta(minutes=rng.randrange(2_000 * 60 + 1))) for _ in range(12)]
    cases += [(sh(2026, 9, 30, 16), 2_000 * H), (sh(2026, 2, 13, 17, 30), dt.timedelta(0))]
    for start, duration in cases:
        expected = ref_add(start, duration)
        assert cal.add(start, duration) == expected, (start, duration)
        assert cal.between(start, expected) == duration, (start, duration)


def test_between_matches_reference() -> None:
    cal = ref_calendar()
    rng = random.Random(7)
    for _ in range(20):
        a, b = sorted((random_moment(rng), random_moment(rng)))
        assert cal.between(a, b) == ref_between(a, b), (a, b)


def test_due_and_elapsed_agree_with_random_pauses() -> None:
    # Definition check: the clock has run exactly `duration` at the due time, and due never comes earlier than
    # the unpaused add; the pauses hold exactly the difference.
    cal = ref_calendar()
    rng = random.Random(42)
    for _ in range(30):
        start = random_moment(rng)
        duration = dt.timedelta(minutes=rng.randrange(1, 300 * 60))
        pauses: list[Pause] = []
        for _ in range(rng.randrange(0, 6)):
            pause_start = start + dt.timedelta(minutes=rng.randrange(-3 * 24 * 60, 60 * 24 * 60))
            pauses.append((pause_start, pause_start + dt.timedelta(minutes=rng.randrange(0, 5 * 24 * 60))))
        due = cal.due(start, duration, pauses)
        assert due is not None
        assert cal.elapsed(start, due, pauses) == duration, (start, duration, pauses)
        assert due >= cal.add(start, duration)
        # ... and not a microsecond earlier.
        assert cal.elapsed(start, due - dt.timedelta(microseconds=1), pauses) < duration
