"""Deterministic synthetic Matomo visits, shaped like ``Live.getLastVisitsDetails`` JSON rows.

The rows imitate a Matomo 5 server on PHP >= 8.1 (integers as JSON numbers) with the ecommerce, custom
dimensions and MarketingCampaignsReporting plugins active, English labels, and without the optional
Bandwidth and CustomVariables plugins. Keys come in the order Matomo builds them. Times follow Matomo:
``firstActionTimestamp``, ``lastActionTimestamp`` and ``serverTimestamp`` are real UTC epochs, while each
action's ``timestamp`` is the site-local wall clock encoded as an epoch (see ``local_wall_epoch``).

Everything is derived from ``random.Random`` seeded with the arguments and the day, so a day's visits do not
depend on the other days of the range (only ``idVisit`` and ``pageId`` numbering does).
"""

from __future__ import annotations

import hashlib
import random
import string
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from matomo_posthog.timezones import local_wall_epoch, parse_timezone

__all__ = ["CUSTOM_DIMENSIONS", "generate_visits", "local_midnight_utc"]

# The custom dimensions the generated rows carry (dimension1, dimension2 per visit, dimension3 per action),
# as CustomDimensions.getConfiguredCustomDimensions describes them.
CUSTOM_DIMENSIONS = (
    {"idcustomdimension": 1, "name": "Membership", "index": 1, "scope": "visit"},
    {"idcustomdimension": 2, "name": "Experiment", "index": 2, "scope": "visit"},
    {"idcustomdimension": 3, "name": "Theme", "index": 1, "scope": "action"},
)

_ICONS = "plugins/Morpheus/icons/dist"
_IMAGES = "plugins/Morpheus/images"

_CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CHF": "CHF", "NZD": "NZ$", "BRL": "R$"}

# (path, title) of ordinary pages; product pages are derived from _PRODUCTS.
_PAGES = (
    ("/", "Home"),
    ("/blog/", "Blog"),
    ("/blog/moving-analytics-history", "Moving your analytics history - Blog"),
    ("/pricing", "Pricing"),
    ("/about", "About us"),
    ("/contact", "Contact"),
    ("/docs/getting-started", "Getting started - Docs"),
    ("/shop/", "Shop"),
    ("/caf%C3%A9/men%C3%BC?lang=de&ref=nav", "Café & Menü"),  # browsers send URLs percent-encoded
)
_CONTACT_PAGE, _DOCS_PAGE, _SHOP_PAGE = _PAGES[5], _PAGES[6], _PAGES[7]
# (sku, name, price, categories): a price of None means the product view was tracked without a price.
_PRODUCTS = (
    ("SKU-TEE-01", "Organic T-Shirt", 24.9, ("Apparel", "T-Shirts")),
    ("SKU-MUG-02", "Ceramic Mug", 12, ("Kitchen",)),
    ("SKU-BAG-03", "Canvas Tote Bag", 19.5, ()),
    ("SKU-LMP-04", "Desk Lamp", 500.11, ("Home", "Lighting", "Office")),
    ("SKU-BOOK-05", "Field Guide", None, ("Books",)),
)
_DOWNLOADS = ("/files/whitepaper.pdf", "/files/price-list-2024.xlsx", "/files/setup.zip")
_OUTLINKS = (
    "https://github.com/example/project",
    "https://social.example.net/@example",
    "https://partner.example.net/offer?ref=site&utm_source=example",
)
# (keyword, category, results count): Matomo stores what the tracker sent, so category and count may be null.
_SEARCHES = (
    ("export visits", "Docs", 12),
    ("pricing", None, 3),
    ("tote bag", "Shop", 0),
    ("how to migrate", None, None),
)
# (category, action, name, value): name and value are optional in the tracker.
_EVENTS = (
    ("Video", "play", "Product demo", None),
    ("Video", "progress", "Product demo", 50),
    ("Newsletter", "subscribe", None, None),
    ("Form", "submit", "Contact form", None),
    ("Scroll", "depth", None, 75),
    ("Rating", "vote", "Café crème – démo", 4.5),
    ("Carousel", "slide", "Hero", 0),
)
# (name, piece, target)
_CONTENTS = (
    ("Hero banner", "/img/hero.jpg", "/shop/"),
    ("Newsletter box", "Sign up today", None),
    ("Partner ad", "Unknown", "https://partner.example.net/"),
)


def _product_path(product: tuple) -> str:
    return "/shop/" + product[1].lower().replace(" ", "-")


# Matomo keeps each distinct URL once in log_action; hits refer to it by id (content rows by their own id).
_PAGE_PATHS = [path for path, _ in _PAGES] + [_product_path(product) for product in _PRODUCTS]
_ACTION_IDS = {name: 2 * index for index, name in enumerate(
    _PAGE_PATHS + list(_DOWNLOADS) + list(_OUTLINKS) + ["content:" + path for path in _PAGE_PATHS], start=1)}

# (goalId, goalName, revenue); None/None is a conversion of a goal that was deleted since.
_GOALS = ((1, "Newsletter signup", 0), (2, "Contact request", 5), (3, "Read the docs", 0))
_DELETED_GOAL = (None, None, 0)

_LOCATIONS = (
    ("Europe", "eur", "Germany", "de", "Berlin", "BE", "Berlin", "52.520000", "13.405000"),
    ("Europe", "eur", "France", "fr", "Île-de-France", "IDF", "Paris", "48.856600", "2.352200"),
    ("Europe", "eur", "United Kingdom", "gb", "England", "ENG", "London", "51.507400", "-0.127800"),
    ("North America", "amn", "United States", "us", "California", "CA", "San Francisco", "37.774900", "-122.419400"),
    ("Asia", "asi", "Japan", "jp", "Tokyo", "13", "Tokyo", "35.689500", "139.691700"),
    ("Oceania", "oce", "New Zealand", "nz", "Auckland", "AUK", "Auckland", "-36.848500", "174.763300"),
    ("South America", "ams", "Brazil", "br", "São Paulo", "SP", "São Paulo", "-23.550500", "-46.633300"),
    ("Europe", "eur", "Netherlands", "nl", None, None, None, None, None),
    ("Unknown", "unk", "Unknown", "xx", None, None, None, None, None),
)
_LANGUAGES = (("en", "English"), ("de", "German"), ("fr", "French"), ("ja", "Japanese"), ("pt", "Portuguese"))
_IPS = ("203.0.113.0", "198.51.100.0", "2001:db8:85a3::")

# (deviceType, icon, brand, model, os name, os code, os version, engine, browser, code, version, resolutions)
_DEVICES = (
    ("Desktop", "desktop", "Unknown", "Generic Desktop", "Windows", "WIN", "10",
     "Blink", "Chrome", "CH", "120.0", ("1920x1080", "1366x768", "unknown")),
    ("Desktop", "desktop", "Apple", "", "Mac", "MAC", "10.15",
     "WebKit", "Safari", "SF", "17.1", ("2560x1440", "1440x900")),
    ("Desktop", "desktop", "Unknown", "Generic Desktop", "Ubuntu", "UBT", "22.04",
     "Gecko", "Firefox", "FF", "121.0", ("1920x1080",)),
    ("Desktop", "desktop", "Unknown", "Generic Desktop", "Windows", "WIN", "11",
     "Blink", "Microsoft Edge", "PS", "120.0.2210.91", ("1920x1200",)),
    ("Smartphone", "smartphone", "Apple", "iPhone", "iOS", "IOS", "17.1",
     "WebKit", "Mobile Safari", "MF", "17.1", ("390x844",)),
    ("Smartphone", "smartphone", "Samsung", "Galaxy S23", "Android", "AND", "14",
     "Blink", "Chrome Mobile", "CM", "120.0.6099.144", ("412x915",)),
    ("Smartphone", "smartphone", "Samsung", "Galaxy A54", "Android", "AND", "13",
     "Blink", "Samsung Browser", "SB", "23.0", ("384x854",)),
    ("Tablet", "tablet", "Apple", "iPad", "iPadOS", "IPA", "17.1",
     "WebKit", "Mobile Safari", "MF", "17.1", ("820x1180", "unknown")),
)
_ENGINE_DESCRIPTIONS = {"Blink": "Blink (Chrome, Opera)", "WebKit": "WebKit (Safari)", "Gecko": "Gecko (Firefox)"}

_SEARCH_ENGINES = (("Google", "google.com", "https://www.google.com/"),
                   ("Bing", "bing.com", "https://www.bing.com/"),
                   ("DuckDuckGo", "duckduckgo.com", "https://duckduckgo.com/"))
_SEARCH_KEYWORDS = ("", "", "matomo export", "analytics migration")  # "" is Google's hidden keyword
_WEBSITES = (("blog.example.org", "https://blog.example.org/posts/analytics-tools"),
             ("news.example.net", "https://news.example.net/article/123?page=2"),
             ("forum.example.com", "https://forum.example.com/t/moving-off-matomo/42"))
# (name, source, medium, keyword, content, HTTP referrer)
_CAMPAIGNS = (("spring_sale", "newsletter", "email", "", "header_banner", None),
              ("brand-search", "google", "cpc", "analytics migration", "", "https://www.google.com/"),
              ("launch-2024", "social", "social", "", "video", "https://social.example.net/"))
_CAMPAIGN_FIELDS = ("campaignId", "campaignContent", "campaignKeyword", "campaignMedium", "campaignName",
                    "campaignSource", "campaignGroup", "campaignPlacement")
_REFERRER_TYPE_NAMES = {"direct": "Direct Entry", "search": "Search Engines", "website": "Websites",
                        "campaign": "Campaigns"}

# Kinds of log_link_visit_action rows Matomo counts in a visit's `actions` (not content, goals, ecommerce).
_COUNTED_KINDS = frozenset({"pageview", "download", "outlink", "search", "event"})
_CONVERSION_KINDS = frozenset({"goal", "order", "cart"})


@dataclass(frozen=True)
class _Site:
    site_id: int
    tz: tzinfo
    name: str
    currency: str
    base_url: str

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base_url.rstrip("/") + path


@dataclass
class _Numbering:
    """Ids Matomo hands out in order across the whole site: idvisit and idlink_va (``pageId``)."""

    id_visit: int
    page_id: int = 1


@dataclass
class _Step:
    """One planned hit: its kind, seconds after the visit's first action, and what it carries."""

    kind: str
    at: int
    data: dict = field(default_factory=dict)
    page_id: int | None = None  # idlink_va, set when the row is built


def local_midnight_utc(day: date, tz: tzinfo) -> int:
    """UTC epoch of the site-local midnight that starts ``day`` (the first instant of the day on DST days)."""
    return int(datetime.combine(day, time(0), tzinfo=tz).timestamp())


def generate_visits(
    site_id: int,
    timezone: str,
    start: date,
    end: date,
    visits_per_day: int,
    seed: int,
    first_id_visit: int = 1,
    *,
    midnight_visits: bool = False,
    site_name: str = "Example Shop",
    currency: str = "EUR",
    base_url: str = "https://shop.example.com",
) -> list[dict]:
    """Return synthetic visits for the site-local days ``start``..``end`` (inclusive), oldest first.

    Each day holds ``visits_per_day`` visits lying inside that local day, with ``idVisit`` increasing from
    ``first_id_visit`` in order of first action. Across a day of ten visits or more every action type occurs.
    With ``midnight_visits`` one visit per day ends exactly at the next local midnight, which Matomo's Live
    API then lists on both days. The same arguments always give the same visits.
    """
    if visits_per_day < 0:
        raise ValueError("visits_per_day must not be negative")
    site = _Site(site_id, parse_timezone(timezone), site_name, currency, base_url)
    visits: list[dict] = []
    numbering = _Numbering(first_id_visit)
    day = start
    while day <= end:
        rng = random.Random(f"matomo-visits:{seed}:{site_id}:{day.isoformat()}")
        for planned in _plan_day(rng, site, day, visits_per_day, midnight_visits):
            visits.append(_build_visit(planned, site, seed, numbering))
        day += timedelta(days=1)
    return visits


@dataclass
class _PlannedVisit:
    first: int  # UTC seconds of the first hit
    last: int  # UTC seconds of the last action (a heartbeat can come after the last hit)
    steps: list[_Step]
    rng: random.Random


def _plan_day(rng: random.Random, site: _Site, day: date, count: int, midnight: bool) -> list[_PlannedVisit]:
    """Plan the day's visits and place them in the local day; return them sorted by first action."""
    day_start = local_midnight_utc(day, site.tz)
    day_end = local_midnight_utc(day + timedelta(days=1), site.tz)
    planned = []
    for index in range(count):
        # Rotating by day makes small days cover every scenario over a few days.
        scenario = _SCENARIOS[(index + day.toordinal() * count) % len(_SCENARIOS)]
        is_midnight = midnight and index == 0
        if is_midnight:
            scenario = _browse  # several actions, so the visit starts on the day and ends at midnight
        visit_rng = random.Random(rng.getrandbits(64))
        steps = scenario(_Planner(visit_rng))
        duration = steps[-1].at
        if is_midnight:
            start_utc, tail = day_end - duration, 0
        else:
            tail = visit_rng.randint(15, 300) if visit_rng.random() < 0.25 else 0  # heartbeat after last hit
            start_utc = day_start + visit_rng.randint(0, day_end - day_start - 1 - duration - tail)
        planned.append(_PlannedVisit(start_utc, start_utc + duration + tail, steps, visit_rng))
    planned.sort(key=lambda visit: visit.first)  # stable: equal starts keep their planning order
    return planned


class _Planner:
    """Builds a visit's hits in time order; each scenario below is one way a visit can go."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.steps: list[_Step] = []

    def add(self, kind: str, gap: tuple[int, int], **data) -> _Step:
        at = self.steps[-1].at + self.rng.randint(*gap) if self.steps else 0
        self.steps.append(_Step(kind, at, data))
        return self.steps[-1]

    def page(self, path_title: tuple[str, str] | None = None, product: tuple | None = None) -> _Step:
        if product is not None:
            path_title = (_product_path(product), product[1] + " - Shop")
        path, title = path_title or self.rng.choice(_PAGES)
        load_ms = self.rng.choice((None, self.rng.randint(180, 4200)))
        return self.add("pageview", (8, 240), path=path, title=title, product=product, load_ms=load_ms,
                        theme=self.rng.choice(("light", "dark", None)))

    def products(self, count: int) -> list[tuple]:
        chosen = self.rng.sample(_PRODUCTS, count)
        for product in chosen:
            self.page(product=product)
        return chosen

    def goal(self, goal: tuple | None = None) -> None:
        """Convert on the last hit (a pageview or an event), in the same second."""
        page = next(step for step in reversed(self.steps) if step.kind == "pageview")
        self.add("goal", (0, 0), goal=goal or self.rng.choice(_GOALS), page=page, trigger=self.steps[-1])

    def ecommerce(self, kind: str, products: list[tuple]) -> None:
        items = [(sku, name, price or 10, cats, self.rng.randint(1, 3)) for sku, name, price, cats in products]
        self.add(kind, (10, 120), items=items, order_id=f"{self.rng.randint(1000, 99999)}-{self.rng.choice('ABCDEF')}",
                 tax_rate=self.rng.choice((0, 0.19)), shipping=self.rng.choice((0, 4.95)),
                 discount=self.rng.choice((0, 0, 5)))


def _bounce(plan: _Planner) -> list[_Step]:
    plan.page()
    return plan.steps


def _browse(plan: _Planner) -> list[_Step]:
    for _ in range(plan.rng.randint(2, 4)):
        plan.page()
    plan.add("outlink", (3, 90), url=plan.rng.choice(_OUTLINKS))
    return plan.steps


def _download(plan: _Planner) -> list[_Step]:
    plan.page(_DOCS_PAGE)
    plan.add("download", (5, 60), path=plan.rng.choice(_DOWNLOADS))
    plan.page()
    return plan.steps


def _search(plan: _Planner) -> list[_Step]:
    plan.page()
    plan.add("search", (5, 60), search=plan.rng.choice(_SEARCHES))
    plan.page()
    return plan.steps


def _events(plan: _Planner) -> list[_Step]:
    plan.page()
    for event in plan.rng.sample(_EVENTS, 3):
        plan.add("event", (1, 60), event=event)
    return plan.steps


def _content(plan: _Planner) -> list[_Step]:
    page = plan.page()
    shown = plan.rng.sample(_CONTENTS, 2)
    for content in shown:
        plan.add("content", (0, 2), content=content, page=page, interaction=None)
    plan.add("content", (2, 40), content=shown[0], page=page, interaction=plan.rng.choice(("click", "submit")))
    plan.page()
    return plan.steps


def _goal(plan: _Planner) -> list[_Step]:
    plan.page()
    plan.page(_CONTACT_PAGE)
    plan.goal()
    plan.add("event", (1, 30), event=_EVENTS[3])
    return plan.steps


def _cart(plan: _Planner) -> list[_Step]:
    plan.ecommerce("cart", plan.products(plan.rng.randint(1, 2)))
    return plan.steps


def _order(plan: _Planner) -> list[_Step]:
    plan.page(_SHOP_PAGE)
    products = plan.products(plan.rng.randint(1, 3))
    plan.ecommerce("order", products)
    if plan.rng.random() < 0.5:  # "orderedThenAbandonedCart"
        plan.ecommerce("cart", products[:1])
    return plan.steps


def _mixed(plan: _Planner) -> list[_Step]:
    plan.page()
    plan.add("search", (5, 60), search=_SEARCHES[3])
    plan.products(1)
    plan.add("event", (1, 30), event=_EVENTS[2])
    plan.goal(_DELETED_GOAL)
    plan.add("download", (5, 60), path=_DOWNLOADS[0])
    return plan.steps


_SCENARIOS = (_bounce, _browse, _download, _search, _events, _content, _goal, _cart, _order, _mixed)


# --- turning a plan into a Matomo row ---------------------------------------------------------------------


@dataclass
class _Visitor:
    """Who made the visit and from where: everything on the row that is not an action."""

    referrer: dict
    campaign: dict
    device: tuple
    resolution: str
    location: tuple
    language: tuple
    ip: str
    user_id: str | None
    visitor_id: str
    fingerprint: str
    visit_count: int
    seconds_since_first: int
    seconds_since_last: int
    dimension1: str | None
    dimension2: str | None


def _build_visit(planned: _PlannedVisit, site: _Site, seed: int, numbering: _Numbering) -> dict:
    rng, steps, start_utc, last_utc = planned.rng, planned.steps, planned.first, planned.last
    id_visit = numbering.id_visit
    numbering.id_visit += 1
    visitor = _pick_visitor(rng, site, seed)
    actions = _build_actions(rng, site, visitor, planned, numbering)
    row = {
        "idSite": site.site_id,
        "idVisit": id_visit,
        "visitIp": visitor.ip,
        "visitorId": visitor.visitor_id,
        "fingerprint": visitor.fingerprint,
        "actionDetails": actions,
        "goalConversions": sum(1 for step in steps if step.kind == "goal"),
        "siteCurrency": site.currency,
        "siteCurrencySymbol": _CURRENCY_SYMBOLS.get(site.currency),
    }
    row.update(_date_fields(site, start_utc, last_utc))
    row.update(_core_fields(visitor, steps, last_utc - start_utc))
    row.update(_referrer_fields(visitor.referrer))
    row.update(_device_fields(visitor))
    row.update(_ecommerce_totals(actions))
    row["events"] = sum(1 for step in steps if step.kind == "event")
    row.update(_location_fields(visitor, site, start_utc))
    row["dimension1"] = visitor.dimension1
    row["dimension2"] = visitor.dimension2
    row.update(visitor.campaign)
    return row


def _pick_visitor(rng: random.Random, site: _Site, seed: int) -> _Visitor:
    user_id = f"customer-{rng.randint(1, 400):04d}" if rng.random() < 0.2 else None
    if user_id is not None:
        visitor_id = hashlib.sha1(user_id.encode()).hexdigest()[:16]  # Matomo derives it from the user id
    else:
        visitor_id = _hex(f"{seed}:{site.site_id}:visitor:{rng.randrange(500)}")
    device = rng.choice(_DEVICES)
    returning = rng.random() < 0.45
    since_first = rng.randint(3600, 180 * 86400) if returning else 0
    referrer, campaign = _pick_referrer(rng)
    return _Visitor(
        referrer=referrer,
        campaign=campaign,
        device=device,
        resolution=rng.choice(device[11]),
        location=rng.choice(_LOCATIONS),
        language=rng.choice(_LANGUAGES),
        ip=rng.choice(_IPS),
        user_id=user_id,
        visitor_id=visitor_id,
        fingerprint=_hex(f"{visitor_id}:{device[8]}:{device[4]}"),
        visit_count=rng.randint(2, 40) if returning else 1,
        seconds_since_first=since_first,
        seconds_since_last=rng.randint(600, since_first) if returning else 0,
        dimension1=rng.choice(("member", "guest", None)),
        dimension2=rng.choice(("variant-a", "variant-b", None)),
    )


def _pick_referrer(rng: random.Random) -> tuple[dict, dict]:
    """Visit-level referrer (name, keyword, url) and the campaign fields, all as Matomo reports them."""
    campaign = dict.fromkeys(_CAMPAIGN_FIELDS, "")
    kind = rng.choices(("direct", "search", "website", "campaign"), weights=(35, 30, 20, 15))[0]
    if kind == "search":
        name, host, url = rng.choice(_SEARCH_ENGINES)
        keyword = rng.choice(_SEARCH_KEYWORDS)
        return {"type": kind, "name": name, "keyword": keyword, "url": url, "engine_host": host}, campaign
    if kind == "website":
        host, url = rng.choice(_WEBSITES)
        return {"type": kind, "name": host, "keyword": "", "url": url}, campaign
    if kind == "campaign":
        name, source, medium, keyword, content, url = rng.choice(_CAMPAIGNS)
        campaign.update(campaignName=name, campaignSource=source, campaignMedium=medium,
                        campaignKeyword=keyword, campaignContent=content)
        return {"type": kind, "name": name, "keyword": keyword, "url": url}, campaign
    return {"type": "direct", "name": "", "keyword": "", "url": None}, campaign


def _build_actions(rng: random.Random, site: _Site, visitor: _Visitor, planned: _PlannedVisit,
                   numbering: _Numbering) -> list[dict]:
    steps, duration = planned.steps, planned.last - planned.first
    actions = []
    position = 0
    pageview_id = None
    current_page = None
    for index, step in enumerate(steps):
        if step.kind not in _CONVERSION_KINDS:
            step.page_id = numbering.page_id
            numbering.page_id += 1
        if step.kind in ("pageview", "search"):
            position += 1
        if step.kind == "pageview":
            pageview_id = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(6))
            current_page = step
        at = planned.first + step.at
        hit = {"idpageview": pageview_id, "serverTimePretty": _pretty_datetime(at, site.tz),
               "pageId": step.page_id, "pageviewPosition": position, "timestamp": local_wall_epoch(at, site.tz),
               "page": current_page, "timeSpent": _time_spent(steps, index, duration)}
        actions.append(_ACTION_BUILDERS[step.kind](step, hit, site, visitor))
    return actions


def _time_spent(steps: list[_Step], index: int, duration: int) -> int:
    """Seconds on a page as Matomo computes it: until the next pageview, or from the visit length for the last."""
    page = steps[index]
    if page.kind != "pageview":
        return 0
    last_hit = page.at
    for step in steps[index + 1:]:
        if step.kind in _CONVERSION_KINDS:
            continue
        if step.kind == "pageview":
            return step.at - page.at
        last_hit = step.at
    on_page = duration - page.at
    return on_page if on_page > 10 else last_hit - page.at


def _pageview_row(step: _Step, hit: dict, site: _Site, visitor: _Visitor) -> dict:
    data = step.data
    row = {"type": "action", "url": site.url(data["path"]), "pageTitle": data["title"],
           "pageIdAction": _id_action(data["path"]), "idpageview": hit["idpageview"],
           "serverTimePretty": hit["serverTimePretty"], "pageId": hit["pageId"]}
    if data["load_ms"]:
        row["pageLoadTime"] = _pretty_seconds(data["load_ms"] / 1000)
    product = data["product"]
    if product is not None:
        sku, name, price, _ = product
        if price:
            row["productViewPrice"] = price
        row["productViewName"] = name
        row["productViewSku"] = sku
    row["timeSpent"] = hit["timeSpent"]
    row["timeSpentPretty"] = _pretty_seconds(hit["timeSpent"])
    if data["load_ms"]:
        row["pageLoadTimeMilliseconds"] = data["load_ms"]
    row.update(pageviewPosition=hit["pageviewPosition"], title=data["title"], subtitle=row["url"],
               icon="", iconSVG=f"{_IMAGES}/action.svg", timestamp=hit["timestamp"])
    if product is not None and product[3]:
        row["productViewCategories"] = list(product[3])
    row["dimension3"] = data["theme"]
    return row


def _link_row(step: _Step, hit: dict, site: _Site, visitor: _Visitor) -> dict:
    target = step.data.get("path") or step.data["url"]
    url = site.url(target)
    kind = step.kind
    icon, title = ("download", "Download") if kind == "download" else ("link", "Outlink")
    return {"type": kind, "url": url, "pageTitle": None, "pageIdAction": _id_action(target),
            **_hit_ids(hit), "pageviewPosition": hit["pageviewPosition"],
            "icon": f"{_IMAGES}/{icon}.png", "iconSVG": f"{_IMAGES}/{icon}.svg", "title": title, "subtitle": url,
            "timestamp": hit["timestamp"], "dimension3": None}


def _search_row(step: _Step, hit: dict, site: _Site, visitor: _Visitor) -> dict:
    keyword, category, count = step.data["search"]
    subtitle = keyword
    if category:
        subtitle += f" - Search Category: {category}"
    if count:
        subtitle += f" - Search Results Count: {count}"
    return {"type": "search", "url": None, "pageIdAction": None, **_hit_ids(hit),
            "siteSearchKeyword": keyword, "siteSearchCategory": category, "siteSearchCount": count,
            "pageviewPosition": hit["pageviewPosition"], "icon": f"{_IMAGES}/search.png",
            "iconSVG": f"{_IMAGES}/search.svg", "title": "Site Search", "subtitle": subtitle,
            "timestamp": hit["timestamp"], "dimension3": None}


def _event_row(step: _Step, hit: dict, site: _Site, visitor: _Visitor) -> dict:
    category, action, name, value = step.data["event"]
    path = hit["page"].data["path"]
    row = {"type": "event", "url": site.url(path), "pageIdAction": _id_action(path), **_hit_ids(hit),
           "eventCategory": category, "eventAction": action, "pageviewPosition": hit["pageviewPosition"],
           "timestamp": hit["timestamp"], "icon": f"{_IMAGES}/event.png", "iconSVG": f"{_IMAGES}/event.svg",
           "title": "Event", "subtitle": f"Category: \"{category}', Action: \"{action}\""}
    if name is not None:
        row["eventName"] = name
    if value is not None:
        row["eventValue"] = value
    row["dimension3"] = None
    return row


def _content_row(step: _Step, hit: dict, site: _Site, visitor: _Visitor) -> dict:
    name, piece, target = step.data["content"]
    interaction = step.data["interaction"]
    page_path = step.data["page"].data["path"]
    page_url = site.url(page_path)
    kind = "contentinteraction" if interaction else "contentimpression"
    title = f"Content Interaction ({interaction})" if interaction else "Content Impression"
    return {"type": 13, "url": page_url, "pageTitle": None, "pageIdAction": _id_action("content:" + page_path),
            **_hit_ids(hit), "contentName": name, "contentPiece": piece,
            "contentTarget": site.url(target) if target else None, "contentInteraction": interaction,
            "pageviewPosition": hit["pageviewPosition"], "icon": f"{_IMAGES}/{kind}.png",
            "iconSVG": f"{_IMAGES}/{kind}.svg", "title": title,
            "subtitle": f"{name} - {piece}" if piece else name, "timestamp": hit["timestamp"], "dimension3": None}


def _goal_row(step: _Step, hit: dict, site: _Site, visitor: _Visitor) -> dict:
    goal_id, goal_name, revenue = step.data["goal"]
    page = step.data["page"]
    subtitle = goal_name
    if revenue:
        subtitle = f"{goal_name} ({_pretty_money(revenue, site.currency)} revenue)"
    return {"type": "goal", "goalName": goal_name, "goalId": goal_id, "idpageview": hit["idpageview"],
            "revenue": revenue, "goalPageId": step.data["trigger"].page_id, "serverTimePretty": hit["serverTimePretty"],
            "url": site.url(page.data["path"]), **_conversion_referrer(visitor.referrer),
            "icon": f"{_IMAGES}/goal.png", "iconSVG": f"{_IMAGES}/goal.svg", "title": "Goal conversion",
            "subtitle": subtitle, "timestamp": hit["timestamp"], "dimension3": None}


def _ecommerce_row(step: _Step, hit: dict, site: _Site, visitor: _Visitor) -> dict:
    data = step.data
    items = data["items"]
    subtotal = _number(sum(price * quantity for _, _, price, _, quantity in items))
    tax = _number(subtotal * data["tax_rate"])
    revenue = _number(subtotal + tax + data["shipping"] - data["discount"])
    item_count = sum(quantity for *_, quantity in items)
    is_order = step.kind == "order"
    kind = "ecommerceOrder" if is_order else "ecommerceAbandonedCart"
    row = {"type": kind}
    if is_order:
        row.update(orderId=data["order_id"], revenue=revenue, revenueSubTotal=subtotal, revenueTax=tax,
                   revenueShipping=data["shipping"], revenueDiscount=data["discount"])
    else:
        row["revenue"] = subtotal
    names = ", ".join(name for _, name, *_ in items)
    money = _pretty_money(row["revenue"], site.currency)
    row.update(items=item_count, serverTimePretty=hit["serverTimePretty"], idpageview=hit["idpageview"],
               **_conversion_referrer(visitor.referrer), itemDetails=[_item(item) for item in items],
               icon=f"{_IMAGES}/{kind}.png", iconSVG=f"{_IMAGES}/{kind}.svg",
               title=f"Ordered ({data['order_id']})" if is_order else "Abandoned Cart",
               subtitle=f"{money} revenue - {item_count} items: {names})",
               timestamp=hit["timestamp"], dimension3=None)
    return row


_ACTION_BUILDERS = {"pageview": _pageview_row, "download": _link_row, "outlink": _link_row, "search": _search_row,
                    "event": _event_row, "content": _content_row, "goal": _goal_row, "order": _ecommerce_row,
                    "cart": _ecommerce_row}


def _hit_ids(hit: dict) -> dict:
    return {"idpageview": hit["idpageview"], "serverTimePretty": hit["serverTimePretty"],
            "pageId": hit["pageId"]}


def _item(item: tuple) -> dict:
    sku, name, price, categories, quantity = item
    return {"itemSKU": sku, "itemName": name, "itemCategory": categories[0] if categories else None,
            "price": price, "quantity": quantity, "categories": list(categories)}


def _conversion_referrer(referrer: dict) -> dict:
    """Goal and ecommerce rows carry the attributed referrer raw from log_conversion (null when empty)."""
    return {"referrerType": referrer["type"], "referrerName": referrer["name"] or None,
            "referrerKeyword": referrer["keyword"] or None}


def _date_fields(site: _Site, first_utc: int, last_utc: int) -> dict:
    last = datetime.fromtimestamp(last_utc, timezone.utc)
    last_local = last.astimezone(site.tz)
    first_local = datetime.fromtimestamp(first_utc, site.tz)
    return {
        "serverDate": last.strftime("%Y-%m-%d"),
        "visitServerHour": str(last.hour),
        "lastActionTimestamp": last_utc,
        "lastActionDateTime": last.strftime("%Y-%m-%d %H:%M:%S"),
        "siteName": site.name,
        "serverTimestamp": last_utc,
        "firstActionTimestamp": first_utc,
        "serverTimePretty": last_local.strftime("%H:%M:%S"),
        "serverDatePretty": _pretty_date(last_local),
        "serverDatePrettyFirstAction": _pretty_date(first_local),
        "serverTimePrettyFirstAction": first_local.strftime("%H:%M:%S"),
    }


def _core_fields(visitor: _Visitor, steps: list[_Step], duration: int) -> dict:
    kinds = [step.kind for step in steps]
    converted = int("goal" in kinds or "order" in kinds)
    status = _ecommerce_status(kinds)
    returning = visitor.visit_count > 1
    return {
        "userId": visitor.user_id,
        "visitorType": "returning" if returning else "new",
        "visitorTypeIcon": "plugins/Live/images/returningVisitor.png" if returning else None,
        "visitConverted": converted,
        "visitConvertedIcon": f"{_IMAGES}/goal.svg" if converted else None,
        "visitCount": visitor.visit_count,
        "visitEcommerceStatus": status,
        "visitEcommerceStatusIcon": _ECOMMERCE_STATUS_ICONS[status],
        "daysSinceFirstVisit": visitor.seconds_since_first // 86400,
        "secondsSinceFirstVisit": visitor.seconds_since_first,
        "daysSinceLastEcommerceOrder": 0,
        "secondsSinceLastEcommerceOrder": None,
        "visitDuration": duration,
        "visitDurationPretty": _pretty_seconds(duration),
        "searches": kinds.count("search"),
        "actions": sum(1 for kind in kinds if kind in _COUNTED_KINDS),
        "interactions": kinds.count("pageview") + kinds.count("search"),
    }


_ECOMMERCE_STATUS_ICONS = {"none": None, "ordered": f"{_IMAGES}/ecommerceOrder.svg",
                           "orderedThenAbandonedCart": f"{_IMAGES}/ecommerceOrder.svg",
                           "abandonedCart": f"{_IMAGES}/ecommerceAbandonedCart.svg"}


def _ecommerce_status(kinds: list[str]) -> str:
    if "order" in kinds:
        return "orderedThenAbandonedCart" if "cart" in kinds[kinds.index("order"):] else "ordered"
    return "abandonedCart" if "cart" in kinds else "none"


def _referrer_fields(referrer: dict) -> dict:
    kind = referrer["type"]
    engine = referrer.get("engine_host")
    keyword = referrer["keyword"]
    if kind == "search" and not keyword:
        keyword = "Keyword not defined"
    return {
        "referrerType": kind,
        "referrerTypeName": _REFERRER_TYPE_NAMES[kind],
        "referrerName": referrer["name"],
        "referrerKeyword": keyword,
        "referrerKeywordPosition": None,
        "referrerUrl": referrer["url"],
        "referrerSearchEngineUrl": f"http://{engine}" if engine else None,
        "referrerSearchEngineIcon": f"{_ICONS}/searchEngines/{engine}.png" if engine else None,
        "referrerSocialNetworkUrl": None,
        "referrerSocialNetworkIcon": None,
    }


def _device_fields(visitor: _Visitor) -> dict:
    (device_type, device_icon, brand, model, os_name, os_code, os_version,
     engine, browser, browser_code, browser_version, _) = visitor.device
    return {
        "languageCode": visitor.language[0],
        "language": visitor.language[1],
        "deviceType": device_type,
        "deviceTypeIcon": f"{_ICONS}/devices/{device_icon}.png",
        "deviceBrand": brand,
        "deviceModel": model,
        "operatingSystem": f"{os_name} {os_version}",
        "operatingSystemName": os_name,
        "operatingSystemIcon": f"{_ICONS}/os/{os_code}.png",
        "operatingSystemCode": os_code,
        "operatingSystemVersion": os_version,
        "browserFamily": engine,
        "browserFamilyDescription": _ENGINE_DESCRIPTIONS[engine],
        "browser": f"{browser} {browser_version}",
        "browserName": browser,
        "browserIcon": f"{_ICONS}/browsers/{browser_code}.png",
        "browserCode": browser_code,
        "browserVersion": browser_version,
    }


def _ecommerce_totals(actions: list[dict]) -> dict:
    """Lifetime ecommerce metrics; only this visit's conversions are known to the generator."""
    totals = {}
    for kind, prefix in (("ecommerceOrder", "totalEcommerce"), ("ecommerceAbandonedCart", "totalAbandonedCarts")):
        rows = [action for action in actions if action["type"] == kind]
        revenue = _number(sum(row["revenue"] for row in rows)) if rows else 0
        items = str(sum(row["items"] for row in rows)) if rows else 0  # SUM() is DECIMAL, the default an int
        if prefix == "totalEcommerce":
            totals.update(totalEcommerceRevenue=revenue, totalEcommerceConversions=len(rows),
                          totalEcommerceItems=items)
        else:
            totals.update(totalAbandonedCartsRevenue=revenue, totalAbandonedCarts=len(rows),
                          totalAbandonedCartsItems=items)
    return totals


def _location_fields(visitor: _Visitor, site: _Site, first_utc: int) -> dict:
    continent, continent_code, country, code, region, region_code, city, latitude, longitude = visitor.location
    local_time = datetime.fromtimestamp(first_utc, site.tz)
    parts = [part for part in (city, region) if part] + [country]
    resolution = visitor.resolution
    plugins = ("cookie", "pdf") if visitor.device[0] == "Desktop" else ("cookie",)
    return {
        "continent": continent,
        "continentCode": continent_code,
        "country": country,
        "countryCode": code,
        "countryFlag": f"{_ICONS}/flags/{code}.png",
        "region": region,
        "regionCode": region_code,
        "city": city,
        "location": ", ".join(parts),
        "latitude": latitude,
        "longitude": longitude,
        "visitLocalTime": local_time.strftime("%H:%M:%S"),
        "visitLocalHour": str(local_time.hour),
        "daysSinceLastVisit": visitor.seconds_since_last // 86400,
        "secondsSinceLastVisit": visitor.seconds_since_last,
        "resolution": resolution,
        "plugins": ", ".join(plugins),
        "pluginsIcons": [{"pluginIcon": f"{_ICONS}/plugins/{name}.png", "pluginName": name} for name in plugins],
    }


# --- small formatting helpers ------------------------------------------------------------------------------


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _id_action(name: str) -> int:
    """The log_action id of a URL: Matomo stores each distinct URL once and every hit refers to it."""
    return _ACTION_IDS[name]


def _number(value: float) -> int | float:
    """Money as Matomo's JSON prints a DOUBLE: two decimals, whole values without a fraction."""
    value = round(value, 2)
    return int(value) if value == int(value) else value


def _pretty_seconds(seconds: float) -> str:
    """Matomo's getPrettyTimeFromSeconds(..., true) in English."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    secs_text = f"{round(secs, 2):g}"
    if days:
        return f"{int(days)} days {int(hours)} hours"
    if hours:
        return f"{int(hours)} hours {int(minutes)} min"
    if minutes:
        return f"{int(minutes)} min {secs_text}s"
    return f"{secs_text}s"


def _pretty_money(amount: float, currency: str) -> str:
    symbol = _CURRENCY_SYMBOLS.get(currency, currency + " ")
    text = f"{amount:,.2f}"
    return symbol + (text[:-3] if text.endswith(".00") else text)


# English names, independent of the process locale (strftime's %A/%B are not).
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def _pretty_date(moment: datetime) -> str:
    return f"{_WEEKDAYS[moment.weekday()]}, {_MONTHS[moment.month - 1]} {moment.day}, {moment.year}"


def _pretty_datetime(utc_seconds: int, tz: tzinfo) -> str:
    local = datetime.fromtimestamp(utc_seconds, tz)
    return f"{_MONTHS[local.month - 1][:3]} {local.day}, {local.year} {local:%H:%M:%S}"

