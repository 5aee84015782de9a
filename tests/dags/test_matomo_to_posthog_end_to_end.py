"""The real DAG in real Airflow (``airflow dags test``) against both emulators on 127.0.0.1."""

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from matomo_posthog.emulators.generator import generate_visits
from matomo_posthog.emulators.matomo import MatomoEmulator
from matomo_posthog.emulators.posthog import PostHogEmulator
from matomo_posthog.storage import day_files, read_json
from matomo_posthog.transform import Mapping, SiteContext, TransformStats, transform_visits

MATOMO_TOKEN = "e2e-matomo-token-3b8f1d6a9c4e"
POSTHOG_KEY = "phc_e2e_project_key_51c7a2e9d0"
SITE, TIMEZONE, SEED, PER_DAY = 4, "America/New_York", 11, 12
FIRST, LAST = date(2024, 11, 2), date(2024, 11, 4)  # New York falls back on 2024-11-03


@pytest.fixture
def emulators():
    matomo = MatomoEmulator.from_generator(SITE, TIMEZONE, date(2024, 11, 1), date(2024, 11, 5), PER_DAY, seed=SEED,
                                           token=MATOMO_TOKEN, currency="USD", midnight_visits=True)
    with matomo, PostHogEmulator(api_key=POSTHOG_KEY) as posthog:
        yield matomo, posthog


def expected_events(first, last):
    """What the migration must deliver: every generated visit that ended within the days, transformed."""
    from matomo_posthog.timezones import parse_timezone
    from matomo_posthog.windows import day_bounds_utc

    tz = parse_timezone(TIMEZONE)
    start, end = day_bounds_utc(first, tz)[0].timestamp(), day_bounds_utc(last, tz)[1].timestamp()
    visits = generate_visits(SITE, TIMEZONE, date(2024, 11, 1), date(2024, 11, 5), PER_DAY, seed=SEED,
                             currency="USD", midnight_visits=True)
    inside = [v for v in visits if start <= v["lastActionTimestamp"] < end]
    site = SiteContext(site_id=SITE, timezone=TIMEZONE, currency="USD")
    return list(transform_visits(inside, site, Mapping(), TransformStats()))


def run_dag(tmp_path, matomo, posthog, conf):
    config = tmp_path / "sites.toml"
    config.write_text(f'[[sites]]\nsite_id = {SITE}\ntimezone = "{TIMEZONE}"\nstart_date = "2024-11-01"\n'
                      f'storage = "{tmp_path / "storage"}"\nmin_request_interval = 0.0\nmatomo_pool = ""\n')
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MATOMO_POSTHOG_CONFIG": str(config),
        "AIRFLOW_CONN_MATOMO_DEFAULT": json.dumps({"conn_type": "http", "host": matomo.url, "password": MATOMO_TOKEN}),
        "AIRFLOW_CONN_POSTHOG_DEFAULT": json.dumps({"conn_type": "http", "host": posthog.url, "password": POSTHOG_KEY}),
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "dags", "test", f"matomo_to_posthog_site_{SITE}", "2024-11-06",
         "--conf", json.dumps(conf)],
        env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.e2e
def test_three_days_arrive_in_posthog_exactly_once_and_the_report_balances(tmp_path, emulators, airflow_db):
    matomo, posthog = emulators
    result = run_dag(tmp_path, matomo, posthog, {"start": FIRST.isoformat(), "end": LAST.isoformat()})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]

    expected = expected_events(FIRST, LAST)
    held = posthog.events()
    assert sorted(e["uuid"] for e in held) == sorted(e["uuid"] for e in expected)
    assert set(posthog.deliveries().values()) == {1}
    assert Counter(e["event"] for e in held) == Counter(e["event"] for e in expected)
    by_uuid = {e["uuid"]: e for e in held}
    for event in expected:
        held_event = by_uuid[event["uuid"]]
        assert held_event["timestamp"][:19] == event["timestamp"][:19]
        # $os, $os_version and every other property arrive exactly as the transform produced them.
        assert held_event["properties"] == event["properties"]
        assert (held_event["event"], held_event["distinct_id"]) == (event["event"], event["distinct_id"])
    assert posthog.summary()["non_historical_batches"] == 0

    for day in ("2024-11-02", "2024-11-03", "2024-11-04"):
        report = read_json(day_files(tmp_path / "storage", SITE, day).report)
        assert report["extract"]["visits_extracted"] == report["extract"]["matomo_visits"] > 0
        assert report["load"]["events_accepted"] == report["transform"]["events"] > 0
        assert report["extract"]["visits_at_next_midnight"] == 1
    assert "2024-11-03" in output and "accepted" in output
    assert MATOMO_TOKEN not in output and POSTHOG_KEY not in output


@pytest.mark.e2e
def test_running_the_same_days_again_sends_nothing_twice(tmp_path, emulators, airflow_db):
    matomo, posthog = emulators
    conf = {"start": "2024-11-04", "end": "2024-11-04"}
    assert run_dag(tmp_path, matomo, posthog, conf).returncode == 0
    first = posthog.summary()
    assert run_dag(tmp_path, matomo, posthog, conf).returncode == 0
    assert posthog.summary()["deliveries"] == first["deliveries"] == first["events"]
    reloaded = run_dag(tmp_path, matomo, posthog, {**conf, "reload": True})
    assert reloaded.returncode == 0
    summary = posthog.summary()
    assert summary["events"] == first["events"] and summary["deliveries"] == 2 * first["events"]
