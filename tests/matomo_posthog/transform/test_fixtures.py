"""Every real Matomo output in ../shared/fixtures/matomo goes through the transform."""

import copy
import json
from collections import Counter
from datetime import datetime, timezone

import pytest

from matomo_posthog.transform import Mapping, SiteContext, TransformStats, transform_visit, transform_visits
from matomo_posthog.transform.names import type_key

# The start given to visits whose file had its dates stripped, as a real response would carry one.
START = 1700000000
DATE_FIELDS = {"firstActionTimestamp", "lastActionTimestamp", "lastActionDateTime"}


def with_start(visits):
    """The visits with a firstActionTimestamp where Matomo's test harness removed the dates."""
    dated = copy.deepcopy(visits)
    for visit in dated:
        if not DATE_FIELDS & visit.keys():
            visit["firstActionTimestamp"] = START
    return dated


@pytest.fixture
def transform_file(load_fixture, fixture_site):
    """The results of a fixture file's visits, given a start time where the file has no dates."""

    def transform(name, mapping=Mapping(), dated=True):
        visits = load_fixture(name)
        site = fixture_site(name, visits)
        return [transform_visit(v, site, mapping) for v in (with_start(visits) if dated else visits)]

    return transform


def events_of(results, name=None):
    return [e for r in results for e in r.events if name is None or e["event"] == name]


def test_the_fixtures_are_there(fixture_files):
    assert len(fixture_files) >= 8


def test_every_fixture_transforms_without_error_and_accounts_for_each_action(fixture_file, load_fixture,
                                                                            fixture_site, check_event):
    visits = load_fixture(fixture_file)
    site = fixture_site(fixture_file, visits)
    for dated in (False, True):
        stats = TransformStats()
        events = list(transform_visits(with_start(visits) if dated else visits, site, Mapping(), stats))

        assert stats.errors == []
        assert stats.visits == len(visits)
        assert stats.actions == sum(len(v["actionDetails"]) for v in visits)
        assert stats.actions == stats.events_from_actions + sum(stats.skipped.values())
        assert [problem for problem in map(check_event, events) if problem] == []
        if dated:  # with a start time, only goals stay behind
            assert set(stats.skipped) <= {"goal"}
            goals = sum(1 for v in visits for a in v["actionDetails"] if a["type"] == "goal")
            assert stats.skipped["goal"] == goals


def test_files_without_dates_send_only_what_has_a_time(fixture_file, load_fixture, fixture_site):
    visits = load_fixture(fixture_file)
    stats = TransformStats()
    list(transform_visits(visits, fixture_site(fixture_file, visits), Mapping(), stats))
    has_dates = any(DATE_FIELDS & v.keys() for v in visits)
    assert ("no_timestamp" in stats.skipped) is not has_dates


def test_every_pageview_has_its_page(fixture_file, load_fixture, fixture_site):
    visits = with_start(load_fixture(fixture_file))
    site = fixture_site(fixture_file, visits)
    for visit in visits:
        pages = [a for a in visit["actionDetails"] if a["type"] == "action"]
        views = [e for e in transform_visit(visit, site).events if e["event"] == "$pageview"]
        assert len(views) == len(pages)
        for action, event in zip(pages, views):
            properties = event["properties"]
            assert properties["$current_url"] == action["url"]
            assert properties["$host"] and properties["$pathname"].startswith("/")
            assert properties.get("title") == action["pageTitle"]


def test_many_visitors_file_maps_every_type(transform_file):
    results = transform_file("test_ManyVisitorsOneWebsiteTest__Live.getLastVisitsDetails_month.json")

    names = Counter(e["event"] for e in events_of(results))
    assert {name: names[name] for name in ("$pageview", "Site Search", "Download", "Outlink Clicked")} == {
        "$pageview": 10, "Site Search": 3, "Download": 5, "Outlink Clicked": 5
    }
    assert sum(count for name, count in names.items() if name.startswith("Cat")) == 5
    assert sum(r.skipped.get("goal", 0) for r in results) == 15

    search = events_of(results, "Site Search")[0]["properties"]
    assert (search["search_keyword"], search["search_category"], search["search_results_count"]) == (
        "Bring on the party", "CAT", 48
    )
    outlink = events_of(results, "Outlink Clicked")[0]["properties"]
    assert outlink["$external_click_url"].startswith("http://example-outlink.org/")
    assert outlink["$current_url"] == "http://piwik.net/space/quest/iv"
    download = events_of(results, "Download")[0]["properties"]
    assert download["$current_url"].startswith("http://example.org/path/file")


def test_many_visitors_file_user_geo_and_referrer(transform_file):
    results = transform_file("test_ManyVisitorsOneWebsiteTest__Live.getLastVisitsDetails_month.json")
    visit_35 = next(r for r in results if r.events and r.events[0]["properties"]["matomo_visit_id"] == 35)

    event = visit_35.events[0]
    assert event["distinct_id"] == "userid.email@example.org"  # no visitorId in the file: no $identify
    properties = event["properties"]
    assert (properties["$referrer"], properties["$referring_domain"]) == ("http://google.com/?q=Wikileaks FTW",
                                                                          "google.com")
    assert properties["matomo_referrer_keyword"] == "wikileaks ftw"
    assert (properties["$geoip_country_code"], properties["$geoip_continent_code"]) == ("US", "NA")
    assert (properties["$geoip_latitude"], properties["$geoip_longitude"]) == (1.0, 2.0)
    assert properties["$geoip_subdivision_1_name"] == "California"
    assert (properties["$browser"], properties["$os"], properties["$os_version"]) == ("Safari", "Windows", "XP")
    assert "$browser_version" not in properties
    direct = events_of(results)[-1]["properties"]
    assert (direct["$referrer"], direct["$referring_domain"]) == ("$direct", "$direct")


def test_page_scope_custom_variables(transform_file):
    results = transform_file("test_ManyVisitorsOneWebsiteTest__Live.getLastVisitsDetails_month.json")
    pages = [e["properties"] for e in events_of(results, "$pageview") if "custom_variable_Cvar 2 PAGE name" in
             e["properties"]]
    assert pages and pages[0]["custom_variable_Cvar 5 PAGE name"].startswith("Cvar5 PAGE value is ")


def test_ecommerce_orders_carry_their_values_and_products(transform_file):
    results = transform_file("test_ecommerceOrderWithItems__Live.getLastVisitsDetails_day.json")

    orders = {e["properties"]["order_id"]: e["properties"] for e in events_of(results, "Order Completed")}
    first = orders["937nsjusu 3894"]
    assert {key: first[key] for key in ("revenue", "subtotal", "tax", "shipping", "discount", "currency")} == {
        "revenue": 1111.11, "subtotal": 1000, "tax": 111, "shipping": 0.11, "discount": 666, "currency": "USD"
    }
    assert first["products"] == [
        {"sku": "SKU VERY nice indeed", "name": "PRODUCT name", "category": "Multiple Category 1", "price": 500,
         "quantity": 2},
        {"sku": "ANOTHER SKU HERE", "name": "PRODUCT name BIS", "price": 100, "quantity": 6},
    ]
    second = orders["1037nsjusu4s3894"]
    assert (second["revenue"], second["discount"], [p["price"] for p in second["products"]]) == (2000, 0, [1500, 11.22])

    carts = events_of(results, "Cart Abandoned")
    assert len(carts) == 2
    assert carts[0]["properties"]["revenue"] == 2510.11
    assert [p["price"] for p in carts[0]["properties"]["products"]] == [10, 500.11, 1000]

    viewed = events_of(results, "Product Viewed")
    assert len(viewed) == 11 and len(events_of(results, "Product List Viewed")) == 2
    product = next(e["properties"] for e in viewed if e["properties"].get("price") == 1111.11111)
    assert (product["sku"], product["name"], product["category"], product["currency"]) == (
        "SKU2", "PRODUCT name", "Electronics & Cameras", "USD"
    )
    visit_properties = events_of(results)[0]["properties"]
    assert visit_properties["custom_variable_ValueIsZero"] == "0"


def test_goals_when_asked_for(transform_file):
    results = transform_file("test_ecommerceOrderWithItems__Live.getLastVisitsDetails_day.json",
                             Mapping(emit_goals=True))
    (goal,) = events_of(results, "Goal Converted")
    assert {k: goal["properties"][k] for k in ("goal_id", "goal_name", "revenue", "currency")} == {
        "goal_id": 1, "goal_name": "title match, triggered ONCE", "revenue": 10, "currency": "USD"
    }


def test_custom_events_names_values_and_utf8(transform_file):
    results = transform_file("test_CustomEvents__Live.getLastVisitsDetails_day.json")
    events = [e for e in events_of(results) if e["properties"]["matomo_action_type"] == "event"]

    assert len(events) == 47
    assert sum("event_name" not in e["properties"] for e in events) == 9
    names = {e["event"] for e in events}
    assert {"Music: play", "Movie: rating", "Movie: Purchase"} <= names
    assert {e["properties"].get("event_name") for e in events} >= {"La fiancée de l'eau",
                                                                   "Spirited Away (千と千尋の神隠し)"}
    values = Counter(e["properties"].get("event_value") for e in events)
    assert (values[9.66], values[0]) == (4, 1)  # a zero value is kept
    long_one = next(e for e in events if e["properties"]["event_category"].startswith("event category Extremely"))
    assert long_one["properties"]["event_category"].endswith("NOT TRUNCATED <---")
    assert len(long_one["event"]) == 200
    json.loads(json.dumps(events, ensure_ascii=False))


def test_content_tracking(transform_file):
    results = transform_file("test_Contents__Live.getLastVisitsDetails_day.json")
    names = Counter(e["event"] for e in events_of(results))
    assert (names["Content Impression"], names["Content Interaction"]) == (18, 6)
    clicks = [e["properties"] for e in events_of(results, "Content Interaction")]
    assert {c["content_interaction"] for c in clicks} == {"click", "submit"}
    assert all(c["content_name"] and c["title"] == "Ads" for c in clicks)
    assert events_of(results, "$pageview")[0]["properties"]["page_load_time_ms"] == 1152


def test_custom_dimensions(transform_file):
    mapping = Mapping(custom_dimensions={"1": "plan", "3": "language"})
    results = transform_file("test___Live.getLastVisitsDetails_year.json", mapping)
    first_visit = next(r for r in results if r.events[0]["properties"]["matomo_visit_id"] == 1)
    pages = [e["properties"] for e in first_visit.events if e["event"] == "$pageview"]

    assert [(p["plan"], p["dimension2"], p["dimension6"]) for p in pages][0] == ("value5 1", "en_US", "value6")
    assert [(p["language"], p["dimension5"]) for p in pages] == [("value3", "value5"), ("en", "343"),
                                                                  ("value5 3", "en_US")]
    other = next(r for r in results if r.events[0]["properties"]["matomo_visit_id"] == 2)
    assert "plan" not in other.events[0]["properties"]


def test_user_ids_and_visitor_ids(transform_file):
    results = transform_file("test_UserId_VisitorId__Live.getLastVisitsDetails_month.json",
                             dated=False)

    identify = events_of(results, "$identify")
    assert len(identify) == 5
    assert {(e["distinct_id"], e["properties"]["$anon_distinct_id"]) for e in identify} == {
        ("email@example.com", "9395988394d4568d"), ("new-email@example.com", "c9ade7a5a103b2ed"),
        ("new-user-id@one-weeklater", "72d4b5565daf5546"),
    }
    visit_5 = next(r for r in results if r.events[0]["properties"]["matomo_visit_id"] == 5)
    assert {e["distinct_id"] for e in visit_5.events} == {"new-email@example.com"}
    assert visit_5.events[0]["event"] == "$identify"
    cart = next(e for e in visit_5.events if e["event"] == "Cart Abandoned")
    assert cart["timestamp"] == "2010-03-06T16:40:33.000000+00:00"
    assert cart["properties"]["products"][0]["price"] == 10000000000
    anonymous = next(r for r in results if r.events[0]["properties"]["matomo_visit_id"] == 1)
    assert anonymous.events[0]["distinct_id"] == "a13b7c5a62f72dea"


def test_action_times_equal_matomos_utc_times_for_utc_sites(load_fixture, transform_file):
    name = ("test_OneVisitor_SeveralDays_ImportedInRandomOrderTest_shouldShowOneVisit_InEachOfThreeDays__"
            "Live.getLastVisitsDetails_month.json")
    visits = load_fixture(name)
    for visit, result in zip(visits, transform_file(name, dated=False)):
        assert result.events[0]["timestamp"] == datetime.fromtimestamp(
            visit["serverTimestamp"], timezone.utc).isoformat(timespec="microseconds")
        assert result.events[0]["properties"]["bandwidth_bytes"] == 9625
        assert "title" not in result.events[0]["properties"]  # pageTitle is null in this file


@pytest.mark.parametrize("as_string", [False, True])
def test_content_type_13_as_number_or_string(load_fixture, as_string):
    visits = with_start(load_fixture("test_Contents__Live.getLastVisitsDetails_day.json"))
    if as_string:
        for action in visits[0]["actionDetails"]:
            action["type"] = str(action["type"])
    events = transform_visit(visits[0], SiteContext(1, "UTC")).events
    assert {type_key(a["type"]) for a in visits[0]["actionDetails"]} == {"action", "13"}
    assert sum(e["event"].startswith("Content ") for e in events) == 12
