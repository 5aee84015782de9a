from datetime import timedelta

import pytest

from matomo_posthog.timezones import UnknownTimezoneError, fixed_offset_seconds, local_wall_epoch, parse_timezone


@pytest.mark.parametrize(
    "name, hours",
    [("UTC", 0), ("UTC+5.5", 5.5), ("UTC-3", -3), ("UTC+14", 14), ("UTC+5.75", 5.75), ("UTC-9.5", -9.5)],
)
def test_matomo_fixed_offsets_parse_to_their_offset(name, hours):
    assert parse_timezone(name).utcoffset(None) == timedelta(hours=hours)
    assert fixed_offset_seconds(name) == int(hours * 3600)


def test_iana_name_has_no_fixed_offset():
    assert fixed_offset_seconds("Europe/Berlin") is None


@pytest.mark.parametrize("name", ["", "Mars/Olympus", "UTC+15", "GMT+x", None])
def test_unknown_timezones_are_refused_with_their_name(name):
    with pytest.raises(UnknownTimezoneError, match="site timezone"):
        parse_timezone(name)


def test_action_time_is_encoded_as_site_wall_clock():
    # Matomo's own UTC+14 fixture: a visit ending 2010-01-31 16:00 UTC shows action timestamp 1265004000.
    assert local_wall_epoch(1264953600, parse_timezone("UTC+14")) == 1265004000
