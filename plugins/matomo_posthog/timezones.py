"""Matomo site timezones: IANA names and Matomo's fixed-offset form (``UTC``, ``UTC+5.5``, ``UTC-3``)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_FIXED_OFFSET = re.compile(r"^UTC(?:([+-])(\d{1,2}(?:\.\d+)?))?$")


class UnknownTimezoneError(ValueError):
    """A site timezone that is neither an IANA name nor Matomo's ``UTC±H[.fraction]`` form."""


def parse_timezone(name: str) -> tzinfo:
    """Return the tzinfo for a Matomo site timezone such as ``Europe/Berlin`` or ``UTC+5.5``."""
    if not isinstance(name, str) or not name.strip():
        raise UnknownTimezoneError(f"site timezone {name!r} is empty or not a string")
    match = _FIXED_OFFSET.match(name.strip())
    if match:
        sign, hours = match.groups()
        offset = timedelta(hours=float(hours or 0)) * (-1 if sign == "-" else 1)
        if abs(offset) > timedelta(hours=14):
            raise UnknownTimezoneError(f"site timezone {name!r} is more than 14 hours from UTC")
        return timezone(offset, name) if offset else timezone.utc
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownTimezoneError(
            f"site timezone {name!r} is not an IANA name (Europe/Berlin) nor a fixed offset (UTC+5.5)"
        ) from exc


def fixed_offset_seconds(name: str) -> int | None:
    """Seconds east of UTC for Matomo's fixed-offset form, or None for an IANA name."""
    tz = parse_timezone(name)
    return int(tz.utcoffset(None).total_seconds()) if isinstance(tz, timezone) else None


_EPOCH = datetime(1970, 1, 1)


def local_wall_epoch(utc_seconds: float, tz: tzinfo) -> int:
    """Encode a UTC instant as Matomo encodes action times: the site's wall clock read as if it were UTC."""
    wall = datetime.fromtimestamp(utc_seconds, tz).replace(tzinfo=None)
    return int((wall - _EPOCH).total_seconds())
