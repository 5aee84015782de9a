"""``make bench --quick``: the report's shape and the facts that hold at any size, plus the bench's own judges.

Nothing here asserts a speed: timings belong to the bench's report, not to pass/fail.
"""

import json
import uuid
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from matomo_posthog import bench

COLUMNS = ("script_full", "script_parseable", "script_subset", "package_subset", "package_full")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    output = tmp_path_factory.mktemp("bench") / "bench.json"
    assert bench.main(["--quick", "--output", str(output)]) == 0
    return json.loads(output.read_text())


@pytest.fixture(scope="module")
def columns(report):
    return report["comparison"]["columns"]


def test_report_has_every_section_and_column_with_two_runs_each(report, columns):
    assert set(report) >= {"sizes", "machine", "comparison", "extract_memory", "transform", "seconds"}
    assert set(columns) == set(COLUMNS)
    for name in COLUMNS:
        column = columns[name]
        assert len(column["runs"]) == 2, name
        assert {"deliveries", "distinct_events", "input", "quality"} <= set(column), name
        assert {"seconds", "exit_status", "events_accepted", "events_per_second"} <= set(column["runs"][0]), name
    assert set(report["comparison"]["ratios"]) >= {"speedup_wall", "events_per_second", "script_held_per_action",
                                                   "package_held_per_action"}
    text = bench.format_report(report)
    for heading in ("1. Same export", "2. Extract memory", "3. Transform"):
        assert heading in text


@pytest.mark.parametrize("name", ["package_subset", "package_full"])
def test_package_re_run_collapses_and_every_event_is_right(columns, name):
    column, quality = columns[name], columns[name]["quality"]
    produced = column["runs"][0]["events_produced"]
    assert [run["exit_status"] for run in column["runs"]] == [0, 0]
    assert [run["events_accepted"] for run in column["runs"]] == [produced, produced]
    assert column["deliveries"] == 2 * produced
    assert column["distinct_events"] == quality["distinct_events"] == produced
    assert quality["timestamps_off"] == 0
    assert quality["valid_session_id_events"] == produced
    assert quality["os_not_visit_os"] == 0
    assert [run["actions_lost"] for run in column["runs"]] == [0, 0]
    assert quality["action_events"] == column["input"]["actions_to_send"]
    assert quality["pageleave_events"] > 0
    assert quality["referring_domain_present"] == produced


def test_script_duplicates_on_re_run_and_shifts_timestamps_by_the_utc_offset(columns):
    column, quality = columns["script_subset"], columns["script_subset"]["quality"]
    accepted = [run["events_accepted"] for run in column["runs"]]
    assert [run["exit_status"] for run in column["runs"]] == [0, 0]
    # Random uuids: nothing collapses, PostHog keeps every copy of every event. (How many of them the SDK drops
    # at exit depends on the machine's load, so the counts are compared with each other, not with the input.)
    assert column["distinct_events"] == column["deliveries"] == sum(accepted) > max(accepted) > 0
    assert quality["timestamps_off"] == quality["timestamps_off_by_utc_offset"] == quality["distinct_events"] > 0
    assert quality["valid_session_id_events"] == 0
    assert quality["pageleave_events"] == 0


def test_script_crash_and_refused_batches_are_reported(columns):
    full = columns["script_full"]["runs"][0]
    assert full["exit_status"] != 0
    assert "ValueError" in full["error"]
    assert full["actions_lost"] > 0
    assert columns["script_parseable"]["runs"][0]["batches_refused"] > 0


def test_extract_memory_is_measured_in_separate_processes(report):
    memory = report["extract_memory"]
    assert memory["large"]["visits_extracted"] == 10 * memory["small"]["visits_extracted"]
    assert memory["small"]["tracemalloc_peak_mib"] > 0
    assert memory["tracemalloc_peak_ratio"] is not None


def test_true_utc_takes_the_reading_inside_the_visit_when_clocks_fall_back():
    berlin = ZoneInfo("Europe/Berlin")
    # 02:30 on 2024-10-27 happens twice in Berlin: 00:30 UTC (summer time) and 01:30 UTC (winter time).
    wall = int(datetime(2024, 10, 27, 2, 30, tzinfo=timezone.utc).timestamp())
    summer = int(datetime(2024, 10, 27, 0, 30, tzinfo=timezone.utc).timestamp())
    winter = int(datetime(2024, 10, 27, 1, 30, tzinfo=timezone.utc).timestamp())
    assert bench.true_utc(wall, berlin, summer - 60, summer + 60) == summer
    assert bench.true_utc(wall, berlin, winter - 60, winter + 60) == winter


def test_session_id_must_be_a_uuid7_timed_at_or_before_the_first_event():
    start_ms = 1_711_357_200_000
    v7 = uuid.UUID(int=(start_ms << 80) | (0x7 << 76) | (0b10 << 62) | 12345)
    assert bench.session_id_fits(str(v7), start_ms, start_ms + 3_600_000)
    assert not bench.session_id_fits(str(v7), start_ms - 1, start_ms)
    assert not bench.session_id_fits(str(v7), start_ms, start_ms + bench.SESSION_SPAN_MS + 1)
    assert not bench.session_id_fits(str(uuid.uuid4()), start_ms, start_ms)
    assert not bench.session_id_fits(None, start_ms, start_ms)


def test_script_subset_rules_follow_the_script_conversions_and_names():
    visit = {"browserVersion": "120.0", "latitude": "48.9", "longitude": None, "resolution": "1920x1080",
             "actionDetails": [{"type": "action"}, {"type": "event", "eventAction": "play"}, {"type": "goal"}]}
    assert bench.script_parses(visit) and bench.script_names_are_text(visit)
    assert not bench.script_parses({**visit, "browserVersion": "120.0.6099.144"})
    assert not bench.script_parses({**visit, "resolution": "unknown"})
    assert not bench.script_names_are_text({**visit, "actionDetails": [{"type": 13}]})
