from datetime import datetime, timedelta, timezone

import pytest

from matomo_posthog.timezones import local_wall_epoch, parse_timezone
from matomo_posthog.transform import SiteContext, transform_visit
from matomo_posthog.transform.times import (
    BadTime,
    VisitBounds,
    action_time,
    epoch_seconds,
    iso,
    utc_from_epoch,
    visit_bounds,
)

UTC = timezone.utc
BERLIN = parse_timezone("Europe/Berlin")


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def pageview_visit(first, last, *instants, tz):
    """A visit whose pageviews happened at the given UTC instants, with timestamps encoded as Matomo does."""
    return {
        "idSite": 1,
        "idVisit": 42,
        "firstActionTimestamp": int(first.timestamp()),
        "lastActionTimestamp": int(last.timestamp()),
        "actionDetails": [
            {"type": "action", "url": f"https://example.org/{n}", "timestamp": local_wall_epoch(t.timestamp(), tz)}
            for n, t in enumerate(instants)
        ],
    }


def pageview_times(result):
    return [event["timestamp"] for event in result.events if event["event"] == "$pageview"]


def test_utc_plus_14_fixture_action_lands_on_its_true_utc_instant(load_fixture):
    visits = load_fixture("test_utcPlus__Live.getVisitorProfile.json")
    visit = next(v for v in visits if v["idVisit"] == 6)
    assert visit["lastActionTimestamp"] == 1264953600 and visit["actionDetails"][0]["timestamp"] == 1265004000

    result = transform_visit(visit, SiteContext(site_id=2, timezone="UTC+14"))

    assert result.error is None
    assert pageview_times(result) == ["2010-01-31T16:00:00.000000+00:00"]


def test_every_utc_plus_14_visit_matches_its_utc_bounds(load_fixture):
    for visit in load_fixture("test_utcPlus__Live.getVisitorProfile.json"):
        result = transform_visit(visit, SiteContext(site_id=2, timezone="UTC+14"))
        expected = datetime.fromtimestamp(visit["firstActionTimestamp"], UTC)
        assert pageview_times(result) == [iso(expected)]


def test_spring_forward_in_berlin_keeps_actions_on_both_sides_in_order():
    # 2024-03-31: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
    before, after = utc(2024, 3, 31, 0, 30), utc(2024, 3, 31, 1, 30)
    visit = pageview_visit(before, after, before, after, tz=BERLIN)
    assert [a["timestamp"] for a in visit["actionDetails"]] == [
        int((datetime(2024, 3, 31, 1, 30) - datetime(1970, 1, 1)).total_seconds()),
        int((datetime(2024, 3, 31, 3, 30) - datetime(1970, 1, 1)).total_seconds()),
    ]

    result = transform_visit(visit, SiteContext(site_id=1, timezone="Europe/Berlin"))

    assert pageview_times(result) == [iso(before), iso(after)]


def test_a_wall_time_in_the_skipped_spring_hour_is_shifted_forward():
    wall = (datetime(2024, 3, 31, 2, 30) - datetime(1970, 1, 1)).total_seconds()  # never shown by a Berlin clock
    assert action_time(wall, BERLIN, VisitBounds(), None) == utc(2024, 3, 31, 1, 30)  # 03:30 CEST


@pytest.mark.parametrize("instant", [utc(2024, 10, 27, 0, 30), utc(2024, 10, 27, 1, 30)])
def test_fall_back_repeated_hour_is_resolved_by_the_visits_utc_bounds(instant):
    # 2024-10-27: 03:00 CEST becomes 02:00 CET at 01:00 UTC, so local 02:30 happens at 00:30 and at 01:30 UTC.
    visit = pageview_visit(instant, instant, instant, tz=BERLIN)
    local = datetime(2024, 10, 27, 2, 30)
    assert visit["actionDetails"][0]["timestamp"] == (local - datetime(1970, 1, 1)).total_seconds()

    result = transform_visit(visit, SiteContext(site_id=1, timezone="Europe/Berlin"))

    assert result.error is None
    assert pageview_times(result) == [iso(instant)]


def test_fall_back_actions_of_a_visit_spanning_both_folds_stay_in_order():
    # 02:50 CEST (00:50 UTC), then 02:10 CET (01:10 UTC): the second wall time is earlier but the action later.
    first, second = utc(2024, 10, 27, 0, 50), utc(2024, 10, 27, 1, 10)
    visit = pageview_visit(first - timedelta(hours=1), second, first, second, tz=BERLIN)

    result = transform_visit(visit, SiteContext(site_id=1, timezone="Europe/Berlin"))

    assert pageview_times(result) == [iso(first), iso(second)]


def test_fall_back_without_bounds_prefers_not_going_back_in_time():
    previous = utc(2024, 10, 27, 1, 5)
    wall = (datetime(2024, 10, 27, 2, 30) - datetime(1970, 1, 1)).total_seconds()
    assert action_time(wall, BERLIN, VisitBounds(), previous) == utc(2024, 10, 27, 1, 30)
    assert action_time(wall, BERLIN, VisitBounds(), None) == utc(2024, 10, 27, 0, 30)


@pytest.mark.parametrize(
    "timezone_name, offset", [("UTC+5.5", timedelta(hours=5, minutes=30)), ("UTC-3", timedelta(hours=-3))]
)
def test_fixed_offset_sites(timezone_name, offset):
    instant = utc(2024, 6, 1, 23, 45, 10)
    visit = pageview_visit(instant, instant, instant, tz=parse_timezone(timezone_name))
    assert visit["actionDetails"][0]["timestamp"] == instant.timestamp() + offset.total_seconds()

    result = transform_visit(visit, SiteContext(site_id=1, timezone=timezone_name))

    assert result.error is None
    assert pageview_times(result) == ["2024-06-01T23:45:10.000000+00:00"]


def test_timestamps_are_utc_iso_with_milliseconds():
    assert iso(utc_from_epoch(1711845000.1234)) == "2024-03-31T00:30:00.123000+00:00"
    assert iso(datetime(2024, 3, 30, 1, 30, tzinfo=BERLIN)) == "2024-03-30T00:30:00.000000+00:00"


def test_a_wrong_site_timezone_is_reported():
    instant = utc(2024, 6, 1, 12)
    visit = pageview_visit(instant, instant, instant, tz=parse_timezone("UTC+5"))

    result = transform_visit(visit, SiteContext(site_id=1, timezone="UTC"))

    assert "5.0 h outside" in result.error and "'UTC'" in result.error


def test_bounds_come_from_the_text_date_and_the_duration_when_timestamps_are_missing():
    problems = []
    bounds = visit_bounds({"lastActionDateTime": "2010-03-06 16:40:33", "visitDuration": "1080"}, problems)
    assert bounds == VisitBounds(utc(2010, 3, 6, 16, 22, 33), utc(2010, 3, 6, 16, 40, 33))
    assert problems == []


def test_unusable_bound_fields_are_reported_and_ignored():
    problems = []
    bounds = visit_bounds({"firstActionTimestamp": "soon", "lastActionDateTime": "yesterday"}, problems)
    assert bounds == VisitBounds()
    assert problems == [
        "lastActionDateTime is not a 'YYYY-MM-DD HH:MM:SS' date", "firstActionTimestamp is not a number"
    ]


@pytest.mark.parametrize("value", ["abc", [], {}, True, float("nan"), -5, 10**12])
def test_epoch_seconds_refuses_what_is_not_a_plausible_time(value):
    with pytest.raises(BadTime):
        epoch_seconds(value)


@pytest.mark.parametrize("value", [1265004000, "1265004000", 1265004000.0, " 1265004000 "])
def test_epoch_seconds_accepts_numbers_and_numeric_strings(value):
    assert epoch_seconds(value) == 1265004000
