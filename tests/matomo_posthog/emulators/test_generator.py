"""The synthetic visit generator: deterministic, complete, and timed the way Matomo times visits."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from matomo_posthog.emulators.generator import generate_visits, local_midnight_utc
from matomo_posthog.timezones import local_wall_epoch, parse_timezone

ALL_ACTION_TYPES = {"action", "download", "outlink", "search", "event", 13, "goal", "ecommerceOrder",
                    "ecommerceAbandonedCart"}
# Visit keys in the order a real Matomo 5 response has them (fixture test_OneVisitor_SeveralDays... plus
# visitorId, which the test harness strips).
MATOMO_VISIT_KEY_ORDER = [
    "idSite", "idVisit", "visitIp", "visitorId", "fingerprint", "actionDetails", "goalConversions", "siteCurrency",
    "siteCurrencySymbol", "serverDate", "visitServerHour", "lastActionTimestamp", "lastActionDateTime", "siteName",
    "serverTimestamp", "firstActionTimestamp", "serverTimePretty", "serverDatePretty",
    "serverDatePrettyFirstAction", "serverTimePrettyFirstAction", "userId", "visitorType", "visitorTypeIcon",
    "visitConverted", "visitConvertedIcon", "visitCount", "visitEcommerceStatus", "visitEcommerceStatusIcon",
    "daysSinceFirstVisit", "secondsSinceFirstVisit", "daysSinceLastEcommerceOrder",
    "secondsSinceLastEcommerceOrder", "visitDuration", "visitDurationPretty", "searches", "actions",
    "interactions", "referrerType", "referrerTypeName", "referrerName", "referrerKeyword",
    "referrerKeywordPosition", "referrerUrl", "referrerSearchEngineUrl", "referrerSearchEngineIcon",
    "referrerSocialNetworkUrl", "referrerSocialNetworkIcon", "languageCode", "language", "deviceType",
    "deviceTypeIcon", "deviceBrand", "deviceModel", "operatingSystem", "operatingSystemName",
    "operatingSystemIcon", "operatingSystemCode", "operatingSystemVersion", "browserFamily",
    "browserFamilyDescription", "browser", "browserName", "browserIcon", "browserCode", "browserVersion",
    "totalEcommerceRevenue", "totalEcommerceConversions", "totalEcommerceItems", "totalAbandonedCartsRevenue",
    "totalAbandonedCarts", "totalAbandonedCartsItems", "events", "continent", "continentCode", "country",
    "countryCode", "countryFlag", "region", "regionCode", "city", "location", "latitude", "longitude",
    "visitLocalTime", "visitLocalHour", "daysSinceLastVisit", "secondsSinceLastVisit", "resolution", "plugins",
    "pluginsIcons", "dimension1", "dimension2",
]
# Action keys in Matomo's order (tap-matomo's sample of a real response and the fixtures).
MATOMO_PAGEVIEW_KEY_ORDER = ["type", "url", "pageTitle", "pageIdAction", "idpageview", "serverTimePretty", "pageId",
                             "timeSpent", "timeSpentPretty", "pageviewPosition", "title", "subtitle", "icon",
                             "iconSVG", "timestamp"]
MATOMO_EVENT_KEY_ORDER = ["type", "url", "pageIdAction", "idpageview", "serverTimePretty", "pageId", "eventCategory",
                          "eventAction", "pageviewPosition", "timestamp", "icon", "iconSVG", "title", "subtitle"]


def _day(timezone_name: str, day: date, count: int = 20, seed: int = 11, **options) -> list[dict]:
    return generate_visits(1, timezone_name, day, day, count, seed, **options)


def _in_order(keys: list[str], expected_order: list[str]) -> bool:
    positions = [keys.index(key) for key in expected_order if key in keys]
    return positions == sorted(positions)


def test_same_arguments_give_the_same_visits():
    first = generate_visits(3, "Europe/Berlin", date(2024, 5, 1), date(2024, 5, 3), 15, seed=42)
    second = generate_visits(3, "Europe/Berlin", date(2024, 5, 1), date(2024, 5, 3), 15, seed=42)
    other_seed = generate_visits(3, "Europe/Berlin", date(2024, 5, 1), date(2024, 5, 3), 15, seed=43)
    assert json.dumps(first) == json.dumps(second)
    assert first != other_seed


def test_a_day_does_not_depend_on_the_rest_of_the_range():
    def without_numbering(visits):
        text = json.dumps(visits)
        rows = json.loads(text)
        for row in rows:
            row.pop("idVisit")
            for action in row["actionDetails"]:
                action.pop("pageId", None)
                action.pop("goalPageId", None)
        return rows

    whole = generate_visits(1, "UTC", date(2024, 5, 1), date(2024, 5, 3), 10, seed=7)
    middle = generate_visits(1, "UTC", date(2024, 5, 2), date(2024, 5, 2), 10, seed=7)
    assert without_numbering(whole[10:20]) == without_numbering(middle)


def test_every_action_type_occurs_in_a_day_of_twenty_visits():
    visits = _day("Europe/Berlin", date(2024, 6, 12))
    actions = [action for visit in visits for action in visit["actionDetails"]]
    assert {action["type"] for action in actions} == ALL_ACTION_TYPES
    events = [action for action in actions if action["type"] == "event"]
    assert any("eventName" not in event for event in events) and any("eventName" in event for event in events)
    assert any("eventValue" in event for event in events) and any("eventValue" not in event for event in events)
    assert any("productViewSku" in action for action in actions if action["type"] == "action")
    searches = [action for action in actions if action["type"] == "search"]
    assert all(search["url"] is None and "siteSearchKeyword" in search for search in searches)
    orders = [action for action in actions if action["type"] == "ecommerceOrder"]
    assert all(isinstance(order["orderId"], str) and order["itemDetails"] for order in orders)
    assert {visit["referrerType"] for visit in visits} == {"direct", "search", "website", "campaign"}
    assert any(visit["userId"] for visit in visits) and any(visit["userId"] is None for visit in visits)


def test_small_days_cover_every_action_type_over_a_few_days():
    visits = generate_visits(1, "UTC", date(2024, 6, 1), date(2024, 6, 5), 2, seed=1)
    assert {action["type"] for visit in visits for action in visit["actionDetails"]} == ALL_ACTION_TYPES


def test_visit_ids_are_unique_and_increase_with_the_first_action():
    visits = generate_visits(1, "America/New_York", date(2024, 1, 1), date(2024, 1, 4), 20, seed=3,
                             first_id_visit=1000)
    assert [visit["idVisit"] for visit in visits] == list(range(1000, 1080))
    starts = [visit["firstActionTimestamp"] for visit in visits]
    assert starts == sorted(starts)
    page_ids = [action["pageId"] for visit in visits for action in visit["actionDetails"] if "pageId" in action]
    assert len(page_ids) == len(set(page_ids))


def test_visits_lie_within_their_site_local_day():
    tz = parse_timezone("Asia/Kolkata")
    for day in (date(2024, 2, 28), date(2024, 2, 29)):
        for visit in _day("Asia/Kolkata", day):
            assert local_midnight_utc(day, tz) <= visit["firstActionTimestamp"]
            assert visit["lastActionTimestamp"] < local_midnight_utc(day + timedelta(days=1), tz)


def test_midnight_visit_ends_exactly_at_the_next_local_midnight():
    day = date(2024, 7, 9)
    visits = _day("UTC+5.5", day, midnight_visits=True)
    next_midnight = local_midnight_utc(day + timedelta(days=1), parse_timezone("UTC+5.5"))
    ending_at_midnight = [visit for visit in visits if visit["lastActionTimestamp"] == next_midnight]
    assert len(ending_at_midnight) == 1
    visit = ending_at_midnight[0]
    assert visit["firstActionTimestamp"] < next_midnight
    assert visit["actionDetails"][-1]["serverTimePretty"] == "Jul 10, 2024 00:00:00"


def test_action_timestamps_encode_the_site_local_wall_clock():
    visit = _day("UTC+14", date(2010, 2, 1), count=1)[0]
    first = visit["actionDetails"][0]
    assert first["timestamp"] == visit["firstActionTimestamp"] + 14 * 3600
    for name in ("UTC+14", "Europe/Berlin"):
        tz = parse_timezone(name)
        for visit in _day(name, date(2024, 8, 20)):
            assert visit["actionDetails"][0]["timestamp"] == local_wall_epoch(visit["firstActionTimestamp"], tz)
            for action in visit["actionDetails"]:
                wall = datetime.fromtimestamp(action["timestamp"], timezone.utc)
                assert action["serverTimePretty"] == f"{wall:%b} {wall.day}, {wall.year} {wall:%H:%M:%S}"


def test_days_when_clocks_change_still_have_valid_times():
    tz = parse_timezone("Europe/Berlin")
    for day, hours in ((date(2024, 3, 31), 23), (date(2024, 10, 27), 25)):
        start, end = local_midnight_utc(day, tz), local_midnight_utc(day + timedelta(days=1), tz)
        assert end - start == hours * 3600
        visits = _day("Europe/Berlin", day, count=60)
        for visit in visits:
            assert start <= visit["firstActionTimestamp"] <= visit["lastActionTimestamp"] < end
            assert visit["visitDuration"] == visit["lastActionTimestamp"] - visit["firstActionTimestamp"]
            first_local = datetime.fromtimestamp(visit["firstActionTimestamp"], tz)
            assert visit["visitLocalTime"] == first_local.strftime("%H:%M:%S")
            assert visit["serverDatePrettyFirstAction"].endswith(f"{day.day}, {day.year}")
        assert {datetime.fromtimestamp(visit["firstActionTimestamp"], tz).utcoffset() for visit in visits} == {
            timedelta(hours=1), timedelta(hours=2)}


def test_values_are_typed_like_php_8_1():
    visits = _day("Europe/Berlin", date(2024, 6, 12))
    for visit in visits:
        for key in ("idSite", "idVisit", "visitCount", "visitDuration", "actions", "firstActionTimestamp",
                    "lastActionTimestamp", "serverTimestamp", "goalConversions"):
            assert type(visit[key]) is int, key
        for key in ("visitServerHour", "visitLocalHour", "browserVersion", "operatingSystemVersion", "visitorId"):
            assert type(visit[key]) is str, key
        assert len(visit["visitorId"]) == 16 and int(visit["visitorId"], 16) >= 0
        assert visit["latitude"] is None or re.fullmatch(r"-?\d+\.\d{6}", visit["latitude"])
        assert visit["resolution"] == "unknown" or "x" in visit["resolution"]
        assert visit["visitIp"] in ("203.0.113.0", "198.51.100.0", "2001:db8:85a3::")
        assert visit["actions"] == len([a for a in visit["actionDetails"]
                                        if a["type"] in ("action", "download", "outlink", "search", "event")])
        for action in visit["actionDetails"]:
            assert type(action["timestamp"]) is int
            assert action["type"] != "13"
            for item in action.get("itemDetails", []):
                assert type(item["quantity"]) is int and isinstance(item["price"], (int, float))
    revenues = [action["revenue"] for visit in visits for action in visit["actionDetails"] if "revenue" in action]
    assert revenues and all(isinstance(revenue, (int, float)) for revenue in revenues)
    assert all(not (isinstance(revenue, float) and revenue.is_integer()) for revenue in revenues)


def test_keys_follow_matomo_order():
    for visit in _day("UTC", date(2024, 6, 12)):
        keys = list(visit)
        assert keys[:6] == MATOMO_VISIT_KEY_ORDER[:6]
        assert _in_order(keys, MATOMO_VISIT_KEY_ORDER)
        assert set(MATOMO_VISIT_KEY_ORDER) <= set(keys)
        for action in visit["actionDetails"]:
            if action["type"] == "action":
                assert _in_order(list(action), MATOMO_PAGEVIEW_KEY_ORDER)
            if action["type"] == "event":
                assert _in_order(list(action), MATOMO_EVENT_KEY_ORDER)
            assert list(action)[0] == "type" and "dimension3" in action


def test_user_id_visits_carry_a_visitor_id_derived_from_the_user_id():
    visits = generate_visits(1, "UTC", date(2024, 6, 1), date(2024, 6, 10), 20, seed=2)
    by_user: dict[str, set[str]] = {}
    for visit in visits:
        if visit["userId"]:
            by_user.setdefault(visit["userId"], set()).add(visit["visitorId"])
    assert 0.1 < sum(1 for visit in visits if visit["userId"]) / len(visits) < 0.3
    assert all(len(visitor_ids) == 1 for visitor_ids in by_user.values())


def test_conversions_follow_the_page_that_triggered_them():
    for visit in _day("UTC", date(2024, 6, 12)):
        hits = {action["pageId"]: action for action in visit["actionDetails"] if "pageId" in action}
        for action in visit["actionDetails"]:
            if action["type"] == "goal":
                assert hits[action["goalPageId"]]["timestamp"] == action["timestamp"]
        kinds = Counter(action["type"] for action in visit["actionDetails"])
        assert visit["goalConversions"] == kinds["goal"]
        assert visit["visitConverted"] == int(bool(kinds["goal"] or kinds["ecommerceOrder"]))


@settings(max_examples=25, deadline=None)
@given(
    timezone_name=st.sampled_from(["UTC", "UTC+14", "UTC-11", "UTC+5.5", "Europe/Berlin", "America/Santiago",
                                   "Australia/Lord_Howe", "Pacific/Chatham"]),
    day=st.dates(min_value=date(2015, 1, 1), max_value=date(2030, 12, 31)),
    count=st.integers(min_value=0, max_value=12),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_any_day_in_any_timezone_gives_valid_visits(timezone_name, day, count, seed):
    tz = parse_timezone(timezone_name)
    start, end = local_midnight_utc(day, tz), local_midnight_utc(day + timedelta(days=1), tz)
    visits = generate_visits(9, timezone_name, day, day, count, seed, midnight_visits=True)
    assert len(visits) == count
    for visit in visits:
        assert start <= visit["firstActionTimestamp"] <= visit["lastActionTimestamp"] <= end
        if visit["lastActionTimestamp"] == end:  # the midnight visit's last hit is at the next local midnight
            assert visit["actionDetails"][-1]["timestamp"] == local_wall_epoch(end, tz)
        assert visit["actions"] <= len(visit["actionDetails"])
