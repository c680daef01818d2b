"""Deadlines in the street's own time: working days follow China's official calendar.

``chinese_calendar`` knows the State Council's public holidays and the make-up working days
(调休) for the years it covers; beyond them we fall back to Monday–Friday and say so in the log.
Deadlines are the end of the last allowed day in Beijing time.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

from backend.warnings.tables import DeadlineUnit

CHINA = ZoneInfo("Asia/Shanghai")
log = logging.getLogger("gridaid.calendar")


def is_working_day(day: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        log.warning("no official calendar for %s; counting Monday–Friday", day.year)
        return day.weekday() < 5


def add_working_days(start: date, days: int) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself does not count)."""
    current, counted = start, 0
    while counted < days:
        current += timedelta(days=1)
        if is_working_day(current):
            counted += 1
    return current


def due_at(start: datetime, amount: int, unit: DeadlineUnit | str) -> datetime:
    unit = DeadlineUnit(unit)
    if unit == DeadlineUnit.hours:
        return start + timedelta(hours=amount)
    local_day = start.astimezone(CHINA).date()
    if unit == DeadlineUnit.calendar_days:
        last = local_day + timedelta(days=amount)
    else:
        last = add_working_days(local_day, amount)
    return datetime.combine(last, time(23, 59, 59), tzinfo=CHINA)
