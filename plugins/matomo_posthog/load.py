"""Loading one day's events into PostHog: batches, retries, rate, checkpoint and progress.

No Airflow here: the operator gives a ``send_batch`` function (the hook's) and a logger. Everything that
decides what is sent lives in this module so that it can be read, and tested, in one place.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from itertools import islice
from typing import Callable, Iterable, Iterator

from matomo_posthog.retry import RETRYABLE_STATUSES, backoff_seconds
from matomo_posthog.storage import DayFiles, count_records, file_digest, read_json, read_ndjson_gz, write_json

AUTH_STATUSES = frozenset({401, 403})
TOO_LARGE = 413
# PostHog refuses a single event of about 1 MB or more (with 400 or 413, and then the whole batch).
MAX_EVENT_BYTES = 1_000_000


class LoadError(Exception):
    """The day could not be loaded; the message says which batch or event and what to do."""


class BatchRejected(Exception):
    """What ``send_batch`` raises when a batch was not accepted. ``status`` is None for network errors."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """True for errors a later attempt can get past: network, timeouts, 408, 429 and 5xx."""
        return self.status is None or self.status in RETRYABLE_STATUSES


def event_size(event: dict) -> int:
    """Bytes the event takes in a request body."""
    return len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


class EventTooLarge(Exception):
    """An event over the per-event limit, with its position (from 0) in the events given to ``batches``."""

    def __init__(self, position: int, event: dict, size: int):
        super().__init__(f"event at position {position} is {size} bytes")
        self.position, self.event, self.size = position, event, size


def batches(
    events: Iterable[dict], max_events: int, max_bytes: int, max_event_bytes: int | None = None
) -> Iterator[list[dict]]:
    """Group events into batches of at most ``max_events`` events and about ``max_bytes`` bytes.

    Raises ``EventTooLarge`` for an event over ``max_event_bytes``, before the batch holding it is yielded.
    """
    batch: list[dict] = []
    size = 0
    for position, event in enumerate(events):
        this = event_size(event)
        if max_event_bytes is not None and this > max_event_bytes:
            raise EventTooLarge(position, event, this)
        if batch and (len(batch) >= max_events or size + this + 1 > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += this + 1
    if batch:
        yield batch


class Pacer:
    """Keeps the average send rate at or below ``events_per_minute`` over the whole task."""

    def __init__(self, events_per_minute: int, clock: Callable[[], float], sleep: Callable[[float], None]):
        self.seconds_per_event = 60.0 / events_per_minute if events_per_minute > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._started = clock()
        self._allowed = 0.0

    def wait_for(self, events: int) -> None:
        """Sleep until ``events`` more events may be sent."""
        wait = self._started + self._allowed - self._clock()
        if wait > 0:
            self._sleep(wait)
        self._allowed += events * self.seconds_per_event


@dataclass
class LoadSummary:
    """What the load did, as it goes into the day's report."""

    events_total: int = 0
    events_accepted: int = 0
    events_skipped_by_checkpoint: int = 0
    batches_sent: int = 0
    batches_accepted: int = 0
    retries: int = 0
    splits: int = 0
    seconds: float = 0.0
    events_per_second: float = 0.0
    dry_run: bool = False
    status: str = "running"
    notes: list[str] = field(default_factory=list)


def _format_duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s" if seconds >= 3600 else (
        f"{seconds // 60}m{seconds % 60:02d}s"
    )


class DayLoader:
    """Sends a day's ``events.ndjson.gz`` to PostHog exactly once, resuming from its checkpoint."""

    def __init__(
        self,
        files: DayFiles,
        send_batch: Callable[[list[dict]], None],
        *,
        batch_size: int = 1000,
        batch_max_bytes: int = 5_000_000,
        max_event_bytes: int = MAX_EVENT_BYTES,
        events_per_minute: int = 10_000,
        max_attempts: int = 8,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        progress_every: float = 30.0,
        label: str = "",
        log: logging.Logger | logging.LoggerAdapter | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        self.files = files
        self.send_batch = send_batch
        self.batch_size = batch_size
        self.batch_max_bytes = batch_max_bytes
        self.max_event_bytes = max_event_bytes
        self.events_per_minute = events_per_minute
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.progress_every = progress_every
        self.label = label or str(files.folder)
        self.log = log or logging.getLogger(__name__)
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()

    def run(self, dry_run: bool = False, reload: bool = False) -> LoadSummary:
        """Load the day; returns the summary, raises ``LoadError`` when something was not accepted."""
        summary = LoadSummary(dry_run=dry_run)
        started = self._clock()
        digest = file_digest(self.files.events)
        summary.events_total = count_records(self.files.events)
        checkpoint = read_json(self.files.checkpoint, default={}) or {}
        resume_at = 0
        if not dry_run and checkpoint.get("events_digest") == digest:
            resume_at = int(checkpoint.get("events_accepted", 0))
            if checkpoint.get("complete") and not reload:
                summary.events_accepted = resume_at
                summary.events_skipped_by_checkpoint = resume_at
                summary.status = "already loaded"
                summary.notes.append(
                    f"all {resume_at} events were accepted on {checkpoint.get('updated_at')}; "
                    "nothing sent (set reload to send them again: PostHog drops the duplicates)"
                )
                self.log.info("%s: %s", self.label, summary.notes[-1])
                return summary
            if reload:
                resume_at = 0
            elif resume_at:
                self.log.info("%s: resuming after %d events already accepted", self.label, resume_at)
        summary.events_accepted = summary.events_skipped_by_checkpoint = resume_at

        pacer = Pacer(self.events_per_minute, self._clock, self._sleep)
        last_progress: float | None = None
        pending = islice(read_ndjson_gz(self.files.events), resume_at, None)
        try:
            for batch in batches(pending, self.batch_size, self.batch_max_bytes, self.max_event_bytes):
                if dry_run:
                    summary.batches_sent += 1
                    summary.events_accepted += len(batch)
                    continue
                pacer.wait_for(len(batch))
                self._send_with_retries(batch, summary)
                summary.batches_accepted += 1
                summary.events_accepted += len(batch)
                self._save_checkpoint(digest, summary, complete=False)
                # The first batch shows the load started; then a line every progress_every seconds.
                if last_progress is None or self._clock() - last_progress >= self.progress_every:
                    last_progress = self._clock()
                    self._log_progress(summary, started)
        except EventTooLarge as too_large:
            raise LoadError(
                f"{self.label}: event {resume_at + too_large.position + 1} of {summary.events_total} "
                f"(uuid {too_large.event.get('uuid')}, {too_large.event.get('event')!r}) is {too_large.size} bytes, "
                f"over PostHog's limit of {self.max_event_bytes}; drop its largest properties in the mapping file "
                "and run the day again"
            ) from None
        summary.seconds = round(self._clock() - started, 3)
        sent = summary.events_accepted - summary.events_skipped_by_checkpoint
        summary.events_per_second = round(sent / summary.seconds, 1) if summary.seconds > 0 else 0.0
        if dry_run:
            summary.status = "dry run"
            summary.notes.append(f"would send {summary.events_accepted} events in {summary.batches_sent} batches")
        else:
            summary.status = "loaded"
            self._save_checkpoint(digest, summary, complete=True)
        self.log.info(
            "%s: %s: %d of %d events accepted in %d batches (%d retries, %d splits) in %s, %.1f events/s",
            self.label, summary.status, summary.events_accepted, summary.events_total, summary.batches_accepted,
            summary.retries, summary.splits, _format_duration(summary.seconds), summary.events_per_second,
        )
        return summary

    def _log_progress(self, summary: LoadSummary, started: float) -> None:
        elapsed = self._clock() - started
        sent = summary.events_accepted - summary.events_skipped_by_checkpoint
        rate = sent / elapsed if elapsed > 0 else 0.0
        left = summary.events_total - summary.events_accepted
        eta = _format_duration(left / rate) if rate > 0 else "unknown"
        percent = 100.0 * summary.events_accepted / summary.events_total if summary.events_total else 100.0
        self.log.info(
            "%s: %d/%d events (%.0f%%), %d batches, %.1f events/s, ETA %s",
            self.label, summary.events_accepted, summary.events_total, percent, summary.batches_accepted, rate, eta,
        )

    def _save_checkpoint(self, digest: str, summary: LoadSummary, complete: bool) -> None:
        write_json(
            self.files.checkpoint,
            {
                "events_digest": digest,
                "events_accepted": summary.events_accepted,
                "events_total": summary.events_total,
                "complete": complete,
                "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
        )

    def _position(self, batch: list[dict], summary: LoadSummary) -> str:
        first = summary.events_accepted + 1
        return (
            f"events {first}-{first + len(batch) - 1} of {summary.events_total} "
            f"(uuids {batch[0].get('uuid')} .. {batch[-1].get('uuid')})"
        )

    def _send_with_retries(self, batch: list[dict], summary: LoadSummary) -> None:
        """Send until accepted; split on 413; raise ``LoadError`` on what retrying cannot fix."""
        for attempt in range(1, self.max_attempts + 1):
            summary.batches_sent += 1
            try:
                self.send_batch(batch)
                return
            except BatchRejected as exc:
                status = exc.status
                if status == TOO_LARGE:
                    self._split(batch, summary, exc)
                    return
                if status in AUTH_STATUSES:
                    raise LoadError(f"{self.label}: PostHog refused the project API key: {exc}") from None
                if not exc.retryable:
                    raise LoadError(f"{self.label}: PostHog rejected {self._position(batch, summary)}: {exc}") from None
                if attempt == self.max_attempts:
                    raise LoadError(
                        f"{self.label}: PostHog did not accept {self._position(batch, summary)} after "
                        f"{self.max_attempts} attempts; last error: {exc}"
                    ) from None
                delay = backoff_seconds(attempt, exc.retry_after, self.backoff_base, self.backoff_cap, self._rng)
                summary.retries += 1
                self.log.warning(
                    "%s: batch of %d events not accepted (%s); attempt %d/%d, retrying in %.1fs",
                    self.label, len(batch), exc, attempt, self.max_attempts, delay,
                )
                self._sleep(delay)

    def _split(self, batch: list[dict], summary: LoadSummary, exc: Exception) -> None:
        if len(batch) == 1:
            raise LoadError(
                f"{self.label}: PostHog refused event {summary.events_accepted + 1} of {summary.events_total} "
                f"(uuid {batch[0].get('uuid')}, {event_size(batch[0])} bytes) as too large: {exc}"
            )
        summary.splits += 1
        half = len(batch) // 2
        self.log.warning("%s: batch of %d events too large for PostHog; sending it in two halves", self.label, len(batch))
        self._send_with_retries(batch[:half], summary)
        summary.events_accepted += half
        try:
            self._send_with_retries(batch[half:], summary)
        finally:
            summary.events_accepted -= half


def summary_dict(summary: LoadSummary) -> dict:
    """The summary as plain JSON for the report."""
    return asdict(summary)
