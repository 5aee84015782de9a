"""The steps of a day on real storage, with the extract over real HTTP against the Matomo emulator."""

import logging
from datetime import date

import pytest

from matomo_posthog.emulators.matomo import MatomoEmulator
from matomo_posthog.hooks.matomo import MatomoHook
from matomo_posthog.steps import SiteMismatchError, extract_day, reconcile_days, transform_day
from matomo_posthog.storage import day_files, read_json, read_ndjson_gz, update_report
from matomo_posthog.transform import Mapping

TOKEN = "steps-test-token-6e2a9f0c1d"
DAY = date(2024, 10, 27)
log = logging.getLogger("test.steps")


@pytest.fixture
def matomo(connection):
    emulator = MatomoEmulator.from_generator(2, "Europe/Berlin", date(2024, 10, 26), date(2024, 10, 28), 15, seed=9,
                                             token=TOKEN, midnight_visits=True)
    with emulator:
        connection("matomo_default", emulator.url, TOKEN)
        yield emulator


def extract(tmp_path, day=DAY, timezone="Europe/Berlin"):
    files = day_files(tmp_path, 2, day)
    return files, extract_day(MatomoHook(timeout=5), files, 2, timezone, day, 4, 2, log)


def test_extract_writes_each_visit_of_the_day_once_and_balances_with_matomo(tmp_path, matomo, caplog):
    caplog.set_level(logging.INFO, logger="test.steps")
    files, report = extract(tmp_path)
    assert "fetching the visits of 2024-10-26T22:00+00:00 .. 2024-10-27T23:00+00:00 UTC" in caplog.text
    assert f"written to {files.visits}" in caplog.text
    visits = list(read_ndjson_gz(files.visits))
    assert len({v["idVisit"] for v in visits}) == len(visits) == report["visits_extracted"] == report["matomo_visits"]
    assert report["pages"] >= 4 and report["warnings"] == []
    assert read_json(files.report)["extract"]["site_currency"] == "EUR"


def test_visit_ending_at_midnight_is_extracted_on_its_own_day_only(tmp_path, matomo):
    _, first = extract(tmp_path, date(2024, 10, 26))
    _, second = extract(tmp_path, date(2024, 10, 27))
    assert first["visits_at_next_midnight"] == 1
    ids = [{v["idVisit"] for v in read_ndjson_gz(day_files(tmp_path, 2, d).visits)} for d in ("2024-10-26", "2024-10-27")]
    assert ids[0].isdisjoint(ids[1])


def test_timezone_mismatch_fails_before_any_visit_is_fetched(tmp_path, matomo):
    with pytest.raises(SiteMismatchError, match="'Europe/Berlin' but this DAG is configured with 'UTC'"):
        extract(tmp_path, timezone="UTC")
    assert [r["method"] for r in matomo.requests] == ["SitesManager.getSiteFromId"]
    assert not day_files(tmp_path, 2, DAY).visits.exists()


def test_shortfall_against_visits_summary_is_a_warning_in_log_and_report(tmp_path, matomo, monkeypatch):
    monkeypatch.setattr(MatomoHook, "visits_summary", lambda self, site, day: {"nb_visits": 999, "nb_actions": 0})
    _, report = extract(tmp_path)
    assert "VisitsSummary counts 999 visits" in report["warnings"][0]


def test_transform_writes_events_and_counts_into_the_report(tmp_path, matomo):
    files, _ = extract(tmp_path)
    report = transform_day(files, 2, "Europe/Berlin", Mapping(), log)
    events = list(read_ndjson_gz(files.events))
    assert len(events) == report["events"] > 0
    assert report["actions"] == report["events_from_actions"] + sum(report["skipped"].values())
    assert all(e["properties"]["matomo_site_id"] == 2 for e in events)
    ecommerce = [e for e in events if e["event"] == "Order Completed"]
    assert all(e["properties"]["currency"] == "EUR" for e in ecommerce)


def test_reconcile_table_shows_each_day_and_names_days_not_fully_accepted(tmp_path):
    good, short = day_files(tmp_path, 2, "2024-10-26"), day_files(tmp_path, 2, "2024-10-27")
    for files, accepted in ((good, 40), (short, 39)):
        update_report(files, "extract", {"matomo_visits": 5, "visits_extracted": 5, "actions": 30})
        update_report(files, "transform", {"events": 40, "skipped": {"goal": 2, "no_timestamp": 1}})
        update_report(files, "load", {"status": "loaded", "events_accepted": accepted})
    table, problems = reconcile_days(tmp_path, 2, ["2024-10-26", "2024-10-27", "2024-10-28"])
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["day", "matomo", "visits"]
    assert "goal:2 no_timestamp:1" in lines[2] and lines[4].startswith("2024-10-28")
    assert problems == ["2024-10-27: 40 events produced but 39 accepted", "2024-10-28: not loaded"]
