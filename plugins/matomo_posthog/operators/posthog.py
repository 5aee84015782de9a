"""PostHogOperator: loads one site-local day's events from storage into PostHog."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from airflow.sdk import BaseOperator, ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from matomo_posthog.hooks.posthog import PostHogHook
from matomo_posthog.load import DayLoader, LoadError, summary_dict
from matomo_posthog.storage import day_files, update_report
from matomo_posthog.timezones import parse_timezone
from matomo_posthog.windows import final_at, is_final


def as_bool(value: Any) -> bool:
    """A flag that may arrive rendered from a template as text."""
    return value.strip().lower() in ("1", "true", "yes", "on") if isinstance(value, str) else bool(value)


class PostHogOperator(BaseOperator):
    """Send ``site=<id>/<day>/events.ndjson.gz`` to PostHog as ``historical_migration`` batches.

    Resumes from the day's checkpoint, refuses days that are not yet 48 hours old, and with ``dry_run`` does
    everything except sending (no connection needed). Fails when an event was not accepted.
    """

    template_fields = ("day", "dry_run", "reload")

    def __init__(
        self,
        *,
        site_id: int,
        site_timezone: str,
        day: str,
        storage: str,
        posthog_conn_id: str = PostHogHook.default_conn_name,
        batch_size: int = 1000,
        batch_max_bytes: int = 5_000_000,
        events_per_minute: int = 10_000,
        progress_every: float = 30.0,
        dry_run: bool | str = False,
        reload: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.site_id = site_id
        self.site_timezone = site_timezone
        self.day = day
        self.storage = storage
        self.posthog_conn_id = posthog_conn_id
        self.batch_size = batch_size
        self.batch_max_bytes = batch_max_bytes
        self.events_per_minute = events_per_minute
        self.progress_every = progress_every
        self.dry_run = dry_run
        self.reload = reload

    def execute(self, context: Any) -> dict:
        day = date.fromisoformat(str(self.day))
        files = day_files(ObjectStoragePath(self.storage), self.site_id, day)
        dry_run = as_bool(self.dry_run)
        tz = parse_timezone(self.site_timezone)
        if not dry_run and not is_final(day, tz, datetime.now(timezone.utc)):
            ready = final_at(day, tz).isoformat(timespec="minutes")
            update_report(files, "load", {"status": "not final", "final_at": ready})
            raise AirflowSkipException(
                f"site {self.site_id} {day} is not loaded yet: PostHog asks that historical events be at least 48 "
                f"hours old, which this day is from {ready} UTC"
            )
        send = (lambda batch: None) if dry_run else PostHogHook(self.posthog_conn_id).send_batch
        loader = DayLoader(
            files,
            send,
            batch_size=self.batch_size,
            batch_max_bytes=self.batch_max_bytes,
            events_per_minute=self.events_per_minute,
            progress_every=self.progress_every,
            label=f"site {self.site_id} {day}",
            log=self.log,
        )
        try:
            summary = loader.run(dry_run=dry_run, reload=as_bool(self.reload))
        except LoadError as exc:
            update_report(files, "load", {"status": "failed", "error": str(exc)})
            # Attempts were already retried inside the load; what is left needs a person.
            raise AirflowFailException(str(exc)) from None
        update_report(files, "load", summary_dict(summary))
        return {"events_accepted": summary.events_accepted, "status": summary.status}
