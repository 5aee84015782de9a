from datetime import date, datetime, timedelta, timezone

import pytest

from matomo_posthog.timezones import parse_timezone
from matomo_posthog.windows import (
    MAX_DAYS_PER_RUN,
    day_bounds_utc,
    days_between,
    days_in_interval,
    final_at,
    is_final,
    plan_days,
)

BERLIN = parse_timezone("Europe/Berlin")
UTC = timezone.utc


def test_berlin_spring_forward_day_is_23_hours():
    start, end = day_bounds_utc(date(2024, 3, 31), BERLIN)
    assert start == datetime(2024, 3, 30, 23, tzinfo=UTC)
    assert end == datetime(2024, 3, 31, 22, tzinfo=UTC)
    assert end - start == timedelta(hours=23)


def test_berlin_fall_back_day_is_25_hours():
    start, end = day_bounds_utc(date(2024, 10, 27), BERLIN)
    assert start == datetime(2024, 10, 26, 22, tzinfo=UTC)
    assert end - start == timedelta(hours=25)


def test_fixed_half_hour_offset_day_starts_at_previous_utc_evening():
    start, end = day_bounds_utc(date(2024, 1, 10), parse_timezone("UTC+5.5"))
    assert start == datetime(2024, 1, 9, 18, 30, tzinfo=UTC)
    assert end - start == timedelta(hours=24)


def test_negative_fixed_offset_day_starts_after_utc_midnight():
    start, _ = day_bounds_utc(date(2024, 1, 10), parse_timezone("UTC-3"))
    assert start == datetime(2024, 1, 10, 3, tzinfo=UTC)


def test_daily_interval_in_site_timezone_covers_exactly_its_day():
    start, end = day_bounds_utc(date(2024, 3, 31), BERLIN)
    assert days_in_interval(start, end, BERLIN) == [date(2024, 3, 31)]


def test_interval_of_a_week_across_dst_gives_seven_days():
    start, _ = day_bounds_utc(date(2024, 3, 25), BERLIN)
    _, end = day_bounds_utc(date(2024, 3, 31), BERLIN)
    assert days_in_interval(start, end, BERLIN) == days_between(date(2024, 3, 25), date(2024, 3, 31))


def test_interval_not_on_local_midnight_starts_at_next_whole_day():
    start = datetime(2024, 1, 1, 12, tzinfo=UTC)
    end = datetime(2024, 1, 3, 12, tzinfo=UTC)
    assert days_in_interval(start, end, parse_timezone("UTC")) == [date(2024, 1, 2)]


def test_naive_interval_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        days_in_interval(datetime(2024, 1, 1), datetime(2024, 1, 2), BERLIN)


def test_days_between_includes_both_ends_and_refuses_reversed_range():
    assert days_between(date(2024, 2, 28), date(2024, 3, 1)) == [date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1)]
    with pytest.raises(ValueError, match="ends"):
        days_between(date(2024, 3, 2), date(2024, 3, 1))


def test_day_is_final_48_hours_after_its_local_end():
    day = date(2024, 5, 1)
    ready = final_at(day, BERLIN)
    assert ready == datetime(2024, 5, 3, 22, tzinfo=UTC)
    assert not is_final(day, BERLIN, ready - timedelta(seconds=1))
    assert is_final(day, BERLIN, ready)


def test_plan_refuses_more_days_than_one_run_can_map():
    last = date(2020, 1, 1) + timedelta(days=MAX_DAYS_PER_RUN)
    with pytest.raises(ValueError, match="backfill"):
        plan_days("2020-01-01", last.isoformat(), None, None, BERLIN)


def test_plan_takes_the_params_range_over_the_interval():
    start, end = day_bounds_utc(date(2024, 3, 31), BERLIN)
    assert plan_days("2024-02-28", "2024-03-01", start, end, BERLIN) == ["2024-02-28", "2024-02-29", "2024-03-01"]
    assert plan_days(None, "2024-01-05", start, end, BERLIN) == ["2024-01-05"]
    assert plan_days(None, None, start, end, BERLIN) == ["2024-03-31"]


@pytest.mark.parametrize("start, end, message", [
    ("2024-13-01", None, "param start '2024-13-01' is not a YYYY-MM-DD date"),
    ("2024-01-02", "yesterday", "param end 'yesterday' is not a YYYY-MM-DD date"),
    ("2024-01-02", "2024-01-01", "ends"),
])
def test_plan_names_a_bad_param(start, end, message):
    with pytest.raises(ValueError, match=message):
        plan_days(start, end, None, None, BERLIN)
