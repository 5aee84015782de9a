from pathlib import Path

import pytest

from matomo_posthog.transform import Mapping, SiteContext, transform_visit
from matomo_posthog.transform import properties as p

SITE = SiteContext(site_id=1, timezone="UTC", currency="EUR")
DOCS = Path(__file__).resolve().parents[3] / "docs" / "mapping.md"


def visit_properties(actions=None, mapping=Mapping(), **fields):
    """The properties of the first event of a visit with these fields."""
    visit = {
        "idSite": 1,
        "idVisit": 9,
        "firstActionTimestamp": 1700000000,
        "actionDetails": actions or [{"type": "action", "url": "https://shop.example.org/a?b=1", "pageTitle": "A"}],
        **fields,
    }
    result = transform_visit(visit, SITE, mapping)
    assert result.events, result
    return result.events[0]["properties"]


def test_every_event_carries_the_constant_properties():
    properties = visit_properties()
    assert {key: properties[key] for key in p.VISIT_CONSTANTS} == {
        "$referrer": "$direct", "$referring_domain": "$direct", "$geoip_disable": True,
        "$ignore_sent_at": True, "$lib": "matomo-posthog",
    }
    assert properties["matomo_site_id"] == 1 and properties["matomo_visit_id"] == 9
    assert properties["$current_url"] == "https://shop.example.org/a?b=1"
    assert properties["$host"] == "shop.example.org" and properties["$pathname"] == "/a"
    assert properties["title"] == "A"


def test_a_referrer_url_replaces_direct():
    properties = visit_properties(referrerType="website", referrerUrl="https://News.example.com/story?id=1")
    assert properties["$referrer"] == "https://News.example.com/story?id=1"
    assert properties["$referring_domain"] == "news.example.com"
    assert properties["matomo_referrer_type"] == "website"


def test_a_search_engine_without_referrer_url_still_counts_as_search():
    properties = visit_properties(referrerType="search", referrerName="Google", referrerUrl=None,
                                  referrerSearchEngineUrl="https://google.com", referrerKeyword="Keyword not defined")
    assert properties["$referring_domain"] == "google.com"
    assert "matomo_referrer_keyword" not in properties


def test_campaign_fields_win_over_landing_page_parameters():
    landing = "https://example.org/?utm_source=url-source&utm_medium=url-medium&mtm_campaign=url-campaign&gclid=G1"
    properties = visit_properties(
        [{"type": "action", "url": landing}], campaignSource="newsletter", campaignName="", campaignKeyword=None,
    )
    assert properties["utm_source"] == "newsletter"
    assert properties["utm_medium"] == "url-medium"
    assert properties["utm_campaign"] == "url-campaign"
    assert properties["gclid"] == "G1"
    assert "utm_term" not in properties


def test_campaign_referrers_give_utm_campaign_and_term():
    properties = visit_properties(referrerType="campaign", referrerName="spring sale", referrerKeyword="shoes")
    assert (properties["utm_campaign"], properties["utm_term"]) == ("spring sale", "shoes")


def test_campaign_parameters_come_from_the_landing_page_for_every_event():
    actions = [
        {"type": "event", "eventCategory": "a", "eventAction": "b", "url": None},
        {"type": "action", "url": "https://example.org/#pk_campaign=hash-campaign&pk_source=x"},
        {"type": "action", "url": "https://example.org/next?utm_source=ignored"},
    ]
    visit = {"idVisit": 3, "firstActionTimestamp": 1700000000, "actionDetails": actions}
    events = transform_visit(visit, SITE).events
    assert {(e["properties"]["utm_campaign"], e["properties"]["utm_source"]) for e in events} == {
        ("hash-campaign", "x")
    }


@pytest.mark.parametrize("resolution, expected", [
    ("1024x768", {"$screen_width": 1024, "$screen_height": 768}),
    ("unknown", {}), ("", {}), (None, {}), ("12x", {}),
])
def test_resolution(resolution, expected):
    properties = visit_properties(resolution=resolution)
    assert {k: v for k, v in properties.items() if k.startswith("$screen")} == expected


@pytest.mark.parametrize("browser, system, expected", [
    ("Chrome Mobile", "Android", "Chrome"),
    ("Chrome", "Windows", "Chrome"),
    ("Safari", "iOS", "Mobile Safari"),
    ("Safari", "iPadOS", "Mobile Safari"),
    ("Safari", "Mac", "Safari"),
    ("Mobile Safari", "iOS", "Mobile Safari"),
    ("Chrome Mobile iOS", "iOS", "Chrome iOS"),
    ("Microsoft Edge", "Windows", "Microsoft Edge"),
    ("Samsung Browser", "Android", "Samsung Internet"),
    ("Opera", "Windows", "Opera"),
    ("Internet Explorer", "Windows", "Internet Explorer"),
    ("Firefox", "GNU/Linux", "Firefox"),
    ("Pale Moon", "Windows", "Pale Moon"),
])
def test_browsers_use_posthog_js_names(browser, system, expected):
    assert visit_properties(browserName=browser, operatingSystemName=system)["$browser"] == expected


@pytest.mark.parametrize("system, expected", [
    ("Mac", "Mac OS X"), ("Windows", "Windows"), ("iOS", "iOS"), ("iPadOS", "iOS"), ("Android", "Android"),
    ("GNU/Linux", "Linux"), ("Ubuntu", "Linux"), ("Chrome OS", "Chrome OS"), ("Tizen", "Tizen"),
])
def test_operating_systems_use_posthog_js_names(system, expected):
    assert visit_properties(operatingSystemName=system)["$os"] == expected


@pytest.mark.parametrize("device, expected", [
    ("Desktop", "Desktop"), ("Smartphone", "Mobile"), ("Phablet", "Mobile"), ("Feature phone", "Mobile"),
    ("Tablet", "Tablet"), ("Console", "Console"), ("Wearable", "Wearable"), ("TV", "Desktop"),
    ("Car browser", "Desktop"), ("Unknown", None), ("Hologram", None),
])
def test_device_types_use_posthog_js_names(device, expected):
    assert visit_properties(deviceType=device).get("$device_type") == expected


@pytest.mark.parametrize("version, expected", [("120.0", 120.0), ("120.0.6099.109", 120.0), ("17", 17.0),
                                               ("3.6", 3.6), (None, None), ("", None), ("beta", None)])
def test_browser_versions_are_numbers_like_posthog_js(version, expected):
    assert visit_properties(browserName="Chrome", browserVersion=version).get("$browser_version") == expected


def test_unknown_labels_are_left_out():
    properties = visit_properties(browserName="Unknown", operatingSystemName="Unknown", operatingSystemVersion="UNK",
                                  country="Unknown", countryCode="xx", continentCode="unk", deviceBrand="Unknown")
    assert not {"$browser", "$os", "$os_version", "$geoip_country_name", "$geoip_country_code",
                "$geoip_continent_code", "$device_manufacturer"} & properties.keys()


def test_matomo_geoip_becomes_posthog_geoip():
    properties = visit_properties(
        continent="North America", continentCode="amn", country="United States", countryCode="us",
        region="California", regionCode="CA", city="not a city", latitude="48.924000", longitude="-2.000000",
        location="not a city, California, United States", countryFlag="plugins/x.png",
    )
    assert {k: v for k, v in properties.items() if k.startswith("$geoip")} == {
        "$geoip_disable": True,
        "$geoip_continent_code": "NA",
        "$geoip_continent_name": "North America",
        "$geoip_country_name": "United States",
        "$geoip_country_code": "US",
        "$geoip_subdivision_1_name": "California",
        "$geoip_subdivision_1_code": "CA",
        "$geoip_city_name": "not a city",
        "$geoip_latitude": 48.924,
        "$geoip_longitude": -2.0,
    }


def test_impossible_coordinates_are_left_out():
    properties = visit_properties(latitude="123.0", longitude="abc")
    assert "$geoip_latitude" not in properties and "$geoip_longitude" not in properties


def test_ip_is_sent_unless_dropped():
    assert visit_properties(visitIp="194.57.91.215")["$ip"] == "194.57.91.215"
    assert "$ip" not in visit_properties(visitIp="194.57.91.215", mapping=Mapping(drop_ip=True))
    assert "$ip" not in visit_properties(visitIp="194.57.91.215", mapping=Mapping(drop_properties=("$ip",)))


@pytest.mark.parametrize("code, expected", [("fr", "fr"), ("de-at", "de-AT"), ("EN-us", "en-US"), (None, None)])
def test_browser_language(code, expected):
    assert visit_properties(languageCode=code).get("$browser_language") == expected


def test_custom_dimensions_of_visit_and_action_scope_with_configured_names():
    actions = [{"type": "action", "url": "https://example.org/", "dimension3": "en", "dimension5": "343"}]
    mapping = Mapping(custom_dimensions={"1": "plan", "3": "section"})
    properties = visit_properties(actions, mapping, dimension1="pro", dimension2="value2", dimension6=None)
    assert (properties["plan"], properties["dimension2"], properties["section"], properties["dimension5"]) == (
        "pro", "value2", "en", "343"
    )
    assert "dimension6" not in properties


def test_custom_variables_of_visit_and_page_scope():
    actions = [{"type": "action", "url": "https://example.org/", "customVariables": {
        "2": {"customVariablePageName2": "HTTP-code", "customVariablePageValue2": "200"}}}]
    properties = visit_properties(actions, customVariables={
        "4": {"customVariableName4": "ValueIsZero", "customVariableValue4": "0"},
        "5": {"customVariableName5": "VisitorType", "customVariableValue5": "NewLoggedOut"},
    })
    assert properties["custom_variable_ValueIsZero"] == "0"
    assert properties["custom_variable_VisitorType"] == "NewLoggedOut"
    assert properties["custom_variable_HTTP-code"] == "200"
    assert "custom_variable_x" not in visit_properties(customVariables=[])


def test_display_only_fields_never_become_properties():
    actions = [{"type": "action", "url": "https://example.org/", "pageTitle": "Real title", "title": "Label",
                "subtitle": "x", "icon": None, "iconSVG": "a.svg", "timeSpentPretty": "0s", "bandwidth_pretty": "0 M"}]
    properties = visit_properties(actions, browserIcon="i.png", visitDurationPretty="1s", serverDatePretty="Mon",
                                  siteCurrencySymbol="$", operatingSystem="Windows XP", browser="Firefox 3.6")
    assert properties["title"] == "Real title"
    leaked = {"subtitle", "icon", "iconSVG", "timeSpentPretty", "bandwidth_pretty", "browserIcon",
              "visitDurationPretty", "serverDatePretty", "siteCurrencySymbol", "operatingSystem", "browser"}
    assert not leaked & properties.keys()
    assert not [value for value in properties.values() if value == "Label"]


def test_renames_apply_to_every_event():
    properties = visit_properties(dimension1="pro", mapping=Mapping(rename_properties={"dimension1": "plan"}))
    assert properties["plan"] == "pro" and "dimension1" not in properties


@pytest.mark.parametrize("table", ["VISIT_FIELDS", "ACTION_FIELDS", "CUSTOM_EVENT_FIELDS", "SITE_SEARCH_FIELDS",
                                   "CONTENT_FIELDS", "GOAL_FIELDS", "ORDER_FIELDS", "CART_FIELDS", "ITEM_FIELDS",
                                   "PRODUCT_VIEW_FIELDS", "BROWSERS", "OPERATING_SYSTEMS", "DEVICE_TYPES",
                                   "CONTINENTS", "CAMPAIGN_PROPERTIES"])
def test_the_mapping_document_lists_every_entry_of_every_table(table):
    document = DOCS.read_text(encoding="utf-8").lower()
    missing = [key for key in getattr(p, table) if f"`{key}`".lower() not in document]
    assert not missing, f"docs/mapping.md lacks {table} entries {missing}"
