import logging
import uuid

import pytest

from matomo_posthog.load import BatchRejected, DayLoader, EventTooLarge, LoadError, Pacer, batches, event_size
from matomo_posthog.storage import day_files, read_json, write_json, write_ndjson_gz


class Recorder:
    """A send_batch that records batches and fails as scripted."""

    def __init__(self, failures=()):
        self.failures = list(failures)
        self.batches = []

    def __call__(self, batch):
        self.batches.append([event["uuid"] for event in batch])
        if self.failures:
            failure = self.failures.pop(0)
            if failure is not None:
                raise failure

    @property
    def accepted_uuids(self):
        return [u for b in self.batches for u in b]


def events(n):
    return [{"uuid": str(uuid.UUID(int=i + 1)), "event": "$pageview", "distinct_id": "v", "properties": {"i": i},
             "timestamp": "2024-01-01T00:00:00+00:00"} for i in range(n)]


@pytest.fixture
def day(tmp_path):
    files = day_files(tmp_path, 1, "2024-01-01")
    write_ndjson_gz(files.events, events(10))
    return files


@pytest.fixture
def loader(fake_time):
    """A DayLoader on the test's fake clock, four events a batch unless told otherwise."""

    def make(files, send, **options):
        options.setdefault("batch_size", 4)
        return DayLoader(files, send, clock=fake_time, sleep=fake_time.sleep, label="site 1 2024-01-01", **options)

    return make


def test_every_event_is_sent_once_in_batches_and_checkpointed(day, loader):
    send = Recorder()
    summary = loader(day, send).run()
    assert [len(b) for b in send.batches] == [4, 4, 2]
    assert send.accepted_uuids == [e["uuid"] for e in events(10)]
    assert (summary.events_accepted, summary.batches_accepted, summary.status) == (10, 3, "loaded")
    assert read_json(day.checkpoint)["complete"] is True


def test_batches_respect_the_byte_limit():
    sized = events(10)
    limit = event_size(sized[0]) * 3 + 3
    assert [len(b) for b in batches(sized, max_events=100, max_bytes=limit)] == [3, 3, 3, 1]


def test_batches_stop_at_an_event_over_the_event_limit_before_yielding_its_batch():
    sized = events(5)
    sized[3]["properties"]["blob"] = "x" * 500
    produced = batches(sized, max_events=2, max_bytes=10**6, max_event_bytes=400)
    assert len(next(produced)) == 2
    with pytest.raises(EventTooLarge) as caught:
        next(produced)
    assert caught.value.position == 3 and caught.value.size > 400


def test_rate_limited_batch_waits_for_retry_after_then_is_accepted(day, fake_time, loader):
    clock = fake_time
    send = Recorder([BatchRejected("HTTP 429", 429, retry_after=30)])
    summary = loader(day, send).run()
    assert 30 in [round(s) for s in clock.sleeps]
    assert summary.retries == 1 and summary.events_accepted == 10
    assert send.batches[0] == send.batches[1]


def test_network_error_is_retried_with_backoff(day, loader):
    send = Recorder([BatchRejected("could not reach PostHog"), BatchRejected("could not reach PostHog")])
    summary = loader(day, send).run()
    assert summary.retries == 2 and summary.events_accepted == 10


def test_retries_are_bounded_and_the_error_says_what_was_tried(day, loader):
    send = Recorder([BatchRejected("HTTP 503", 503)] * 3)
    with pytest.raises(LoadError, match=r"events 1-4 of 10 .* after 3 attempts; last error: HTTP 503"):
        loader(day, send, max_attempts=3).run()


def test_too_large_batch_is_split_and_resent_with_the_same_uuids(day, loader):
    send = Recorder([BatchRejected("HTTP 413", 413)])
    summary = loader(day, send).run()
    assert send.batches[0] == send.batches[1] + send.batches[2]
    assert sorted(set(send.accepted_uuids)) == sorted(e["uuid"] for e in events(10))
    assert summary.splits == 1 and summary.events_accepted == 10


def test_single_event_too_large_fails_naming_its_uuid_and_position(day, loader):
    send = Recorder([BatchRejected("HTTP 413", 413)] * 10)
    with pytest.raises(LoadError, match=r"event 1 of 10 \(uuid 00000000-0000-0000-0000-000000000001"):
        loader(day, send, batch_size=1).run()


def test_bad_request_fails_at_once_naming_the_batch(day, loader):
    send = Recorder([None, BatchRejected("HTTP 400: invalid event", 400)])
    with pytest.raises(LoadError, match=r"rejected events 5-8 of 10 \(uuids 00000000-0000-0000-0000-000000000005"):
        loader(day, send).run()
    assert len(send.batches) == 2
    assert read_json(day.checkpoint)["events_accepted"] == 4


def test_refused_key_fails_without_retrying(day, loader):
    send = Recorder([BatchRejected("HTTP 401", 401)])
    with pytest.raises(LoadError, match="refused the project API key"):
        loader(day, send).run()
    assert len(send.batches) == 1


def test_restart_resumes_after_the_last_accepted_batch(day, loader):
    with pytest.raises(LoadError):
        loader(day, Recorder([None, BatchRejected("HTTP 400", 400)])).run()
    send = Recorder()
    summary = loader(day, send).run()
    assert send.accepted_uuids == [e["uuid"] for e in events(10)][4:]
    assert summary.events_skipped_by_checkpoint == 4 and summary.events_accepted == 10


def test_checkpoint_of_other_events_is_ignored(day, loader):
    write_json(day.checkpoint, {"events_digest": "something else", "events_accepted": 8, "complete": False})
    send = Recorder()
    loader(day, send).run()
    assert len(send.accepted_uuids) == 10


def test_fully_loaded_day_sends_nothing_unless_reloaded(day, loader):
    loader(day, Recorder()).run()
    again = Recorder()
    summary = loader(day, again).run()
    assert again.batches == [] and summary.status == "already loaded" and summary.events_accepted == 10
    reloaded = Recorder()
    loader(day, reloaded).run(reload=True)
    assert len(reloaded.accepted_uuids) == 10


def test_dry_run_sends_nothing_and_says_what_it_would_send(day, loader):
    send = Recorder()
    summary = loader(day, send).run(dry_run=True)
    assert send.batches == []
    assert summary.status == "dry run" and "would send 10 events in 3 batches" in summary.notes[0]
    assert not day.checkpoint.exists()


def test_send_rate_stays_under_the_ceiling(day, fake_time, loader):
    clock = fake_time
    start = clock.now
    loader(day, Recorder(), batch_size=2, events_per_minute=60).run()
    # 10 events at 60 a minute: the last batch may go once 8 events' worth of time has passed.
    assert clock.now - start >= 8.0


def test_pacer_does_not_wait_for_the_first_batch(fake_time):
    clock = fake_time
    pacer = Pacer(600, clock, clock.sleep)
    pacer.wait_for(100)
    assert clock.sleeps == []
    pacer.wait_for(100)
    assert clock.sleeps == [pytest.approx(10.0)]


def test_progress_lines_show_counts_percent_rate_and_eta(day, caplog, loader):
    caplog.set_level(logging.INFO)
    loader(day, Recorder(), batch_size=2, events_per_minute=60, progress_every=1,
           log=logging.getLogger("test.load")).run()
    progress = [r.getMessage() for r in caplog.records if "ETA" in r.getMessage()]
    assert progress and "events (" in progress[0] and "%" in progress[0] and "events/s" in progress[0]
    assert any("loaded: 10 of 10 events accepted in 5 batches" in r.getMessage() for r in caplog.records)


def test_event_over_posthogs_size_limit_is_named_before_anything_is_sent(tmp_path, loader):
    files = day_files(tmp_path, 1, "2024-01-01")
    big = events(3)
    big[1]["properties"]["blob"] = "x" * 2000
    write_ndjson_gz(files.events, big)
    send = Recorder()
    with pytest.raises(LoadError, match=r"event 2 of 3 \(uuid 00000000-0000-0000-0000-000000000002, '\$pageview'\) is \d+ bytes"):
        loader(files, send, max_event_bytes=1000).run()
    assert send.batches == []


def test_oversized_event_after_a_resume_is_named_by_its_position_in_the_day(tmp_path, loader):
    files = day_files(tmp_path, 1, "2024-01-01")
    big = events(10)
    big[7]["properties"]["blob"] = "x" * 2000
    write_ndjson_gz(files.events, big)
    with pytest.raises(LoadError):
        loader(files, Recorder(), max_event_bytes=1000).run()
    assert read_json(files.checkpoint)["events_accepted"] == 4
    with pytest.raises(LoadError, match=r"event 8 of 10 \(uuid 00000000-0000-0000-0000-000000000008"):
        loader(files, Recorder(), max_event_bytes=1000).run()


def test_progress_lines_come_at_the_first_batch_then_at_the_set_cadence(day, caplog, loader):
    caplog.set_level(logging.INFO)
    # Ten events, two a batch, at 60 a minute: a batch every 2 seconds.
    loader(day, Recorder(), batch_size=2, events_per_minute=60, progress_every=5,
           log=logging.getLogger("test.load")).run()
    progress = [r.getMessage() for r in caplog.records if "ETA" in r.getMessage()]
    assert [line.split(": ")[1].split(" ")[0] for line in progress] == ["2/10", "8/10"]
