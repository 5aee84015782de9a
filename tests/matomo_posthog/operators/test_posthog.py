"""PostHogOperator against the PostHog emulator over real HTTP, including a real kill -9 in mid-load."""

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from matomo_posthog.emulators.posthog import PostHogEmulator
from matomo_posthog.operators.posthog import PostHogOperator
from matomo_posthog.storage import day_files, read_json, write_ndjson_gz

KEY = "phc_operator_test_key_0987654321"
DAY = "2024-01-15"


def events(n):
    return [
        {
            "uuid": f"0190f000-0000-7000-8000-{i:012d}",
            "event": "$pageview" if i % 3 else "Order Completed",
            "distinct_id": f"visitor-{i % 7}",
            "timestamp": f"2024-01-15T{i % 24:02d}:{i % 60:02d}:00.000+00:00",
            "properties": {
                "$os": "Mac OS X", "$os_version": "14.1", "$browser": "Safari", "$is_server": False,
                "$current_url": f"https://shop.example.org/p/{i}", "revenue": i * 1.5,
                "products": [{"sku": f"S{i}", "price": 9.99, "quantity": 1}], "$ignore_sent_at": True,
            },
        }
        for i in range(n)
    ]


@pytest.fixture
def posthog(connection):
    with PostHogEmulator(api_key=KEY) as emulator:
        connection("posthog_default", emulator.url, KEY)
        yield emulator


def operator(tmp_path, day=DAY, **options):
    options.setdefault("batch_size", 10)
    return PostHogOperator(task_id="load", site_id=1, site_timezone="UTC", day=day, storage=tmp_path.as_uri(),
                           **options)


def test_every_property_reaches_posthog_exactly_as_produced(tmp_path, posthog):
    produced = events(25)
    write_ndjson_gz(day_files(tmp_path, 1, DAY).events, produced)
    result = operator(tmp_path).execute({})
    assert result == {"events_accepted": 25, "status": "loaded"}
    stored = {e["uuid"]: e for e in posthog.events()}
    for event in produced:
        assert stored[event["uuid"]]["properties"] == event["properties"]
        assert stored[event["uuid"]]["event"] == event["event"]
        assert stored[event["uuid"]]["distinct_id"] == event["distinct_id"]
    report = read_json(day_files(tmp_path, 1, DAY).report)
    assert report["load"]["events_accepted"] == 25 and report["load"]["batches_accepted"] == 3


def test_day_younger_than_48_hours_is_not_sent(tmp_path, posthog):
    today = date.today().isoformat()
    write_ndjson_gz(day_files(tmp_path, 1, today).events, events(3))
    with pytest.raises(AirflowSkipException, match="at least 48 hours old"):
        operator(tmp_path, day=today).execute({})
    assert posthog.summary()["deliveries"] == 0
    assert read_json(day_files(tmp_path, 1, today).report)["load"]["status"] == "not final"


def test_dry_run_needs_no_connection_and_reports_what_it_would_send(tmp_path, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_POSTHOG_DEFAULT", raising=False)
    write_ndjson_gz(day_files(tmp_path, 1, DAY).events, events(12))
    result = operator(tmp_path, dry_run="True").execute({})
    assert result["status"] == "dry run"
    assert "would send 12 events in 2 batches" in read_json(day_files(tmp_path, 1, DAY).report)["load"]["notes"][0]


def test_rejected_batch_fails_the_task_for_good_and_reports_why(tmp_path, posthog):
    bad = events(5)
    bad[3]["distinct_id"] = ""
    write_ndjson_gz(day_files(tmp_path, 1, DAY).events, bad)
    with pytest.raises(AirflowFailException, match="rejected events 1-5 of 5"):
        operator(tmp_path).execute({})
    assert read_json(day_files(tmp_path, 1, DAY).report)["load"]["status"] == "failed"


RUNNER = """
import sys
from matomo_posthog.operators.posthog import PostHogOperator
PostHogOperator(task_id="load", site_id=1, site_timezone="UTC", day=sys.argv[2], storage=sys.argv[1],
                batch_size=10, events_per_minute=int(sys.argv[3])).execute({})
"""


def run_load(tmp_path, events_per_minute):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3] / "plugins")}
    return subprocess.Popen([sys.executable, "-c", RUNNER, tmp_path.as_uri(), DAY, str(events_per_minute)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_load_killed_mid_day_resumes_and_resends_at_most_one_batch(tmp_path, posthog):
    produced = events(400)
    files = day_files(tmp_path, 1, DAY)
    write_ndjson_gz(files.events, produced)
    # Slow enough (0.2 s a batch, 8 s in all) that the process is still sending when it is killed.
    process = run_load(tmp_path, events_per_minute=3000)
    deadline = time.monotonic() + 60
    while (read_json(files.checkpoint, default={}) or {}).get("events_accepted", 0) < 100:
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "the load made no progress"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    checkpoint = read_json(files.checkpoint)
    assert not checkpoint["complete"] and checkpoint["events_accepted"] < 400

    rerun = run_load(tmp_path, events_per_minute=1_000_000)
    assert rerun.wait(timeout=60) == 0, rerun.stderr.read()

    deliveries = posthog.deliveries()
    assert set(deliveries) == {e["uuid"] for e in produced}
    assert len(posthog.events()) == 400
    resent = sum(deliveries.values()) - 400
    assert 0 <= resent <= 10
    assert read_json(files.checkpoint)["complete"] is True
