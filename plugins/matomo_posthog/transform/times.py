"""Turning Matomo's times into true UTC instants.

Matomo's visit fields ``firstActionTimestamp``, ``lastActionTimestamp``, ``serverTimestamp`` and
``lastActionDateTime`` are real UTC. Each action's ``timestamp`` is not: it is the site's local wall clock written
as if it were UTC (plugins/Actions/VisitorDetails.php builds it from a Date in the site timezone). Converting it back
needs the site timezone, and in the hour that repeats when clocks fall back one wall time names two instants: the
visit's real UTC bounds tell which one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any

from matomo_posthog.timezones import parse_timezone
from matomo_posthog.transform.values import integer, number, text

_EPOCH = datetime(1970, 1, 1)

# Times outside these years are garbage rather than history (Matomo's first release was 2007).
EARLIEST = datetime(1990, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)


class BadTime(ValueError):
    """A time field that is present but not a usable number of seconds."""


@lru_cache(maxsize=64)
def site_timezone(name: str) -> tzinfo:
    """The tzinfo of a Matomo site timezone, parsed once per name."""
    return parse_timezone(name)


def is_absent(value: Any) -> bool:
    """True for the ways Matomo leaves a field empty."""
    return value is None or (isinstance(value, str) and not value.strip())


def epoch_seconds(value: Any) -> float:
    """Seconds since the epoch from an int, float or numeric string; raises BadTime for anything else."""
    seconds = number(value)
    if seconds is None:
        raise BadTime("is not a number")
    if not EARLIEST.timestamp() <= seconds < LATEST.timestamp():
        raise BadTime(f"is out of range ({seconds})")
    return seconds


def utc_from_epoch(seconds: float) -> datetime:
    """A UTC datetime rounded to the millisecond (PostHog keeps milliseconds)."""
    return datetime.fromtimestamp(round(seconds * 1000) / 1000, timezone.utc)


def iso(instant: datetime) -> str:
    """The event timestamp PostHog receives: UTC, ISO 8601, e.g. ``2024-03-31T00:30:00.123000+00:00``."""
    return instant.astimezone(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class VisitBounds:
    """The visit's first and last action as real UTC instants, when Matomo sent them."""

    first: datetime | None = None
    last: datetime | None = None

    def distance(self, instant: datetime) -> float:
        """Seconds from ``instant`` to the nearest bound, 0 inside the bounds or when there are none."""
        if self.first and instant < self.first:
            return (self.first - instant).total_seconds()
        if self.last and instant > self.last:
            return (instant - self.last).total_seconds()
        return 0.0


def _read_utc_field(visit: dict, field: str, problems: list[str]) -> datetime | None:
    value = visit.get(field)
    if is_absent(value):
        return None
    try:
        return utc_from_epoch(epoch_seconds(value))
    except BadTime as exc:
        problems.append(f"{field} {exc}")
        return None


def _read_datetime_text(visit: dict, field: str, problems: list[str]) -> datetime | None:
    value = visit.get(field)
    if is_absent(value):
        return None
    try:
        parsed = datetime.strptime(text(value) or "", "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        problems.append(f"{field} is not a 'YYYY-MM-DD HH:MM:SS' date")
        return None
    if not EARLIEST <= parsed < LATEST:
        problems.append(f"{field} is out of range ({value})")
        return None
    return parsed


def visit_bounds(visit: dict, problems: list[str]) -> VisitBounds:
    """The visit's real UTC bounds from whichever of Matomo's UTC fields are present.

    The last action comes from ``lastActionTimestamp``, else ``serverTimestamp`` (the same value), else
    ``lastActionDateTime`` (the same instant as text, kept by exports that ask for few columns). Without
    ``firstActionTimestamp`` the first action is the last one minus ``visitDuration``, which Matomo computes
    exactly that way.
    """
    last = (
        _read_utc_field(visit, "lastActionTimestamp", problems)
        or _read_utc_field(visit, "serverTimestamp", problems)
        or _read_datetime_text(visit, "lastActionDateTime", problems)
    )
    first = _read_utc_field(visit, "firstActionTimestamp", problems)
    duration = integer(visit.get("visitDuration"))
    if first is None and last is not None and duration is not None and duration >= 0:
        first = last - timedelta(seconds=duration)
    if first and last and first > last:
        problems.append("firstActionTimestamp is after lastActionTimestamp")
        first = last = None
    return VisitBounds(first, last)


def action_time(wall_seconds: float, tz: tzinfo, bounds: VisitBounds, previous: datetime | None) -> datetime:
    """The UTC instant of an action whose Matomo ``timestamp`` is ``wall_seconds`` (site wall clock as epoch).

    A wall time in the repeated hour of a fall-back change has two candidate instants: the one closest to the
    visit's UTC bounds wins (inside them, normally), then the one not before the previous action, then the earlier.
    A wall time in the hour skipped when clocks spring forward cannot come from Matomo's own conversion; it is
    read with the offset in force before the change, which moves it forward by the length of the gap.
    """
    naive = _EPOCH + timedelta(milliseconds=round(wall_seconds * 1000))
    candidates: list[datetime] = []
    for fold in (0, 1):
        instant = naive.replace(tzinfo=tz, fold=fold).astimezone(timezone.utc)
        if instant.astimezone(tz).replace(tzinfo=None) == naive and instant not in candidates:
            candidates.append(instant)
    if not candidates:
        return naive.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)
    return min(
        candidates,
        key=lambda instant: (bounds.distance(instant), previous is not None and instant < previous, instant),
    )
