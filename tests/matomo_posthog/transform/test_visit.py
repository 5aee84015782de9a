import json
from datetime import datetime

import pytest

from matomo_posthog.transform import Mapping, SiteContext, TransformStats, transform_visit, transform_visits

SITE = SiteContext(site_id=1, timezone="UTC")


def visit(actions, **fields):
    return {"idSite": 1, "idVisit": 42, "actionDetails": actions, **fields}


def pageview(url="https://example.org/", **fields):
    return {"type": "action", "url": url, **fields}


def reconciles(result):
    from_actions = len(result.events) - sum(result.extra_events.values())
    return result.actions == from_actions + sum(result.skipped.values())


def test_events_come_in_time_order_with_each_pageleave_after_its_pageview():
    result = transform_visit(visit([
        pageview("https://example.org/a", timestamp=1700000000, timeSpent=60),
        pageview("https://example.org/b", timestamp=1700000030, timeSpent=5),
        {"type": "event", "eventCategory": "c", "eventAction": "a", "timestamp": 1700000040},
    ]), SITE)

    assert [(e["event"], e["timestamp"][11:19], e["properties"].get("$pathname")) for e in result.events] == [
        ("$pageview", "22:13:20", "/a"),
        ("$pageview", "22:13:50", "/b"),
        ("$pageleave", "22:13:55", "/b"),
        ("c: a", "22:14:00", "/b"),
        ("$pageleave", "22:14:20", "/a"),
    ]
    leave = result.events[-1]["properties"]
    assert leave["$prev_pageview_duration"] == 60 and leave["$prev_pageview_pathname"] == "/a"
    assert result.error is None and reconciles(result)


def test_actions_without_time_take_the_previous_actions_time_or_the_visit_start():
    result = transform_visit(visit(
        [pageview(), {"type": "search", "siteSearchKeyword": "x"}, pageview(timestamp=1700000100),
         {"type": "ecommerceOrder", "orderId": "1"}],
        firstActionTimestamp=1700000000, lastActionTimestamp=1700000100,
    ), SITE)
    times = [(e["event"], datetime.fromisoformat(e["timestamp"]).timestamp()) for e in result.events]
    assert times == [("$pageview", 1700000000), ("Site Search", 1700000000), ("$pageview", 1700000100),
                     ("Order Completed", 1700000100)]


def test_visits_without_any_time_are_skipped_not_invented():
    result = transform_visit(visit([pageview(), {"type": "goal"}, pageview()], serverDate="2024-01-01"), SITE)
    assert result.events == []
    assert result.skipped == {"no_timestamp": 2, "goal": 1}
    assert result.error is None and reconciles(result)


def test_a_garbage_timestamp_is_reported_and_only_that_action_is_skipped():
    result = transform_visit(visit([pageview(timestamp=1700000000), pageview(timestamp="soon"),
                                    pageview(timestamp=1700000010)]), SITE)
    assert [e["event"] for e in result.events if e["event"] == "$pageview"] == ["$pageview", "$pageview"]
    assert result.skipped == {"bad_timestamp": 1}
    assert result.error == "visit 42: actionDetails[1].timestamp is not a number"


def test_malformed_actions_are_counted_and_reported():
    result = transform_visit(visit(
        [pageview(timestamp=1700000000), "not an action", {"url": "https://example.org/"}, None]
    ), SITE)
    assert result.skipped == {"not_an_object": 2, "no_type": 1}
    assert "actionDetails[1] is not an object" in result.error and "actionDetails[2].type is missing" in result.error
    assert reconciles(result)


def test_a_visit_without_id_sends_nothing():
    result = transform_visit({"actionDetails": [pageview(timestamp=1700000000)]}, SITE)
    assert result.events == [] and result.skipped == {"no_visit_id": 1}
    assert "idVisit is missing" in result.error


@pytest.mark.parametrize("value", [None, []])
def test_visits_without_actions_have_no_events(value):
    result = transform_visit(visit(value, userId="u", visitorId="v", firstActionTimestamp=1700000000), SITE)
    assert (result.events, result.skipped, result.error, result.actions) == ([], {}, None, 0)


@pytest.mark.parametrize("value", ["a string", 5, {"x": [1]}, [[1, 2]]])
def test_non_object_visits_and_odd_action_lists_never_raise(value):
    result = transform_visit(value if not isinstance(value, dict) else visit(value), SITE)
    assert result.events == [] and result.error


def test_an_action_list_sent_as_an_object_is_read_in_key_order():
    result = transform_visit(visit({"1": pageview("https://example.org/b", timestamp=1700000010),
                                    "0": pageview("https://example.org/a", timestamp=1700000000)}), SITE)
    assert [e["properties"]["$pathname"] for e in result.events] == ["/a", "/b"]


def test_numbers_as_strings_are_accepted():
    result = transform_visit({"idSite": "1", "idVisit": "68536", "actionDetails": [
        {"type": "13", "contentName": "Ad", "timestamp": "1700000000", "pageId": "12"},
        pageview(timestamp="1700000001", timeSpent="13"),
    ]}, SITE)
    assert result.error is None
    assert [e["event"] for e in result.events] == ["Content Impression", "$pageview", "$pageleave"]
    assert result.events[0]["properties"]["matomo_visit_id"] == 68536
    assert result.events[0]["properties"]["matomo_action_id"] == 12


def test_a_visit_of_another_site_is_reported():
    result = transform_visit(visit([pageview(timestamp=1700000000)], idSite=2), SITE)
    assert result.events and "idSite 2 is not the site being migrated (1)" in result.error


def test_an_unbelievable_time_spent_gives_no_pageleave():
    result = transform_visit(visit([pageview(timestamp=1700000000, timeSpent=-5)]), SITE)
    assert [e["event"] for e in result.events] == ["$pageview"]
    assert "timeSpent -5" in result.error


def test_events_are_valid_json_for_posthog():
    result = transform_visit(visit([pageview(timestamp=1700000000, timeSpent=1)], latitude="NaN",
                                   longitude="inf", browserVersion="nan"), SITE)
    for event in result.events:
        json.dumps(event, allow_nan=False)
        assert set(event) == {"uuid", "event", "distinct_id", "timestamp", "properties"}


def test_stats_add_up_over_visits_and_reconcile():
    visits = [
        visit([pageview(timestamp=1700000000, timeSpent=3), {"type": "goal", "timestamp": 1700000001}],
              userId="u", visitorId="v"),
        visit([pageview(timestamp="x")], idVisit=43, truncatedActionsCount="2"),
        "garbage",
    ]
    stats = TransformStats()

    events = list(transform_visits(visits, SITE, Mapping(), stats))

    totals = stats.as_dict()
    assert totals["visits"] == 3 and totals["actions"] == 3 and totals["truncated_actions"] == 2
    assert totals["events"] == len(events) == 3
    assert totals["events_by_name"] == {"$identify": 1, "$pageleave": 1, "$pageview": 1}
    assert totals["extra_events"] == {"$identify": 1, "$pageleave": 1}
    assert totals["skipped"] == {"bad_timestamp": 1, "goal": 1}
    assert totals["actions"] == totals["events_from_actions"] + sum(totals["skipped"].values())
    assert totals["error_count"] == 2 and len(totals["errors"]) == 2
    json.dumps(totals)


def test_stats_keep_the_first_hundred_errors_and_count_all():
    stats = TransformStats()
    list(transform_visits(["bad"] * 150, SITE, Mapping(), stats))
    assert stats.error_count == 150 and len(stats.errors) == 100


def test_the_site_is_checked_when_it_is_made():
    with pytest.raises(ValueError, match="site timezone"):
        SiteContext(site_id=1, timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="site id"):
        SiteContext(site_id=0, timezone="UTC")
