"""FinalDayOperator: holds a day back, deferred and without a worker slot, until PostHog may take it."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import BaseOperator

from matomo_posthog.timezones import parse_timezone
from matomo_posthog.windows import final_at


class FinalDayOperator(BaseOperator):
    """Succeed at once for a day that ended 48 hours ago; otherwise defer until it has.

    PostHog asks that historical events be at least 48 hours old, and Matomo's raw data for a day is complete
    only once the day is over, so the daily schedule of an ongoing sync waits here rather than in a worker.
    """

    template_fields = ("day",)

    def __init__(self, *, site_timezone: str, day: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.site_timezone = site_timezone
        self.day = day

    def execute(self, context: Any) -> str:
        ready = final_at(date.fromisoformat(str(self.day)), parse_timezone(self.site_timezone))
        if datetime.now(timezone.utc) >= ready:
            return str(self.day)
        self.log.info("%s becomes final at %s UTC; waiting without holding a worker slot", self.day, ready)
        self.defer(trigger=DateTimeTrigger(moment=ready), method_name="execute_complete")

    def execute_complete(self, context: Any, event: Any = None) -> str:
        """Resume once the trigger fired: the day is final now."""
        self.log.info("%s is final; migrating it", self.day)
        return str(self.day)
