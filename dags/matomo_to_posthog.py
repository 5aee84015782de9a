"""One DAG per Matomo site in include/matomo_posthog.toml: extract, transform and load each site-local day.

Wiring only: the work of each step lives in the ``matomo_posthog`` package under plugins/.
"""

from __future__ import annotations

import logging
import os
from datetime import date, timedelta
from pathlib import Path

import pendulum
from airflow.sdk import (
    CronDataIntervalTimetable,
    ObjectStoragePath,
    Param,
    dag,
    get_current_context,
    task,
    task_group,
)
from airflow.sdk.exceptions import AirflowFailException

from matomo_posthog import steps
from matomo_posthog.config import SiteConfig, load_config
from matomo_posthog.hooks.matomo import MatomoHook
from matomo_posthog.operators.final_day import FinalDayOperator
from matomo_posthog.operators.posthog import PostHogOperator
from matomo_posthog.storage import day_files
from matomo_posthog.timezones import fixed_offset_seconds, parse_timezone
from matomo_posthog.transform import Mapping, load_mapping
from matomo_posthog.windows import plan_days

log = logging.getLogger("matomo_posthog")

CONFIG_FILE = Path(os.environ.get("MATOMO_POSTHOG_CONFIG", Path(__file__).parents[1] / "include" / "matomo_posthog.toml"))

DOC = """
### Matomo site {site_id} → PostHog

Each run migrates the site-local days of its data interval (timezone `{timezone}`); a manual run may give
`start` and `end` (YYYY-MM-DD, both included) instead. For every day: **extract** the visits from Matomo,
**transform** them into PostHog events with deterministic ids, **load** them as historical batches. The last
task prints a table per day and fails if any produced event was not accepted.

* **Backfill** a range: Trigger → Backfill, pick the dates (one run per day), or give `start`/`end` to one run.
* **Retry a day**: clear that day's map index of `day.extract` with *Downstream*; the same events (same uuids)
  are sent again and PostHog keeps one of each.
* **dry_run**: do everything but send; the report says what would have been sent.
* **reload**: send a day again even though its checkpoint says it was fully accepted.

Files and `report.json` of each day: `{storage}/site={site_id}/<day>/`.
"""


def airflow_timezone(name: str):
    """The pendulum timezone of a Matomo site timezone, fixed offsets included."""
    offset = fixed_offset_seconds(name)
    return pendulum.timezone(name) if offset is None else pendulum.FixedTimezone(offset)


def build_dag(site: SiteConfig):
    """The DAG of one site."""
    tz = airflow_timezone(site.timezone)

    @dag(
        dag_id=site.dag_id,
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone=tz),
        start_date=pendulum.datetime(site.start_date.year, site.start_date.month, site.start_date.day, tz=tz),
        end_date=(
            pendulum.datetime(site.end_date.year, site.end_date.month, site.end_date.day, tz=tz)
            if site.end_date
            else None
        ),
        catchup=False,
        max_active_runs=4,
        render_template_as_native_obj=True,
        doc_md=DOC.format(site_id=site.site_id, timezone=site.timezone, storage=site.storage),
        tags=["matomo", "posthog", *site.tags],
        params={
            "start": Param(None, type=["null", "string"], format="date", description="First day (YYYY-MM-DD)"),
            "end": Param(None, type=["null", "string"], format="date", description="Last day, included"),
            "dry_run": Param(False, type="boolean", description="Do everything except sending to PostHog"),
            "reload": Param(False, type="boolean", description="Send days again that were fully accepted"),
        },
        default_args={
            "retries": site.retries,
            "retry_delay": timedelta(minutes=1),
            "retry_exponential_backoff": True,
        },
    )
    def migrate():
        @task
        def plan(data_interval_start=None, data_interval_end=None, params=None) -> list[str]:
            """The site-local days this run migrates."""
            days = plan_days(params.get("start"), params.get("end"), data_interval_start, data_interval_end,
                             parse_timezone(site.timezone))
            print(f"site {site.site_id}: {len(days)} day(s) to migrate: {', '.join(days)}")
            return days

        def label(day: str) -> None:
            get_current_context()["day"] = day

        @task_group(group_id="day")
        def one_day(day: str):
            wait = FinalDayOperator(
                task_id="wait_until_final", site_timezone=site.timezone, day=day, map_index_template="{{ task.day }}"
            )

            @task(map_index_template="{{ day }}", pool=site.matomo_pool or None)
            def extract(day: str) -> str:
                label(day)
                hook = MatomoHook(
                    site.matomo_conn_id, timeout=site.request_timeout, min_request_interval=site.min_request_interval
                )
                files = day_files(ObjectStoragePath(site.storage), site.site_id, day)
                steps.extract_day(
                    hook, files, site.site_id, site.timezone, date.fromisoformat(day),
                    site.page_size, site.min_page_size, log,
                )
                return day

            @task(map_index_template="{{ day }}")
            def transform(day: str) -> str:
                label(day)
                mapping = load_mapping(site.mapping_file) if site.mapping_file else Mapping()
                files = day_files(ObjectStoragePath(site.storage), site.site_id, day)
                steps.transform_day(files, site.site_id, site.timezone, mapping, log)
                return day

            load = PostHogOperator(
                task_id="load",
                site_id=site.site_id,
                site_timezone=site.timezone,
                day=transform(extract(wait.output)),
                storage=site.storage,
                posthog_conn_id=site.posthog_conn_id,
                batch_size=site.batch_size,
                batch_max_bytes=site.batch_max_bytes,
                events_per_minute=site.events_per_minute,
                progress_every=site.progress_seconds,
                dry_run="{{ params.dry_run }}",
                reload="{{ params.reload }}",
                map_index_template="{{ task.day }}",
            )
            return load

        @task(trigger_rule="all_done")
        def report(days: list[str]) -> None:
            """Print the per-day table and fail if anything produced was not accepted."""
            table, problems = steps.reconcile_days(ObjectStoragePath(site.storage), site.site_id, days)
            print(table)
            if problems:
                raise AirflowFailException("not every event was accepted: " + "; ".join(problems))

        days = plan()
        one_day.expand(day=days) >> report(days)

    return migrate()


for _site in load_config(CONFIG_FILE):
    globals()[_site.dag_id] = build_dag(_site)
