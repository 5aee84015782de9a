"""The work of each step of a day, on storage and a hook passed in: what the DAG's tasks call.

No Airflow import: the DAG gives the hooks, the storage root and a logger, so each step can be run and tested
on its own.
"""

from __future__ import annotations

import logging
import time
from datetime import date
from typing import Any

from matomo_posthog.storage import DayFiles, NdjsonWriter, day_files, read_json, read_ndjson_gz, update_report
from matomo_posthog.timezones import parse_timezone
from matomo_posthog.transform import Mapping, SiteContext, TransformStats, transform_visits
from matomo_posthog.transform.values import integer
from matomo_posthog.windows import day_bounds_utc

# Errors of single visits are counted in full but only this many are spelled out in the log.
LOGGED_VISIT_ERRORS = 20


class SiteMismatchError(ValueError):
    """The Matomo site is not the one the DAG was configured for."""


def check_site(site: dict, site_id: int, timezone: str) -> None:
    """Fail before any data moves when Matomo's site timezone differs from the DAG's."""
    if str(site.get("timezone")) != timezone:
        raise SiteMismatchError(
            f"Matomo site {site_id} is in timezone {site.get('timezone')!r} but this DAG is configured with "
            f"{timezone!r}: set timezone = {site.get('timezone')!r} for site {site_id} in the config file, "
            "otherwise days would be cut at the wrong hour"
        )


def extract_day(
    hook: Any, files: DayFiles, site_id: int, timezone: str, day: date, page_size: int, min_page_size: int,
    log: logging.Logger | logging.LoggerAdapter,
) -> dict:
    """Write the day's visits to ``visits.ndjson.gz`` page by page and report what Matomo says it has."""
    started = time.monotonic()
    site = hook.get_site(site_id)
    check_site(site, site_id, timezone)
    day_start, day_end = day_bounds_utc(day, parse_timezone(timezone))
    log.info(
        "site %s %s: fetching the visits of %s .. %s UTC from Matomo, %d a page, into %s",
        site_id, day, day_start.isoformat(timespec="minutes"), day_end.isoformat(timespec="minutes"), page_size,
        files.visits,
    )
    counts = {"visits_extracted": 0, "actions": 0, "truncated_actions": 0, "visits_at_next_midnight": 0, "pages": 0}
    with NdjsonWriter(files.visits) as writer:
        for page in hook.iter_day_pages(site_id, day, page_size=page_size, min_page_size=min_page_size):
            counts["pages"] += 1
            for visit in page:
                # Matomo's day includes the next midnight; such a visit belongs to the next day.
                if (integer(visit.get("lastActionTimestamp")) or 0) >= day_end.timestamp():
                    counts["visits_at_next_midnight"] += 1
                    continue
                writer.write(visit)
                counts["visits_extracted"] += 1
                actions = visit.get("actionDetails")
                counts["actions"] += len(actions) if isinstance(actions, list) else 0
                counts["truncated_actions"] += integer(visit.get("truncatedActionsCount")) or 0
    matomo = hook.visits_summary(site_id, day)
    report = {
        **counts,
        "matomo_visits": matomo["nb_visits"],
        "matomo_actions": matomo["nb_actions"],
        "site_currency": site.get("currency"),
        "site_timezone": site.get("timezone"),
        "seconds": round(time.monotonic() - started, 3),
        "warnings": [],
    }
    if counts["visits_extracted"] != matomo["nb_visits"]:
        report["warnings"].append(
            f"Matomo's VisitsSummary counts {matomo['nb_visits']} visits on {day} but {counts['visits_extracted']} "
            "were extracted (VisitsSummary can lag when archiving has not run, or raw data was purged)"
        )
    if counts["truncated_actions"]:
        report["warnings"].append(
            f"Matomo left out {counts['truncated_actions']} actions of visits longer than its per-visit limit"
        )
    for warning in report["warnings"]:
        log.warning("site %s %s: %s", site_id, day, warning)
    log.info(
        "site %s %s: %d visits (%d actions) written to %s in %d pages",
        site_id, day, counts["visits_extracted"], counts["actions"], files.visits, counts["pages"],
    )
    update_report(files, "extract", report)
    return report


def transform_day(
    files: DayFiles, site_id: int, timezone: str, mapping: Mapping, log: logging.Logger | logging.LoggerAdapter,
) -> dict:
    """Turn the day's visits into PostHog events in ``events.ndjson.gz``."""
    started = time.monotonic()
    extract = read_json(files.report, default={}).get("extract", {})
    site = SiteContext(site_id=site_id, timezone=timezone, currency=extract.get("site_currency"))
    stats = TransformStats()
    with NdjsonWriter(files.events) as writer:
        for event in transform_visits(read_ndjson_gz(files.visits), site, mapping, stats):
            writer.write(event)
    report = {**stats.as_dict(), "events": writer.count, "seconds": round(time.monotonic() - started, 3)}
    for error in report.get("errors", [])[:LOGGED_VISIT_ERRORS]:
        log.warning("site %s %s: %s", site_id, files.folder.name, error)
    log.info(
        "site %s %s: %d events written to %s; by name %s; skipped %s",
        site_id, files.folder.name, writer.count, files.events, report.get("events_by_name"), report.get("skipped"),
    )
    update_report(files, "transform", report)
    return report


RECONCILE_COLUMNS = ("day", "matomo visits", "extracted", "actions", "events", "skipped", "accepted", "status")


def reconcile_row(day: str, report: dict) -> tuple[list[str], str | None]:
    """One line of the run's table, and the problem with the day if there is one."""
    extract, transform, load = (report.get(key, {}) for key in ("extract", "transform", "load"))
    events = transform.get("events")
    accepted = load.get("events_accepted")
    status = load.get("status", "not loaded")
    problem = None
    if status in ("loaded", "already loaded") and accepted != events:
        problem = f"{day}: {events} events produced but {accepted} accepted"
    elif status not in ("loaded", "already loaded", "dry run", "not final"):
        problem = f"{day}: {status}"
    skipped = " ".join(f"{reason}:{count}" for reason, count in sorted((transform.get("skipped") or {}).items()))
    cells = [day, extract.get("matomo_visits"), extract.get("visits_extracted"), extract.get("actions"), events,
             skipped or (0 if transform else None), accepted, status]
    return ["-" if cell is None else str(cell) for cell in cells], problem


def format_table(rows: list[list[str]], columns=RECONCILE_COLUMNS) -> str:
    """A plain-text table that reads well in a task log."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(columns, *rows)]

    def line(cells) -> str:
        # The first column (the day) reads left-aligned, the counts right-aligned.
        return "  ".join(
            str(cell).ljust(width) if index == 0 else str(cell).rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths))
        )

    return "\n".join([line(columns), line(["-" * width for width in widths]), *(line(row) for row in rows)])


def reconcile_days(root: Any, site_id: int, days: list[str]) -> tuple[str, list[str]]:
    """The per-day table of a run and the list of days where something produced was not accepted."""
    rows, problems = [], []
    for day in days:
        row, problem = reconcile_row(day, read_json(day_files(root, site_id, day).report, default={}))
        rows.append(row)
        if problem:
            problems.append(problem)
    return format_table(rows), problems
