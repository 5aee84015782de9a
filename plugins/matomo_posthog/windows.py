"""Site-local days: which days a run covers, and where each day starts and ends in UTC.

Pure functions of their arguments: no clock, no Airflow. Matomo's ``period=day&date=D`` is the site's local
day D, so every window here is a local calendar day expressed as a half-open UTC interval.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone, tzinfo

# Airflow refuses to map a task over more elements than this (core.max_map_length).
MAX_DAYS_PER_RUN = 1024

# PostHog asks that historical data be at least this old when it is imported.
FINALITY = timedelta(hours=48)


def local_midnight_utc(day: date, tz: tzinfo) -> datetime:
    """The UTC instant at which the site-local day begins."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(timezone.utc)


def day_bounds_utc(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """``[start, end)`` of a site-local day in UTC; 23 or 25 hours long on DST change days."""
    return local_midnight_utc(day, tz), local_midnight_utc(day + timedelta(days=1), tz)


def days_between(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last``, both included."""
    if last < first:
        raise ValueError(f"the range ends ({last}) before it starts ({first})")
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def days_in_interval(start: datetime, end: datetime, tz: tzinfo) -> list[date]:
    """The site-local days that lie wholly in ``[start, end)``: the days a data interval covers."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("data interval bounds must be timezone-aware")
    first = start.astimezone(tz).date()
    if local_midnight_utc(first, tz) < start:
        first += timedelta(days=1)
    days = []
    day = first
    while local_midnight_utc(day + timedelta(days=1), tz) <= end:
        days.append(day)
        day += timedelta(days=1)
    return days


def is_final(day: date, tz: tzinfo, now: datetime) -> bool:
    """True once the day ended at least 48 hours before ``now``."""
    return day_bounds_utc(day, tz)[1] + FINALITY <= now


def final_at(day: date, tz: tzinfo) -> datetime:
    """When the day becomes final, in UTC."""
    return day_bounds_utc(day, tz)[1] + FINALITY


def _param_day(name: str, value: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"param {name} {value!r} is not a YYYY-MM-DD date") from None


def plan_days(
    start: str | None, end: str | None, interval_start: datetime, interval_end: datetime, tz: tzinfo
) -> list[str]:
    """ISO dates of a run's days: ``start``..``end`` when given (one alone means that day), else the interval's.

    Refuses more days than one run can map over.
    """
    if start or end:
        days = days_between(_param_day("start", start or end), _param_day("end", end or start))
    else:
        days = days_in_interval(interval_start, interval_end, tz)
    if len(days) > MAX_DAYS_PER_RUN:
        raise ValueError(
            f"{len(days)} days is more than one run can map over ({MAX_DAYS_PER_RUN}); "
            "split the range, or create a backfill so that each run covers one day"
        )
    return [day.isoformat() for day in days]
