"""China's working-day calendar: public holidays off, make-up weekend days on, Mon–Fri beyond it.

Dates are the State Council's (chinese_calendar 1.11 knows 2004–2026):
- Spring Festival 2026: Sun 15 Feb – Mon 23 Feb off; Sat 14 Feb and Sat 28 Feb are working days.
- National Day 2025: Wed 1 – Wed 8 Oct off (with Mid-Autumn); Sun 28 Sep and Sat 11 Oct worked.
- National Day 2026: Thu 1 – Wed 7 Oct off; Sun 20 Sep and Sat 10 Oct worked.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta

import pytest

from backend.tasks.calendar import CHINA, add_working_days, due_at, is_working_day
from backend.tasks.escalation import working_days_late_cutoff


def beijing(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=CHINA)


@pytest.mark.parametrize(
    "day",
    [date(2026, 2, 16), date(2026, 2, 17), date(2026, 2, 20), date(2026, 2, 23), date(2025, 10, 1), date(2025, 10, 8)],
)
def test_weekday_public_holidays_are_not_working_days(day: date) -> None:
    assert day.weekday() < 5
    assert not is_working_day(day)


@pytest.mark.parametrize(
    "day", [date(2026, 2, 14), date(2026, 2, 28), date(2025, 9, 28), date(2025, 10, 11), date(2026, 10, 10)]
)
def test_make_up_weekend_days_are_working_days(day: date) -> None:
    assert day.weekday() >= 5
    assert is_working_day(day)


def test_ordinary_weeks_are_monday_to_friday() -> None:
    week = [date(2026, 3, 9) + timedelta(days=n) for n in range(7)]  # Mon 9 – Sun 15 Mar 2026
    assert [is_working_day(day) for day in week] == [True] * 5 + [False] * 2


def test_two_working_days_from_the_eve_of_national_day_end_after_the_holiday() -> None:
    # Wed 30 Sep 2026; 1–7 Oct are off; Thu 8 and Fri 9 Oct are the two working days.
    assert due_at(beijing(2026, 9, 30, 10, 0), 2, "working_days") == beijing(2026, 10, 9, 23, 59, 59)
    # 2025: the holiday runs to 8 Oct; Thu 9 and Fri 10 Oct.
    assert due_at(beijing(2025, 9, 30, 10, 0), 2, "working_days") == beijing(2025, 10, 10, 23, 59, 59)


def test_spring_festival_make_up_saturday_counts_and_the_holiday_does_not() -> None:
    # Fri 13 Feb 2026 + 1 working day = Sat 14 Feb, a make-up working day.
    assert due_at(beijing(2026, 2, 13, 9, 0), 1, "working_days") == beijing(2026, 2, 14, 23, 59, 59)
    # From that Saturday, 15–23 Feb are off: the next working day is Tue 24 Feb.
    assert add_working_days(date(2026, 2, 14), 1) == date(2026, 2, 24)


def test_the_start_day_is_beijing_local_not_utc() -> None:
    # 16:30 UTC on Fri 9 Oct is 00:30 on Sat 10 Oct (a make-up working day) in Beijing: one
    # working day after the 10th is Mon 12 Oct, not the 10th itself.
    start = datetime(2026, 10, 9, 16, 30, tzinfo=UTC)
    assert due_at(start, 1, "working_days") == beijing(2026, 10, 12, 23, 59, 59)


def test_calendar_days_ignore_holidays() -> None:
    assert due_at(beijing(2026, 9, 30, 10, 0), 2, "calendar_days") == beijing(2026, 10, 2, 23, 59, 59)


def test_hours_are_exact_and_ignore_the_calendar() -> None:
    start = datetime(2026, 9, 30, 6, 15, 30, tzinfo=UTC)
    assert due_at(start, 48, "hours") == start + timedelta(hours=48)


def test_a_year_the_calendar_does_not_know_falls_back_to_monday_to_friday(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gridaid.calendar"):
        # 1 Oct 2027 is a Friday: a holiday in reality, a working day by the fallback.
        assert is_working_day(date(2027, 10, 1))
        assert not is_working_day(date(2027, 10, 2))
    assert "2027" in caplog.text
    # Thu 31 Dec 2026 (known) + 2 working days: Fri 1 Jan 2027 and Mon 4 Jan 2027 (fallback).
    assert due_at(beijing(2026, 12, 31, 10, 0), 2, "working_days") == beijing(2027, 1, 4, 23, 59, 59)


def test_working_days_late_skips_the_holiday() -> None:
    # During the 2026 National Day holiday and on its first working day, the last working day
    # before today is still 30 Sep: a task due that evening is not yet a working day late.
    for now in (beijing(2026, 10, 5, 12, 0), beijing(2026, 10, 8, 23, 0)):
        assert working_days_late_cutoff(now, 1) == beijing(2026, 9, 30, 0, 0)
    assert working_days_late_cutoff(beijing(2026, 10, 9, 0, 0, 1), 1) == beijing(2026, 10, 8, 0, 0)
    # Sun 11 Oct: the make-up Saturday 10 Oct was a working day.
    assert working_days_late_cutoff(beijing(2026, 10, 11, 9, 0), 1) == beijing(2026, 10, 10, 0, 0)
    assert working_days_late_cutoff(beijing(2026, 10, 11, 9, 0), 2) == beijing(2026, 10, 9, 0, 0)


def test_working_days_late_agrees_with_the_deadline_rule() -> None:
    """A task due on day D is n working days late once the n-th working day after D has ended:
    the per-run cutoff gives the same answer as computing that deadline for each task."""
    dues = [
        datetime.combine(date(2026, 9, 15) + timedelta(days=n), t, tzinfo=CHINA)
        for n in range(30)
        for t in (time(9, 30), time(23, 59, 59))
    ]
    nows = [beijing(2026, 9, 20, 0, 30) + timedelta(hours=5 * n) for n in range(120)]
    for n in (1, 2):
        for now in nows:
            cutoff = working_days_late_cutoff(now, n)
            for due in dues:
                assert (due < cutoff) == (due_at(due, n, "working_days") < now), (n, now, due)
