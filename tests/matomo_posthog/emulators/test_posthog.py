"""The PostHog capture emulator over real HTTP: the SDK's batch_post for well-formed batches, requests for the rest."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from posthog.request import APIError, batch_post

from matomo_posthog.emulators.posthog import PostHogEmulator, parse_timestamp, validate_event
from matomo_posthog.emulators.posthog_cli import register

KEY = "phc_emulator_test_key"
PLUGINS = Path(__file__).resolve().parents[3] / "plugins"


def make_event(n: int = 0, **overrides) -> dict:
    """A valid historical pageview with a deterministic uuid."""
    event = {
        "event": "$pageview",
        "distinct_id": f"visitor-{n}",
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"action-{n}")),
        "timestamp": "2024-03-10T12:00:00Z",
        "properties": {"$ignore_sent_at": True, "$current_url": f"https://example.org/{n}", "n": n},
    }
    event.update(overrides)
    return event


def sdk_send(emulator: PostHogEmulator, events: list[dict], api_key: str = KEY, historical: bool = True):
    """One batch through the posthog SDK, exactly as the loader sends it."""
    return batch_post(api_key, host=emulator.url, gzip=True, timeout=5, batch=events, historical_migration=historical)


def raw_send(emulator: PostHogEmulator, body: bytes, headers: dict | None = None) -> requests.Response:
    return requests.post(f"{emulator.url}/batch/", data=body, headers=headers or {}, timeout=5)


def json_body(events: list, api_key: str | None = KEY, **extra) -> bytes:
    payload = {"batch": events, "historical_migration": True, **extra}
    if api_key is not None:
        payload["api_key"] = api_key
    return json.dumps(payload).encode()


@pytest.fixture
def emulator():
    with PostHogEmulator(KEY) as running:
        yield running


@pytest.fixture
def small_emulator():
    """Limits small enough to exceed cheaply."""
    with PostHogEmulator(KEY, max_event_bytes=2_000, max_body_bytes=20_000) as running:
        yield running


# --- accepted batches --------------------------------------------------------------------------------------


def test_sdk_gzip_batch_is_accepted_and_stored_as_sent(emulator):
    events = [make_event(1), make_event(2, event="Order Completed", properties={"revenue": 12.5, "nested": [1]})]

    response = sdk_send(emulator, events)

    assert response.status_code == 200
    assert response.json() == {"status": "Ok"}
    stored = emulator.events()
    assert [e["uuid"] for e in stored] == [events[0]["uuid"], events[1]["uuid"]]
    assert stored[0] == {
        "uuid": events[0]["uuid"],
        "event": "$pageview",
        "distinct_id": "visitor-1",
        "timestamp": "2024-03-10T12:00:00.000000Z",
        "properties": events[0]["properties"],
    }
    assert stored[1]["properties"] == {"revenue": 12.5, "nested": [1]}


def test_plain_json_body_is_accepted(emulator):
    response = raw_send(emulator, json_body([make_event()]), {"Content-Type": "application/json"})

    assert response.status_code == 200
    assert emulator.summary()["events"] == 1


def test_gzip_is_recognised_from_the_bytes_without_a_content_encoding_header(emulator):
    response = raw_send(emulator, gzip.compress(json_body([make_event()])))

    assert response.status_code == 200
    assert emulator.summary()["events"] == 1


def test_numeric_distinct_id_is_stored_as_text_and_long_ones_are_cut_to_200_characters(emulator):
    sdk_send(emulator, [make_event(1, distinct_id=42), make_event(2, distinct_id="x" * 250)])

    assert sorted(e["distinct_id"] for e in emulator.events()) == ["42", "x" * 200]


def test_unparseable_timestamp_silently_becomes_the_receive_time(emulator):
    before = datetime.now(timezone.utc)
    sdk_send(emulator, [make_event(timestamp="last tuesday")])
    after = datetime.now(timezone.utc)

    (stored,) = emulator.events()
    assert before - timedelta(seconds=1) <= parse_timestamp(stored["timestamp"]) <= after
    assert emulator.summary()["timestamps_replaced"] == 1


def test_timestamp_is_corrected_for_sent_at_clock_skew_unless_the_event_ignores_sent_at(emulator):
    sent_at = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    skewed = make_event(1, properties={})
    pinned = make_event(2)  # carries "$ignore_sent_at": true

    raw_send(emulator, json_body([skewed, pinned], sent_at=sent_at))

    by_uuid = {e["uuid"]: parse_timestamp(e["timestamp"]) for e in emulator.events()}
    shift = parse_timestamp("2024-03-10T12:00:00Z") - by_uuid[skewed["uuid"]]
    assert timedelta(minutes=59) < shift < timedelta(minutes=61)
    assert by_uuid[pinned["uuid"]] == parse_timestamp("2024-03-10T12:00:00Z")


def test_timestamp_with_an_offset_is_stored_in_utc(emulator):
    sdk_send(emulator, [make_event(timestamp="2024-03-10T23:30:00+05:30")])

    assert emulator.events()[0]["timestamp"] == "2024-03-10T18:00:00.000000Z"


# --- refused batches ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("api_key", ["phc_some_other_project", "phx_personal_key_of_the_same_user"])
def test_wrong_or_personal_api_key_is_refused_with_401(emulator, api_key):
    with pytest.raises(APIError) as raised:
        sdk_send(emulator, [make_event()], api_key=api_key)

    assert raised.value.status == 401
    assert emulator.summary()["deliveries"] == 0


def test_missing_api_key_is_refused_with_401(emulator):
    assert raw_send(emulator, json_body([make_event()], api_key=None)).status_code == 401


@pytest.mark.parametrize(
    "bad_fields",
    [
        {"event": ""},
        {"distinct_id": None},
        {"distinct_id": ""},
        {"uuid": "not-a-uuid"},
        {"properties": ["a", "list"]},
        {"timestamp": 1710072000},
    ],
    ids=["empty-name", "null-distinct-id", "empty-distinct-id", "bad-uuid", "list-properties", "numeric-timestamp"],
)
def test_one_invalid_event_refuses_the_whole_batch_and_stores_nothing(emulator, bad_fields):
    bad = make_event(2, **bad_fields)

    with pytest.raises(APIError) as raised:
        sdk_send(emulator, [make_event(0), make_event(1), bad, make_event(3)])

    assert raised.value.status == 400
    assert "event 2" in raised.value.message and str(bad["uuid"]) in raised.value.message
    assert emulator.summary()["deliveries"] == 0


def test_event_without_distinct_id_refuses_the_batch(emulator):
    bad = make_event(1)
    del bad["distinct_id"]

    response = raw_send(emulator, json_body([make_event(0), bad]))

    assert response.status_code == 400
    assert emulator.summary()["deliveries"] == 0


def test_error_body_carries_status_code_error_and_detail(emulator):
    response = raw_send(emulator, json_body([make_event(event="")]))

    body = response.json()
    assert body["status"] == 400
    assert body["code"] == "invalid_event"
    assert body["error"] == body["detail"]
    assert "event 0" in body["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"api_key": "phc_emulator_test_key", "batch": [',
        b'{"api_key": "phc_emulator_test_key", "batch": [{"event": "e", "distinct_id": "d", "x": NaN}]}',
        b'[{"event": "e", "distinct_id": "d"}]',
        b'{"api_key": "phc_emulator_test_key", "batch": []}',
        gzip.compress(b'{"api_key": "phc_emulator_test_key", "batch": []}')[:-8],
    ],
    ids=["truncated-json", "nan", "not-an-object", "empty-batch", "truncated-gzip"],
)
def test_body_that_does_not_parse_is_refused_with_400(emulator, body):
    assert raw_send(emulator, body).status_code == 400
    assert emulator.summary()["deliveries"] == 0


def test_oversized_event_is_refused_with_413_after_the_events_before_it_were_stored(small_emulator):
    big = make_event(1, properties={"blob": "x" * 3_000})

    with pytest.raises(APIError) as raised:
        sdk_send(small_emulator, [make_event(0), big, make_event(2)])

    assert raised.value.status == 413
    assert "event 1" in raised.value.message and big["uuid"] in raised.value.message
    assert list(small_emulator.deliveries()) == [make_event(0)["uuid"]]


def test_oversized_body_is_refused_with_413_and_stores_nothing(small_emulator):
    events = [make_event(n) for n in range(100)]

    assert raw_send(small_emulator, json_body(events)).status_code == 413
    assert small_emulator.summary()["deliveries"] == 0


def test_gzip_body_that_inflates_past_the_body_limit_is_refused_with_413(small_emulator):
    padded = json_body([make_event()], padding=" " * 50_000)

    assert raw_send(small_emulator, gzip.compress(padded)).status_code == 413
    assert small_emulator.summary()["deliveries"] == 0


# --- deduplication ----------------------------------------------------------------------------------------


def test_resent_uuid_is_delivered_twice_but_stored_once(emulator):
    event = make_event()

    sdk_send(emulator, [event])
    sdk_send(emulator, [event])

    assert emulator.deliveries() == {event["uuid"]: 2}
    assert len(emulator.events()) == 1
    assert emulator.summary()["duplicates"] == 1


def test_same_uuid_on_another_day_or_under_another_name_stays_separate(emulator):
    event = make_event()
    next_day = dict(event, timestamp="2024-03-11T00:00:00Z")
    renamed = dict(event, event="$pageleave")

    sdk_send(emulator, [event, next_day, renamed])

    assert len(emulator.events()) == 3
    assert emulator.summary()["by_day"] == {"2024-03-10": 2, "2024-03-11": 1}


# --- summary and read endpoints ---------------------------------------------------------------------------


def test_summary_counts_events_deliveries_batches_days_and_names(emulator):
    sdk_send(emulator, [make_event(1), make_event(2, event="$pageleave")])
    sdk_send(emulator, [make_event(1), make_event(3, timestamp="2024-03-11T08:00:00Z")], historical=False)

    assert emulator.summary() == {
        "events": 3,
        "deliveries": 4,
        "distinct_uuids": 3,
        "batches": 2,
        "by_day": {"2024-03-10": 2, "2024-03-11": 1},
        "by_event": {"$pageleave": 1, "$pageview": 2},
        "duplicates": 1,
        "non_historical_batches": 1,
        "timestamps_replaced": 0,
    }


def test_read_endpoints_answer_over_http_and_reset_clears_everything(emulator):
    sdk_send(emulator, [make_event(1), make_event(2, event="$pageleave"), make_event(3)])
    emulator.add_fault(status=503)

    only_pageleave = requests.get(f"{emulator.url}/_emulator/events", params={"event": "$pageleave"}, timeout=5)
    one_visitor = requests.get(f"{emulator.url}/_emulator/events", params={"distinct_id": "visitor-3"}, timeout=5)
    summary = requests.get(f"{emulator.url}/_emulator/summary", timeout=5).json()
    deliveries = requests.get(f"{emulator.url}/_emulator/deliveries", timeout=5).json()
    reset = requests.post(f"{emulator.url}/_emulator/reset", timeout=5)

    assert [e["uuid"] for e in only_pageleave.json()] == [make_event(2)["uuid"]]
    assert [e["distinct_id"] for e in one_visitor.json()] == ["visitor-3"]
    assert summary["events"] == 3
    assert deliveries == {make_event(n)["uuid"]: 1 for n in (1, 2, 3)}
    assert reset.status_code == 200
    assert emulator.summary()["deliveries"] == 0
    assert sdk_send(emulator, [make_event()]).status_code == 200  # the queued 503 was cleared too


def test_file_database_keeps_every_delivery_with_its_batch_flags(tmp_path):
    db = tmp_path / "posthog.sqlite"
    with PostHogEmulator(KEY, db_path=str(db)) as running:
        sdk_send(running, [make_event(1, timestamp="garbage")])

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT batch, historical_migration, timestamp_replaced, event FROM deliveries").fetchall()
    assert rows == [(1, 1, 1, "$pageview")]


# --- faults -----------------------------------------------------------------------------------------------


def test_status_fault_answers_with_retry_after_and_stores_nothing(emulator):
    emulator.add_fault(status=429, retry_after=7, times=2)

    for _ in range(2):
        with pytest.raises(APIError) as raised:
            sdk_send(emulator, [make_event()])
        assert (raised.value.status, raised.value.retry_after) == (429, 7.0)

    assert emulator.summary()["deliveries"] == 0
    assert sdk_send(emulator, [make_event()]).status_code == 200


def test_faults_queued_over_http_are_used_in_order(emulator):
    queued = requests.post(f"{emulator.url}/_emulator/faults", json=[{"status": 503}, {"status": 408}], timeout=5)

    statuses = []
    for _ in range(2):
        with pytest.raises(APIError) as raised:
            sdk_send(emulator, [make_event()])
        statuses.append(raised.value.status)

    assert queued.status_code == 200
    assert statuses == [503, 408]


def test_invalid_fault_is_refused(emulator):
    response = requests.post(f"{emulator.url}/_emulator/faults", json=[{"status": 200}], timeout=5)

    assert response.status_code == 400
    with pytest.raises(ValueError):
        emulator.add_fault(explode=True)


def test_drop_fault_is_a_network_error_and_stores_nothing(emulator):
    emulator.add_fault(drop=True)

    with pytest.raises(requests.ConnectionError):
        sdk_send(emulator, [make_event()])

    assert emulator.summary()["deliveries"] == 0


def test_accept_then_drop_fault_stores_the_batch_but_loses_the_answer(emulator):
    emulator.add_fault(accept_then_drop=True)

    with pytest.raises(requests.ConnectionError):
        sdk_send(emulator, [make_event()])

    assert emulator.deliveries() == {make_event()["uuid"]: 1}


def test_delay_fault_answers_late(emulator):
    emulator.add_fault(delay=0.05)

    started = time.monotonic()
    response = sdk_send(emulator, [make_event()])

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.05


# --- pure validation, network and lifecycle ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "valid"),
    [
        (make_event(), True),
        (make_event(uuid=None), True),
        (make_event(distinct_id=7), True),
        (make_event(distinct_id=True), False),
        (make_event(event=""), False),
        (make_event(uuid="1234"), False),
        (make_event(properties=None), False),
        ("not an event", False),
    ],
)
def test_validate_event_applies_captures_rules(event, valid):
    assert (validate_event(event) is None) is valid


def test_emulator_refuses_a_non_loopback_host():
    with pytest.raises(ValueError):
        PostHogEmulator(KEY, host="0.0.0.0")


def test_stop_closes_the_listening_socket():
    running = PostHogEmulator(KEY).start()
    url = running.url
    running.stop()

    assert url.startswith("http://127.0.0.1:")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/_emulator/summary", timeout=2)


# --- command line -----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="matomo-posthog emulate")
    register(parser.add_subparsers(dest="emulator", required=True))
    return parser


def test_cli_refuses_a_non_loopback_host():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["posthog", "--api-key", KEY, "--host", "0.0.0.0"])


def test_cli_serves_until_sigterm_and_never_prints_the_key():
    script = textwrap.dedent(
        """
        import argparse, sys
        from matomo_posthog.emulators.posthog_cli import register
        parser = argparse.ArgumentParser()
        register(parser.add_subparsers(dest="emulator", required=True))
        args = parser.parse_args(sys.argv[1:])
        sys.exit(args.func(args))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(PLUGINS), "POSTHOG_EMULATOR_API_KEY": KEY}
    process = subprocess.Popen(
        [sys.executable, "-c", script, "posthog"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline()
        url = line.removeprefix("posthog emulator listening on ").strip()
        accepted = batch_post(KEY, host=url, gzip=True, timeout=5, batch=[make_event()], historical_migration=True)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=5)
    finally:
        process.kill()

    assert line.startswith("posthog emulator listening on http://127.0.0.1:")
    assert accepted.status_code == 200
    assert process.returncode == 0
    assert stdout == ""
    assert KEY not in line + stderr
