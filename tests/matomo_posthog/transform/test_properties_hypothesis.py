"""Randomised and malformed visits: the transform never raises and every event is one PostHog accepts."""

import copy
import json
from datetime import datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matomo_posthog.transform import Mapping, SiteContext, transform_visit
from matomo_posthog.transform import properties as p

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "matomo"
REAL_VISITS = [visit for path in sorted(FIXTURES.glob("*.json")) for visit in json.loads(path.read_text("utf-8"))]
VISIT_KEYS = sorted(set(p.VISIT_FIELDS) | {"dimension1", "dimension7", "campaignSource", "userId", "visitorId"})
ACTION_KEYS = sorted(set(p.ACTION_FIELDS) | set(p.CUSTOM_EVENT_FIELDS) | set(p.SITE_SEARCH_FIELDS)
                     | set(p.CONTENT_FIELDS) | set(p.GOAL_FIELDS) | set(p.ORDER_FIELDS) | set(p.PRODUCT_VIEW_FIELDS)
                     | {"dimension3", "contentInteraction"})
TYPES = ["action", "event", "search", "download", "outlink", 13, "13", "goal", "ecommerceOrder",
         "ecommerceAbandonedCart", "media", "", None, 13.0, True]
TIMEZONES = ["UTC", "Europe/Berlin", "UTC+5.5", "UTC-3", "UTC+14", "America/New_York", "Australia/Lord_Howe"]
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30)
    | st.sampled_from(["", " ", "unknown", "Unknown", "xx", "13", "68536", "NaN", "1e400", "-0", " 12 ",
                       "1024x768", "48.924000", "1700000000", "2010-03-06 11:22:33", "http://[::1", "\x00"])
    | st.integers(min_value=600_000_000, max_value=4_200_000_000)
)
json_values = st.recursive(
    scalars, lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children,
                                                                                max_size=4),
    max_leaves=12,
)
visit_keys = st.sampled_from(VISIT_KEYS) | st.text(max_size=12)
action_keys = st.sampled_from(ACTION_KEYS) | st.text(max_size=12)


def date_real_visits(visit):
    """Fixture visits mostly lack dates; give most of them one so their actions become events."""
    if not {"firstActionTimestamp", "lastActionTimestamp", "lastActionDateTime"} & visit.keys():
        visit["firstActionTimestamp"] = 1700000000
    return visit


@st.composite
def mutated_visits(draw):
    visit = copy.deepcopy(draw(st.sampled_from(REAL_VISITS)))
    if draw(st.integers(0, 3)):
        date_real_visits(visit)
    for _ in range(draw(st.integers(0, 6))):
        actions = visit.get("actionDetails")
        target = draw(st.sampled_from(["visit", "action", "action", "delete", "replace action", "actionDetails"]))
        if target == "visit":
            visit[draw(visit_keys)] = draw(json_values)
        elif target == "delete" and visit:
            visit.pop(draw(st.sampled_from(sorted(visit))), None)
        elif target == "actionDetails":
            visit["actionDetails"] = draw(json_values)
        elif isinstance(actions, list) and actions:
            index = draw(st.integers(0, len(actions) - 1))
            if target == "replace action":
                actions[index] = draw(json_values)
            elif isinstance(actions[index], dict):
                key = draw(action_keys | st.just("type") | st.just("timestamp"))
                actions[index][key] = draw(st.sampled_from(TYPES) if key == "type" else json_values)
    return visit


plausible_times = st.integers(min_value=946_684_800, max_value=4_000_000_000)
random_actions = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES)},
    optional={"timestamp": plausible_times | scalars, "url": scalars, "timeSpent": scalars, "pageTitle": scalars,
              "eventCategory": scalars, "eventAction": scalars, "contentInteraction": scalars,
              "itemDetails": json_values, "productViewSku": scalars, "productViewCategories": json_values,
              "customVariables": json_values, "dimension2": scalars},
)
random_visits = st.fixed_dictionaries(
    {"idVisit": st.integers(1, 10**9) | st.integers(1, 10**9).map(str),
     "firstActionTimestamp": plausible_times | plausible_times.map(str),
     "actionDetails": st.lists(random_actions | random_actions | json_values, max_size=6)},
    optional={key: json_values for key in VISIT_KEYS
              if key not in ("idVisit", "firstActionTimestamp", "actionDetails")},
)
mappings = st.builds(
    Mapping,
    emit_goals=st.booleans(),
    drop_ip=st.booleans(),
    event_name_template=st.sampled_from(["{category}: {action}", "{name}", "{category} - {action} - {name}", "x"]),
    custom_dimensions=st.sampled_from([{}, {"1": "plan", "3": "section"}]),
)


def check_result(visit, site, mapping, check_event):
    result = transform_visit(visit, site, mapping)

    assert "transform_failed" not in result.skipped, result.error
    for event in result.events:
        problem = check_event(event)
        assert problem is None, (problem, event)
    from_actions = len(result.events) - sum(result.extra_events.values())
    assert result.actions == from_actions + sum(result.skipped.values())
    times = [datetime.fromisoformat(e["timestamp"]) for e in result.events]
    assert times == sorted(times)
    assert len({e["uuid"] for e in result.events}) == len(result.events)
    assert len({e["distinct_id"] for e in result.events}) <= 1
    again = transform_visit(copy.deepcopy(visit), site, mapping)
    assert again.events == result.events
    return result


@SETTINGS
@given(visit=mutated_visits(), timezone=st.sampled_from(TIMEZONES), mapping=mappings)
def test_mutated_real_visits_never_break_the_transform(visit, timezone, mapping, check_event):
    check_result(visit, SiteContext(site_id=1, timezone=timezone, currency="EUR"), mapping, check_event)


@SETTINGS
@given(visit=random_visits, timezone=st.sampled_from(TIMEZONES), mapping=mappings)
def test_random_visits_never_break_the_transform(visit, timezone, mapping, check_event):
    check_result(visit, SiteContext(site_id=3, timezone=timezone), mapping, check_event)


@SETTINGS
@given(value=json_values)
def test_any_json_value_as_a_visit_is_refused_quietly(value, check_event):
    result = transform_visit(value, SiteContext(site_id=1, timezone="UTC"))
    assert all(check_event(event) is None for event in result.events)
