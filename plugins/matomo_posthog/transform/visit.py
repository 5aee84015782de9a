"""One Matomo visit to PostHog events, and running totals over a day of visits."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Iterator

from matomo_posthog.transform import identity, names, properties
from matomo_posthog.transform.mapping import DEFAULT_MAPPING, Mapping
from matomo_posthog.transform.times import (
    LATEST,
    BadTime,
    VisitBounds,
    action_time,
    epoch_seconds,
    is_absent,
    iso,
    site_timezone,
    visit_bounds,
)
from matomo_posthog.transform.values import integer, text

# An action time this far outside the visit's real UTC bounds means the site timezone or the data is wrong.
BOUNDS_TOLERANCE = timedelta(minutes=10)
# A pageview's timeSpent beyond this is not believed, and gets no $pageleave.
MAX_TIME_SPENT = 24 * 3600
# A visit's error line spells out this many problems and counts the rest.
MAX_PROBLEMS = 5


@dataclass(frozen=True)
class SiteContext:
    """The Matomo site the visits come from: its id, its timezone in Matomo's form, its currency code."""

    site_id: int
    timezone: str  # "Europe/Berlin", or Matomo's fixed offsets "UTC+5.5", "UTC-3"
    currency: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.site_id, bool) or not isinstance(self.site_id, int) or self.site_id <= 0:
            raise ValueError(f"site id {self.site_id!r} is not a positive integer")
        site_timezone(self.timezone)  # an unknown timezone fails here, before any visit is read


@dataclass
class VisitResult:
    """What one visit became.

    ``events``: PostHog events in time order. ``skipped``: reason -> number of the visit's actions that did not
    become an event. ``error``: the visit's problems in one line, or None. ``actions``: entries in
    ``actionDetails``, so that ``actions == events made from actions + sum(skipped)``. ``extra_events``: event
    name -> events that are not one action each (``$pageleave``, ``$identify``, ``Product Viewed``...).
    ``truncated_actions``: actions Matomo left out of the visit (its per-visit limit).
    """

    events: list[dict]
    skipped: dict[str, int]
    error: str | None
    actions: int = 0
    extra_events: dict[str, int] = field(default_factory=dict)
    truncated_actions: int = 0


def _action_list(value: Any, problems: list[str]) -> list:
    if value is None:
        return []  # exports made with doNotFetchActions
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        # PHP writes an array with gaps in its keys as an object: keep the actions in key order.
        def position(key: str) -> tuple[int, Any]:
            number = integer(key)
            return (0, number) if number is not None else (1, key)

        return [value[key] for key in sorted(value, key=position)]
    problems.append("actionDetails is not a list")
    return []


class _VisitTransform:
    """The state of one visit's transformation; :func:`transform_visit` is the way in."""

    def __init__(self, visit: dict, site: SiteContext, mapping: Mapping) -> None:
        self.visit = visit
        self.site = site
        self.mapping = mapping
        self.problems: list[str] = []
        self.skipped: Counter[str] = Counter()
        self.extra: Counter[str] = Counter()
        self.events: list[tuple[datetime, int, dict]] = []
        self.bounds = VisitBounds()

    def result(self, label: Any, actions: int, truncated: int = 0) -> VisitResult:
        self.events.sort(key=lambda entry: (entry[0], entry[1]))
        problems = self.problems[:MAX_PROBLEMS]
        if len(self.problems) > MAX_PROBLEMS:
            problems.append(f"and {len(self.problems) - MAX_PROBLEMS} more problems")
        error = f"visit {label}: " + "; ".join(problems) if problems else None
        return VisitResult(
            [event for _, _, event in self.events], dict(self.skipped), error, actions, dict(self.extra), truncated
        )

    def run(self) -> VisitResult:
        visit, site = self.visit, self.site
        actions = _action_list(visit.get("actionDetails"), self.problems)
        visit_id = integer(visit.get("idVisit"))
        if visit_id is None or visit_id <= 0:
            # Without its id a visit cannot get stable uuids, and a re-run would duplicate it.
            self.problems.append("idVisit is missing or not a positive integer")
            if actions:
                self.skipped["no_visit_id"] = len(actions)
            return self.result(str(visit.get("idVisit"))[:40], len(actions))
        site_of_visit = integer(visit.get("idSite"))
        if site_of_visit is not None and site_of_visit != site.site_id:
            self.problems.append(f"idSite {site_of_visit} is not the site being migrated ({site.site_id})")
        truncated = max(integer(visit.get("truncatedActionsCount")) or 0, 0)

        self.bounds = visit_bounds(visit, self.problems)
        planned = self.plan(actions)
        if planned:
            self.emit_all(visit_id, actions, planned)
        return self.result(visit_id, len(actions), truncated)

    def plan(self, actions: list) -> list[tuple[int, dict, str, datetime]]:
        """Each action that becomes an event, with its type and UTC time; the others are counted as skipped."""
        tz, bounds = site_timezone(self.site.timezone), self.bounds
        known = bounds.first  # the time of an action without its own: the previous action's, or the visit start
        outside = False
        planned = []
        for index, action in enumerate(actions):
            if not isinstance(action, dict):
                self.skip("not_an_object", f"actionDetails[{index}] is not an object")
                continue
            key = names.type_key(action.get("type"))
            if key is None:
                self.skip("no_type", f"actionDetails[{index}].type is missing")
                continue
            row = names.action_type(key)
            if row.enabled_by and not getattr(self.mapping, row.enabled_by):
                self.skipped[row.kind] += 1
                continue
            raw = action.get("timestamp")
            if is_absent(raw):
                when = known
            else:
                try:
                    when = action_time(epoch_seconds(raw), tz, bounds, known)
                except BadTime as exc:
                    self.skip("bad_timestamp", f"actionDetails[{index}].timestamp {exc}")
                    continue
                if not outside and bounds.distance(when) > BOUNDS_TOLERANCE.total_seconds():
                    outside = True
                    self.problems.append(
                        f"actionDetails[{index}].timestamp is {bounds.distance(when) / 3600:.1f} h outside the "
                        f"visit's first and last action times: is the site timezone {self.site.timezone!r} right?"
                    )
            if when is None:
                self.skipped["no_timestamp"] += 1
                continue
            known = when
            planned.append((index, action, key, when))
        return planned

    def skip(self, reason: str, problem: str) -> None:
        self.skipped[reason] += 1
        self.problems.append(problem)

    def emit_all(self, visit_id: int, actions: list, planned: list[tuple[int, dict, str, datetime]]) -> None:
        site, mapping = self.site, self.mapping
        first_times = [when for _, _, _, when in planned] + ([self.bounds.first] if self.bounds.first else [])
        start = min(first_times)
        distinct_id, anonymous_id = identity.distinct_ids(self.visit, site.site_id, visit_id)
        base = {
            "matomo_site_id": site.site_id,
            **properties.visit_properties(self.visit, mapping, _landing_url(actions)),
            "matomo_visit_id": visit_id,
            "$session_id": identity.session_id(site.site_id, visit_id, start),
        }
        currency = site.currency or text(self.visit.get("siteCurrency"))

        def emit(position: int | str, kind: str, name: str, when: datetime, props: dict[str, Any]) -> None:
            event = {
                "uuid": identity.event_uuid(site.site_id, visit_id, position, kind),
                "event": name,
                "distinct_id": distinct_id,
                "timestamp": iso(when),
                "properties": mapping.apply(props),
            }
            # $identify first among events of the same instant, then in action order.
            order = -1 if position == "visit" else len(self.events)
            self.events.append((when, order, event))

        page: dict[str, Any] = {}  # the last pageview's URL properties and title: the page later actions are on
        for index, action, key, when in planned:
            row = names.action_type(key)
            kind, default_name = row.kind, row.event
            if row.interaction and text(action.get(row.interaction[0])):
                kind, default_name = row.interaction[1], row.interaction[2]
            if key == "event":
                name = names.custom_event_name(action, mapping, default_name)
            else:
                name = names.event_name(kind, default_name, mapping)

            own = properties.action_properties(action, mapping)
            url = text(action.get("url"))
            if key == "action" or (url and row.url_property == "$current_url"):
                location = properties.url_properties(url)
            else:  # an action without a page URL of its own happened on the last page viewed
                location = {prop: value for prop, value in page.items() if prop != "title"}
                if url:
                    location[row.url_property] = url
            if key == "action":
                page = {**properties.url_properties(url), **({"title": own["title"]} if "title" in own else {})}
            elif "title" not in own and "title" in page:
                own["title"] = page["title"]

            built = row.build(action, mapping, currency)
            common = {**base, **location, **own, "matomo_action_type": key}
            # A known type's own fields win; an unknown type's raw fields never hide the mapped ones.
            props = {**common, **built} if key in names.ACTION_TYPES else {**built, **common}
            emit(index, "action", name, when, props)

            if key == "action":
                self.pageview_extras(emit, index, action, when, props, {**base, **location, **own}, currency)

        if anonymous_id:
            name = names.event_name("identify", names.EXTRA_EVENTS["identify"], mapping)
            self.extra[name] += 1
            emit("visit", "identify", name, start, {**base, "$anon_distinct_id": anonymous_id})

    def pageview_extras(self, emit, index: int, action: dict, when: datetime, pageview: dict, page: dict,
                        currency: str | None) -> None:
        """A pageview's Product (List) Viewed and its $pageleave."""
        product = properties.product_view(action, self.mapping, currency)
        if product:
            kind, product_properties = product
            name = names.event_name(kind, names.EXTRA_EVENTS[kind], self.mapping)
            self.extra[name] += 1
            emit(index, kind, name, when, {**page, **product_properties, "matomo_action_type": "action"})

        time_spent = integer(action.get("timeSpent"))
        if time_spent is None:
            return
        if not 0 <= time_spent <= MAX_TIME_SPENT or when + timedelta(seconds=time_spent) >= LATEST:
            self.problems.append(f"pageview timeSpent {time_spent} is not believable; no $pageleave sent")
            return
        name = names.event_name("pageleave", names.EXTRA_EVENTS["pageleave"], self.mapping)
        self.extra[name] += 1
        leave = {**pageview, "$prev_pageview_duration": time_spent}
        if "$pathname" in pageview:
            leave["$prev_pageview_pathname"] = pageview["$pathname"]
        emit(index, "pageleave", name, when + timedelta(seconds=time_spent), leave)


def _landing_url(actions: list) -> str | None:
    # The first pageview's URL carries the campaign parameters; failing that, the first URL of any action.
    urls = [(a.get("type") == "action", text(a.get("url"))) for a in actions if isinstance(a, dict)]
    return next((url for is_page, url in urls if is_page and url), None) or next((url for _, url in urls if url), None)


def transform_visit(visit: dict, site: SiteContext, mapping: Mapping = DEFAULT_MAPPING) -> VisitResult:
    """Turn one Matomo visit (an element of ``Live.getLastVisitsDetails``) into PostHog events.

    Never raises on what the visit holds: problems are reported in ``error``, every action is either an event or
    counted in ``skipped`` under a reason, and the events that could be made safely are returned.
    """
    if not isinstance(visit, dict):
        return VisitResult([], {}, "visit ?: not a JSON object")
    transform = _VisitTransform(visit, site, mapping)
    try:
        return transform.run()
    except Exception as exc:  # a last resort: one visit the rules did not foresee must not stop the day
        actions = visit.get("actionDetails")
        count = len(actions) if isinstance(actions, (list, dict)) else 0
        return VisitResult(
            [], {"transform_failed": count} if count else {},
            f"visit {str(visit.get('idVisit'))[:40]}: could not be transformed ({type(exc).__name__}: {exc})",
            count,
        )


@dataclass
class TransformStats:
    """Running totals over the visits of a day, for the day's report.

    ``actions == events_from_actions + sum(skipped.values())`` holds over any set of visits.
    """

    MAX_ERRORS = 100

    visits: int = 0
    actions: int = 0
    truncated_actions: int = 0
    events: int = 0
    events_by_name: Counter = field(default_factory=Counter)
    extra_events: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    error_count: int = 0

    @property
    def events_from_actions(self) -> int:
        """Events that are one Matomo action each."""
        return self.events - sum(self.extra_events.values())

    def add(self, result: VisitResult) -> None:
        """Count one visit's result."""
        self.visits += 1
        self.actions += result.actions
        self.truncated_actions += result.truncated_actions
        self.events += len(result.events)
        self.events_by_name.update(event["event"] for event in result.events)
        self.extra_events.update(result.extra_events)
        self.skipped.update(result.skipped)
        if result.error:
            self.error_count += 1
            if len(self.errors) < self.MAX_ERRORS:
                self.errors.append(result.error)

    def as_dict(self) -> dict[str, Any]:
        """The totals as plain JSON values (the first MAX_ERRORS error lines, and how many there were)."""
        return {
            "visits": self.visits,
            "actions": self.actions,
            "truncated_actions": self.truncated_actions,
            "events": self.events,
            "events_from_actions": self.events_from_actions,
            "extra_events": dict(sorted(self.extra_events.items())),
            "events_by_name": dict(sorted(self.events_by_name.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "error_count": self.error_count,
            "errors": list(self.errors),
        }


def transform_visits(
    visits: Iterable[dict], site: SiteContext, mapping: Mapping, stats: TransformStats
) -> Iterator[dict]:
    """The events of many visits, visit after visit, counting each visit into ``stats``."""
    for visit in visits:
        result = transform_visit(visit, site, mapping)
        stats.add(result)
        yield from result.events
