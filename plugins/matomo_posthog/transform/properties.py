"""Matomo fields to PostHog properties: one table per rule.

Each table maps a Matomo field to a *rule*, a function ``(value, record, mapping) -> properties`` where ``record``
is the visit or action the value came from. Two markers list the fields deliberately not turned into a property
of their own: :data:`USED` (read by another part of the transform: times, identity, event names, campaign
attribution) and :data:`DROP` (display-only labels, icons, pretty-printed copies, and aggregates PostHog computes
itself). A visit field in none of the tables is left out; see ``docs/mapping.md`` for the full picture.

Vocabularies follow posthog-js (``packages/browser/src/utils/user-agent-utils.ts``) so migrated events group with
the ones PostHog's own snippet captures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from matomo_posthog.transform.mapping import Mapping
from matomo_posthog.transform.values import decimal, integer, json_safe, label, number, text

Rule = Callable[[Any, dict, Mapping], dict[str, Any]]
Builder = Callable[[dict, Mapping, str | None], dict[str, Any]]

USED = "used elsewhere"
DROP = "not sent"

LIB = "matomo-posthog"


def rename(name: str, read: Callable[[Any], Any] = text) -> Rule:
    """The rule "read the value with ``read`` and send it as property ``name``" (nothing when unreadable)."""

    def rule(value: Any, record: dict, mapping: Mapping) -> dict[str, Any]:
        result = read(value)
        return {} if result is None else {name: result}

    return rule


# --- Vocabularies -------------------------------------------------------------------------------------------------

# Matomo's browserName (device-detector names, compared in lower case) -> posthog-js $browser. Browsers built on
# Chromium report "Chrome" in posthog-js because their user agents say so. Names not listed are sent unchanged.
BROWSERS = {
    "chrome": "Chrome",
    "chrome mobile": "Chrome",
    "chrome webview": "Chrome",
    "chrome frame": "Chrome",
    "chromium": "Chrome",
    "brave": "Chrome",
    "vivaldi": "Chrome",
    "yandex browser": "Chrome",
    "huawei browser": "Chrome",
    "miui browser": "Chrome",
    "whale browser": "Chrome",
    "chrome mobile ios": "Chrome iOS",
    "firefox": "Firefox",
    "firefox mobile": "Firefox",
    "firefox focus": "Firefox",
    "firefox ios": "Firefox iOS",
    "firefox mobile ios": "Firefox iOS",
    "safari": "Safari",
    "mobile safari": "Mobile Safari",
    "microsoft edge": "Microsoft Edge",
    "edge webview": "Microsoft Edge",
    "internet explorer": "Internet Explorer",
    "ie mobile": "Internet Explorer Mobile",
    "opera": "Opera",
    "opera mobile": "Opera",
    "opera gx": "Opera",
    "opera touch": "Opera",
    "opera mini": "Opera Mini",
    "opera mini ios": "Opera Mini",
    "samsung browser": "Samsung Internet",
    "samsung internet": "Samsung Internet",
    "uc browser": "UC Browser",
    "uc browser mini": "UC Browser",
    "android browser": "Android Mobile",
    "blackberry browser": "BlackBerry",
    "konqueror": "Konqueror",
}

# (posthog-js $browser, posthog-js $os) -> the name posthog-js gives that browser on that system.
BROWSERS_ON_OS = {
    ("Safari", "iOS"): "Mobile Safari",
    ("Chrome", "iOS"): "Chrome iOS",
    ("Firefox", "iOS"): "Firefox iOS",
}

# Matomo's operatingSystemName (compared in lower case) -> posthog-js $os. Names not listed are sent unchanged.
OPERATING_SYSTEMS = {
    "windows": "Windows",
    "windows rt": "Windows",
    "windows iot": "Windows",
    "windows phone": "Windows Phone",
    "windows mobile": "Windows Mobile",
    "windows ce": "Windows Mobile",
    "mac": "Mac OS X",
    "mac os x": "Mac OS X",
    "macos": "Mac OS X",
    "ios": "iOS",
    "ipados": "iOS",
    "watchos": "watchOS",
    "android": "Android",
    "android tv": "Android",
    "fire os": "Android",
    "harmonyos": "Android",
    "chrome os": "Chrome OS",
    "chromium os": "Chrome OS",
    "gnu/linux": "Linux",
    "linux": "Linux",
    "ubuntu": "Linux",
    "kubuntu": "Linux",
    "debian": "Linux",
    "fedora": "Linux",
    "mint": "Linux",
    "arch linux": "Linux",
    "centos": "Linux",
    "red hat": "Linux",
    "suse": "Linux",
    "gentoo": "Linux",
    "blackberry os": "BlackBerry",
    "blackberry tablet os": "BlackBerry",
    "xbox": "Xbox",
    "playstation": "PlayStation",
    "playstation portable": "PlayStation",
    "nintendo": "Nintendo",
    "nintendo mobile": "Nintendo",
}

# Matomo's deviceType label (compared in lower case) -> posthog-js $device_type. Types posthog-js lacks go where
# posthog-js would put such a device's user agent. Labels not listed leave $device_type out.
DEVICE_TYPES = {
    "desktop": "Desktop",
    "smartphone": "Mobile",
    "phablet": "Mobile",
    "feature phone": "Mobile",
    "portable media player": "Mobile",
    "camera": "Mobile",
    "tablet": "Tablet",
    "smart display": "Tablet",
    "console": "Console",
    "wearable": "Wearable",
    "tv": "Desktop",
    "car browser": "Desktop",
    "smart speaker": "Desktop",
    "peripheral": "Desktop",
}

# Matomo's continentCode -> PostHog's GeoIP (MaxMind) continent code and name. MaxMind counts Central America in
# North America.
CONTINENTS = {
    "afr": ("AF", "Africa"),
    "amc": ("NA", "North America"),
    "amn": ("NA", "North America"),
    "ams": ("SA", "South America"),
    "ant": ("AN", "Antarctica"),
    "asi": ("AS", "Asia"),
    "eur": ("EU", "Europe"),
    "oce": ("OC", "Oceania"),
}


# --- Rules that need more than a rename ---------------------------------------------------------------------------


def url_properties(url: Any) -> dict[str, Any]:
    """``$current_url``, ``$host`` and ``$pathname`` of a page URL, as posthog-js sends them."""
    current = text(url)
    if current is None:
        return {}
    properties: dict[str, Any] = {"$current_url": current}
    try:
        parts = urlsplit(current)
    except ValueError:
        return properties
    host = parts.netloc.rpartition("@")[2].lower()
    if host:
        properties["$host"] = host
    properties["$pathname"] = parts.path or "/"
    return properties


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).netloc.rpartition("@")[2].lower() or None
    except ValueError:
        return None


def _referrer(value: Any, visit: dict, mapping: Mapping) -> dict[str, Any]:
    # Matomo keeps no URL for some search engine and social network visits, only the engine's or network's.
    url = text(value) or text(visit.get("referrerSearchEngineUrl")) or text(visit.get("referrerSocialNetworkUrl"))
    if url is None:
        return {}
    return {"$referrer": url, "$referring_domain": _host(url) or url}


_RESOLUTION = re.compile(r"(\d{1,6})\s*[xX×]\s*(\d{1,6})")


def _resolution(value: Any, visit: dict, mapping: Mapping) -> dict[str, Any]:
    match = _RESOLUTION.fullmatch(text(value) or "")
    if not match:
        return {}
    return {"$screen_width": int(match.group(1)), "$screen_height": int(match.group(2))}


def _os_name(value: Any) -> str | None:
    name = label(value)
    return None if name is None else OPERATING_SYSTEMS.get(name.lower(), name)


def _browser(value: Any, visit: dict, mapping: Mapping) -> dict[str, Any]:
    name = label(value)
    if name is None:
        return {}
    browser = BROWSERS.get(name.lower(), name)
    return {"$browser": BROWSERS_ON_OS.get((browser, _os_name(visit.get("operatingSystemName"))), browser)}


_VERSION = re.compile(r"\d+(?:\.\d+)?")


def _version_number(value: Any) -> float | None:
    # posthog-js sends major.minor as a number: "120.0.6099.109" -> 120.0.
    match = _VERSION.match(text(value) or "")
    return float(match.group()) if match else None


def _device_type(value: Any, visit: dict, mapping: Mapping) -> dict[str, Any]:
    name = label(value)
    device_type = DEVICE_TYPES.get(name.lower()) if name else None
    return {"$device_type": device_type} if device_type else {}


def _language(value: Any) -> str | None:
    # Matomo sends "de-at"; browsers (and so posthog-js) say "de-AT".
    code = label(value)
    if code is None:
        return None
    language, _, region = code.partition("-")
    return f"{language.lower()}-{region.upper()}" if region else language.lower()


def _continent(value: Any, visit: dict, mapping: Mapping) -> dict[str, Any]:
    code = label(value)
    known = CONTINENTS.get(code.lower()) if code else None
    return {"$geoip_continent_code": known[0], "$geoip_continent_name": known[1]} if known else {}


def _country_code(value: Any) -> str | None:
    code = label(value)
    return code.upper() if code else None


def _coordinate(limit: float) -> Callable[[Any], float | None]:
    def read(value: Any) -> float | None:
        result = decimal(value)
        return result if result is not None and -limit <= result <= limit else None

    return read


def _ip(value: Any, visit: dict, mapping: Mapping) -> dict[str, Any]:
    address = text(value)
    return {"$ip": address} if address and not mapping.drop_ip else {}


def _custom_variables(value: Any, record: dict, mapping: Mapping) -> dict[str, Any]:
    # {"3": {"customVariableName3": "VisitorName", "customVariableValue3": "Great name!"}}; page scope says
    # customVariablePageName3 / customVariablePageValue3. An empty set arrives as [].
    slots = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    properties = {}
    for slot in slots:
        if not isinstance(slot, dict):
            continue
        name = value_ = None
        for key, item in slot.items():
            if "Name" in str(key):
                name = text(item)
            elif "Value" in str(key):
                value_ = text(item)
        if name and value_ is not None:
            properties[f"custom_variable_{name}"] = value_
    return properties


DIMENSION_FIELD = re.compile(r"dimension(\d+)")


def dimension_properties(record: dict, mapping: Mapping) -> dict[str, Any]:
    """Custom dimensions (``dimension3`` on the visit for visit scope, on an action for action scope)."""
    properties = {}
    for key, value in record.items():
        match = DIMENSION_FIELD.fullmatch(key) if isinstance(key, str) and key.startswith("dimension") else None
        if match:
            content = text(value)
            if content is not None:
                properties[mapping.dimension_property(match.group(1))] = content
    return properties


def _first_category(value: Any) -> str | None:
    if isinstance(value, list):
        return next((category for category in map(text, value) if category), None)
    return text(value)


def _category_fallback(value: Any, item: dict, mapping: Mapping) -> dict[str, Any]:
    category = None if text(item.get("itemCategory")) else _first_category(value)
    return {"category": category} if category else {}


def _products(value: Any, order: dict, mapping: Mapping) -> dict[str, Any]:
    items = value if isinstance(value, list) else []
    products = [_item(item, mapping, None) for item in items if isinstance(item, dict)]
    return {"products": products}


# --- Visit fields -------------------------------------------------------------------------------------------------

# Sent on every event of the visit whatever the visit holds. "$direct" is how PostHog recognises direct traffic;
# a referrer URL replaces it. Matomo's own GeoIP values are sent, so PostHog must not look the IP up again.
VISIT_CONSTANTS = {
    "$referrer": "$direct",
    "$referring_domain": "$direct",
    "$geoip_disable": True,
    "$ignore_sent_at": True,
    "$lib": LIB,
}

VISIT_FIELDS: dict[str, Rule | str] = {
    # identity and traceability
    "idSite": rename("matomo_site_id", integer),
    "idVisit": USED,  # -> matomo_visit_id, uuids, $session_id
    "visitorId": rename("matomo_visitor_id"),  # also the distinct_id without a userId
    "userId": USED,  # -> distinct_id
    "fingerprint": DROP,
    "visitIp": _ip,  # -> $ip, unless drop_ip
    # times: read by times.visit_bounds
    "firstActionTimestamp": USED,
    "lastActionTimestamp": USED,
    "serverTimestamp": USED,
    "lastActionDateTime": USED,
    "visitDuration": USED,
    "serverDate": DROP,
    "visitServerHour": DROP,
    "serverTimePretty": DROP,
    "serverDatePretty": DROP,
    "serverDatePrettyFirstAction": DROP,
    "serverTimePrettyFirstAction": DROP,
    "visitLocalTime": DROP,
    "visitLocalHour": DROP,
    "visitDurationPretty": DROP,
    # the visit's actions become the events
    "actionDetails": USED,
    "truncatedActionsCount": USED,  # counted in the transform's statistics
    # visitor history and visit totals: PostHog computes these from the events
    "visitorType": rename("matomo_visitor_type"),
    "visitCount": rename("matomo_visit_count", integer),
    "visitorTypeIcon": DROP,
    "goalConversions": DROP,
    "visitConverted": DROP,
    "visitConvertedIcon": DROP,
    "visitEcommerceStatus": DROP,
    "visitEcommerceStatusIcon": DROP,
    "daysSinceFirstVisit": DROP,
    "secondsSinceFirstVisit": DROP,
    "daysSinceLastVisit": DROP,
    "secondsSinceLastVisit": DROP,
    "daysSinceLastEcommerceOrder": DROP,
    "secondsSinceLastEcommerceOrder": DROP,
    "searches": DROP,
    "actions": DROP,
    "interactions": DROP,
    "events": DROP,
    "totalEcommerceRevenue": DROP,
    "totalEcommerceConversions": DROP,
    "totalEcommerceItems": DROP,
    "totalAbandonedCarts": DROP,
    "totalAbandonedCartsRevenue": DROP,
    "totalAbandonedCartsItems": DROP,
    # site
    "siteCurrency": USED,  # currency of ecommerce events when the site's is not given
    "siteCurrencySymbol": DROP,
    "siteName": DROP,
    # referrer and campaign (campaign fields are read by CAMPAIGN_PROPERTIES)
    "referrerUrl": _referrer,  # -> $referrer, $referring_domain
    "referrerSearchEngineUrl": USED,  # $referrer when Matomo kept no referrer URL
    "referrerSocialNetworkUrl": USED,  # same
    "referrerType": rename("matomo_referrer_type"),
    "referrerName": rename("matomo_referrer_name"),
    "referrerKeyword": rename("matomo_referrer_keyword", label),
    "referrerTypeName": DROP,
    "referrerKeywordPosition": DROP,
    "referrerSearchEngineIcon": DROP,
    "referrerSocialNetworkIcon": DROP,
    "campaignName": USED,
    "campaignSource": USED,
    "campaignMedium": USED,
    "campaignKeyword": USED,
    "campaignContent": USED,
    "campaignId": rename("matomo_campaign_id"),
    "campaignGroup": rename("matomo_campaign_group"),
    "campaignPlacement": rename("matomo_campaign_placement"),
    # device, system, browser
    "deviceType": _device_type,  # -> $device_type (DEVICE_TYPES)
    "deviceBrand": rename("$device_manufacturer", label),
    "deviceModel": rename("$device_model", label),
    "operatingSystemName": rename("$os", _os_name),  # OPERATING_SYSTEMS
    "operatingSystemVersion": rename("$os_version", label),
    "browserName": _browser,  # -> $browser (BROWSERS, BROWSERS_ON_OS)
    "browserVersion": rename("$browser_version", _version_number),
    "resolution": _resolution,  # -> $screen_width, $screen_height
    "languageCode": rename("$browser_language", _language),
    "deviceTypeIcon": DROP,
    "operatingSystem": DROP,
    "operatingSystemCode": DROP,
    "operatingSystemIcon": DROP,
    "browser": DROP,
    "browserCode": DROP,
    "browserIcon": DROP,
    "browserFamily": DROP,
    "browserFamilyDescription": DROP,
    "plugins": DROP,
    "pluginsIcons": DROP,
    "language": DROP,
    # location (Matomo's GeoIP)
    "continentCode": _continent,  # -> $geoip_continent_code, $geoip_continent_name (CONTINENTS)
    "countryCode": rename("$geoip_country_code", _country_code),
    "country": rename("$geoip_country_name", label),
    "region": rename("$geoip_subdivision_1_name", label),
    "regionCode": rename("$geoip_subdivision_1_code", label),
    "city": rename("$geoip_city_name", label),
    "latitude": rename("$geoip_latitude", _coordinate(90)),
    "longitude": rename("$geoip_longitude", _coordinate(180)),
    "continent": DROP,
    "countryFlag": DROP,
    "location": DROP,
    # custom data (dimensionN fields: see dimension_properties)
    "customVariables": _custom_variables,  # -> custom_variable_<name>
}


@dataclass(frozen=True)
class CampaignSource:
    """Where one campaign property is read, first found wins."""

    visit_field: str | None = None  # Matomo's campaign attribution on the visit
    url_parameters: tuple[str, ...] = ()  # query parameters of the visit's landing page
    campaign_referrer_field: str | None = None  # visit field, when Matomo attributes the visit to a campaign


# PostHog campaign property -> its sources. The landing page parameters cover Google's utm_*, Matomo's mtm_* and
# the older pk_* / piwik_* forms; click ids are sent as posthog-js sends them, for PostHog's channel types.
CAMPAIGN_PROPERTIES = {
    "utm_source": CampaignSource("campaignSource", ("utm_source", "mtm_source", "pk_source")),
    "utm_medium": CampaignSource("campaignMedium", ("utm_medium", "mtm_medium", "pk_medium")),
    "utm_campaign": CampaignSource(
        "campaignName",
        ("utm_campaign", "mtm_campaign", "mtm_cpn", "matomo_campaign", "pk_campaign", "pk_cpn", "piwik_campaign"),
        "referrerName",
    ),
    "utm_term": CampaignSource(
        "campaignKeyword",
        ("utm_term", "mtm_keyword", "mtm_kwd", "matomo_keyword", "pk_keyword", "pk_kwd", "piwik_kwd"),
        "referrerKeyword",
    ),
    "utm_content": CampaignSource("campaignContent", ("utm_content", "mtm_content", "pk_content")),
    "gclid": CampaignSource(url_parameters=("gclid",)),
    "gad_source": CampaignSource(url_parameters=("gad_source",)),
    "gbraid": CampaignSource(url_parameters=("gbraid",)),
    "wbraid": CampaignSource(url_parameters=("wbraid",)),
    "dclid": CampaignSource(url_parameters=("dclid",)),
    "fbclid": CampaignSource(url_parameters=("fbclid",)),
    "msclkid": CampaignSource(url_parameters=("msclkid",)),
    "twclid": CampaignSource(url_parameters=("twclid",)),
    "li_fat_id": CampaignSource(url_parameters=("li_fat_id",)),
    "ttclid": CampaignSource(url_parameters=("ttclid",)),
    "mc_cid": CampaignSource(url_parameters=("mc_cid",)),
}


def _query_parameters(url: str | None) -> dict[str, str]:
    # Matomo also reads campaign parameters from the #fragment, so both are searched (the query string first).
    if not url:
        return {}
    try:
        parts = urlsplit(url)
    except ValueError:
        return {}
    found: dict[str, str] = {}
    for part in (parts.fragment, parts.query):
        for key, values in parse_qs(part).items():
            if text(values[-1]):
                found[key.lower()] = values[-1].strip()
    return found


def campaign_properties(visit: dict, landing_url: str | None) -> dict[str, Any]:
    """utm_* and click ids of the visit, from CAMPAIGN_PROPERTIES."""
    parameters = _query_parameters(landing_url)
    is_campaign = text(visit.get("referrerType")) == "campaign"
    properties = {}
    for name, source in CAMPAIGN_PROPERTIES.items():
        value = text(visit.get(source.visit_field)) if source.visit_field else None
        value = value or next((parameters[key] for key in source.url_parameters if key in parameters), None)
        if value is None and is_campaign and source.campaign_referrer_field:
            value = label(visit.get(source.campaign_referrer_field))
        if value:
            properties[name] = value
    return properties


def visit_properties(visit: dict, mapping: Mapping, landing_url: str | None) -> dict[str, Any]:
    """The properties every event of the visit carries (identity and session are added by the caller)."""
    properties: dict[str, Any] = dict(VISIT_CONSTANTS)
    for key, value in visit.items():
        rule = VISIT_FIELDS.get(key)
        if callable(rule):
            properties.update(rule(value, visit, mapping))
    properties.update(campaign_properties(visit, landing_url))
    properties.update(dimension_properties(visit, mapping))
    return properties


# --- Action fields, every type ------------------------------------------------------------------------------------

ACTION_FIELDS: dict[str, Rule | str] = {
    "type": USED,  # -> the event name, and matomo_action_type
    "url": USED,  # -> $current_url, $host, $pathname (or $external_click_url for outlinks)
    "timestamp": USED,  # -> the event time
    "timeSpent": USED,  # -> the $pageleave time
    "pageTitle": rename("title"),
    "idpageview": rename("matomo_pageview_id"),
    "pageId": rename("matomo_action_id", integer),
    "pageLoadTimeMilliseconds": rename("page_load_time_ms", integer),
    "generationTimeMilliseconds": rename("generation_time_ms", integer),
    "bandwidth": rename("bandwidth_bytes", integer),
    "customVariables": _custom_variables,  # page scope -> custom_variable_<name>
    "pageIdAction": DROP,
    "pageviewPosition": DROP,
    "goalPageId": DROP,
    "items": DROP,  # the number of items; products[] carries each one
    # attribution Matomo repeats on conversions: the visit's referrer is already on every event
    "referrerType": DROP,
    "referrerName": DROP,
    "referrerKeyword": DROP,
    # display only
    "title": DROP,
    "subtitle": DROP,
    "icon": DROP,
    "iconSVG": DROP,
    "serverTimePretty": DROP,
    "timeSpentPretty": DROP,
    "bandwidth_pretty": DROP,
    "pageLoadTime": DROP,
    "generationTime": DROP,
}


def fields(table: dict[str, Rule | str]) -> Builder:
    """A builder applying a field table's rules to an action."""

    def build(action: dict, mapping: Mapping, currency: str | None) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        for key, rule in table.items():
            if key in action and callable(rule):
                properties.update(rule(action[key], action, mapping))
        return properties

    return build


_every_action = fields(ACTION_FIELDS)


def action_properties(action: dict, mapping: Mapping) -> dict[str, Any]:
    """Properties every type of action carries (its own title, ids, timings, custom data)."""
    properties = _every_action(action, mapping, None)
    properties.update(dimension_properties(action, mapping))
    return properties


# --- Action fields, one table per type ----------------------------------------------------------------------------

CUSTOM_EVENT_FIELDS = {
    "eventCategory": rename("event_category"),
    "eventAction": rename("event_action"),
    "eventName": rename("event_name"),
    "eventValue": rename("event_value", number),
}

SITE_SEARCH_FIELDS = {
    "siteSearchKeyword": rename("search_keyword"),
    "siteSearchCategory": rename("search_category"),
    "siteSearchCount": rename("search_results_count", integer),
}

CONTENT_FIELDS = {
    "contentName": rename("content_name"),
    "contentPiece": rename("content_piece"),
    "contentTarget": rename("content_target"),
    "contentInteraction": rename("content_interaction"),
}

GOAL_FIELDS = {
    "goalId": rename("goal_id", integer),
    "goalName": rename("goal_name"),
    "revenue": rename("revenue", number),
}

ORDER_FIELDS = {
    "orderId": rename("order_id"),
    "revenue": rename("revenue", number),
    "revenueSubTotal": rename("subtotal", number),
    "revenueTax": rename("tax", number),
    "revenueShipping": rename("shipping", number),
    "revenueDiscount": rename("discount", number),
    "itemDetails": _products,  # -> products[]
}

CART_FIELDS = {
    "revenue": rename("revenue", number),
    "itemDetails": _products,  # -> products[]
}

# One entry of an order's or cart's itemDetails -> one entry of products[].
ITEM_FIELDS = {
    "itemSKU": rename("sku"),
    "itemName": rename("name"),
    "itemCategory": rename("category"),
    "categories": _category_fallback,  # its first entry is the category when itemCategory is empty
    "price": rename("price", number),
    "quantity": rename("quantity", number),
}

# A pageview's product fields -> Product Viewed (with sku or name) or Product List Viewed (category only).
PRODUCT_VIEW_FIELDS = {
    "productViewSku": rename("sku"),
    "productViewName": rename("name"),
    "productViewPrice": rename("price", number),
    "productViewCategories": rename("category", _first_category),
}


def with_currency(builder: Builder) -> Builder:
    """A builder whose properties also carry the site currency (for revenue and prices)."""

    def build(action: dict, mapping: Mapping, currency: str | None) -> dict[str, Any]:
        properties = builder(action, mapping, currency)
        if currency:
            properties["currency"] = currency
        return properties

    return build


_item = fields(ITEM_FIELDS)
_product_view = with_currency(fields(PRODUCT_VIEW_FIELDS))


def product_view(action: dict, mapping: Mapping, currency: str | None) -> tuple[str, dict[str, Any]] | None:
    """The extra event a product or category page view yields: (event kind, properties), or None."""
    product = _product_view(action, mapping, currency)
    if "sku" in product or "name" in product:
        return "product_view", product
    if "category" in product:
        return "product_list_view", {"category": product["category"]}
    return None


def unknown_type_fields(action: dict, mapping: Mapping, currency: str | None) -> dict[str, Any]:
    """An action of a type this package does not know (premium plugins): its other fields as they are."""
    return {
        str(key): json_safe(value)
        for key, value in action.items()
        if key not in ACTION_FIELDS and not DIMENSION_FIELD.fullmatch(str(key)) and value is not None and value != ""
    }


def no_fields(action: dict, mapping: Mapping, currency: str | None) -> dict[str, Any]:
    """For types whose only data is the URL (downloads, outlinks)."""
    return {}
