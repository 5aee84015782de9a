"""A local Matomo HTTP API emulator that answers the way a Matomo 5.2 server does.

It serves ``SitesManager.getSiteFromId``, ``Live.getLastVisitsDetails``, ``VisitsSummary.get``,
``CustomDimensions.getConfiguredCustomDimensions`` and ``API.getMatomoVersion`` from in-memory visits
(generated, or loaded from a JSON export), and keeps the rules of Matomo's code that clients get wrong:

* ``module``, ``method`` and ``format=JSON`` are read from the query string only; without them the answer is
  an HTML page, as Matomo's early errors are. Other parameters may also come from the form-encoded POST body,
  the query string winning as in PHP's ``$_GET + $_POST``.
* ``token_auth`` is accepted only in the POST body (a "secure only" token): one in the query string is
  rejected even when correct. Access errors are JSON ``{"result":"error",...}`` with HTTP 200.
* ``Live.getLastVisitsDetails`` windows a site-local day as ``[D 00:00:00, D+1 00:00:00]`` on the visit's
  last action time, *inclusive* of the next midnight; asking for the current day returns everything from
  yesterday 00:00 on; multi-day periods are split into sub-queries with Matomo's offset miscount
  (matomo-org/matomo#16394). ``VisitsSummary.get`` counts ``[D 00:00, D+1 00:00)``, end exclusive.

Faults are queued with :meth:`MatomoEmulator.add_fault` or ``POST /_emulator/faults`` (a JSON object or a
list of them); each is used by the next API request whose method matches (``"method"``, optional), ``"times"``
times (default 1):

* ``{"status": 503, "retry_after": 30, "body": "..."}``: that HTTP status (401/403 default to Matomo's
  access error JSON, others to a small HTML page), with a ``Retry-After`` header when given;
* ``{"error": "message"}``: HTTP 200 with ``{"result":"error","message":"message"}``;
* ``{"html": true}``: HTTP 200 with an HTML page instead of JSON;
* ``{"drop": true}``: the connection is closed without an answer;
* ``{"delay": 0.2}``: wait that many seconds first (alone, the request is then answered normally).

``GET /_emulator/requests`` lists the API requests received (token values replaced by ``***``) and
``POST /_emulator/reset`` forgets faults and requests. The token is never logged or printed.
"""

from __future__ import annotations

import copy
import hmac
import json
import random
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, urlsplit

from matomo_posthog.emulators.loopback import require_loopback
from matomo_posthog.emulators.generator import CUSTOM_DIMENSIONS, generate_visits
from matomo_posthog.timezones import parse_timezone

__all__ = ["MatomoEmulator", "Site", "load_export"]

_API_PATHS = ("/", "/index.php")
_JSON = "application/json; charset=utf-8"
_HTML = "text/html; charset=utf-8"
_PERIODS = ("day", "week", "month", "year", "range")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FIRST_WEBSITE = datetime(1991, 8, 6, tzinfo=timezone.utc)  # Matomo's Date::FIRST_WEBSITE_TIMESTAMP
_MEMORY_EXHAUSTED = ("<br />\n<b>Fatal error</b>:  Allowed memory size of 134217728 bytes exhausted "
                     "(tried to allocate 20480 bytes) in <b>/var/www/html/core/DataTable/Row.php</b> "
                     "on line <b>172</b><br />\n")
_FAULT_KINDS = ("status", "error", "html", "drop")
_FAULT_KEYS = frozenset({*_FAULT_KINDS, "delay", "retry_after", "body", "method", "times"})
_STATUS_TEXT = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
                503: "Service Unavailable", 504: "Gateway Timeout"}
_CURRENCY_NAMES = {"EUR": "Euro", "USD": "US Dollar", "GBP": "British Pound", "JPY": "Japanese Yen",
                   "CHF": "Swiss Franc", "NZD": "New Zealand Dollar", "BRL": "Brazilian Real"}

# Integer columns that PHP < 8.1 (or the MySQLi adapter) sends as strings. Values computed in PHP
# (timestamps, floor()/round() results, counts) stay numbers.
_VISIT_DB_INTS = ("idSite", "idVisit", "visitConverted", "visitCount", "visitDuration", "searches", "actions",
                  "interactions", "events", "secondsSinceFirstVisit", "secondsSinceLastVisit",
                  "secondsSinceLastEcommerceOrder", "totalEcommerceConversions", "totalAbandonedCarts")
_VISIT_DB_FLOATS = ("totalEcommerceRevenue", "totalAbandonedCartsRevenue")
_ACTION_DB_INTS = ("pageId", "pageIdAction", "pageviewPosition", "goalId", "goalPageId", "items",
                   "siteSearchCount", "pageLoadTimeMilliseconds", "bandwidth")
_SITE_DB_INTS = ("idsite", "ecommerce", "sitesearch", "exclude_unknown_urls", "keep_url_fragment")


class _ApiError(Exception):
    """A Matomo API error, rendered as ``{"result":"error","message":...}``."""

    def __init__(self, message: str, status: int = 200):
        super().__init__(message)
        self.message = message
        self.status = status


class _PhpFatalError(Exception):
    """A PHP fatal error: Matomo never gets to write JSON, the web server answers 500 with PHP's text."""


@dataclass
class Site:
    """A website the emulator serves: its settings and its raw ``Live.getLastVisitsDetails`` rows."""

    timezone: str = "UTC"
    currency: str = "EUR"
    main_url: str = "https://shop.example.com"
    name: str = "Example Shop"
    visits: list[dict] = field(default_factory=list)
    ts_created: str = "2020-01-01 00:00:00"
    custom_dimensions: list[dict] = field(default_factory=list)  # idcustomdimension, name, index, scope


@dataclass(frozen=True)
class _Entry:
    last: int  # visit_last_action_time, UTC seconds
    id_visit: int
    row: dict


class _SiteIndex:
    """A site's visits sorted the way Matomo's SQL orders them: last action time, then idvisit."""

    def __init__(self, site_id: int, site: Site, undated_day: date):
        self.site_id = site_id
        self.site = site
        self.tz = parse_timezone(site.timezone)
        # Site-local noon, so undated rows show up when that day is asked for, whatever the timezone.
        noon = int(datetime(undated_day.year, undated_day.month, undated_day.day, 12, tzinfo=self.tz).timestamp())
        self.entries = sorted(
            (_Entry(_to_int(row.get("lastActionTimestamp"), noon), _to_int(row.get("idVisit"), 0), row)
             for row in site.visits),
            key=lambda entry: (entry.last, entry.id_visit),
        )

    def between(self, start: int | None, end: int | None, min_ts: int = 0) -> list[_Entry]:
        """Entries with ``start <= last <= end`` (bounds optional) and ``last > min_ts`` when min_ts is set."""
        return [entry for entry in self.entries
                if (start is None or entry.last >= start) and (end is None or entry.last <= end)
                and (not min_ts or entry.last > min_ts)]


def load_export(path: str | Path) -> list[dict]:
    """Read a Matomo export: a JSON array of ``Live.getLastVisitsDetails`` rows."""
    with open(path, encoding="utf-8") as handle:
        rows = json.load(handle)
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ValueError(f"{path}: expected a JSON array of visit objects")
    return rows


class MatomoEmulator:
    """An in-process Matomo server on a loopback port; use as a context manager or call start()/stop().

    ``sites`` maps a site id to a :class:`Site` (or a mapping of its fields). Options: ``max_page_size``
    makes a Live request for more rows than that fail as PHP running out of memory (HTTP 500);
    ``numbers_as_strings`` serves database integers as strings like PHP < 8.1; ``max_actions_per_visit``
    truncates ``actionDetails`` and adds ``truncatedActionsCount``; ``auth_error_status`` is the HTTP status
    of access errors (Matomo usually answers 200); ``unstable_ties`` orders visits that ended in the same
    second differently on every request, as servers before 5.2.0 did; ``undated_day`` places rows without
    ``lastActionTimestamp`` at site-local noon of that day; ``clock`` gives "now" for ``today`` and the current day.
    """

    def __init__(
        self,
        token: str,
        sites: Mapping[int, Site | Mapping[str, Any]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_page_size: int | None = None,
        numbers_as_strings: bool = False,
        max_actions_per_visit: int = 500,
        auth_error_status: int = 200,
        unstable_ties: bool = False,
        undated_day: date = date(2024, 1, 1),
        matomo_version: str = "5.2.0",
        clock: Callable[[], float] = time.time,
    ):
        if not isinstance(token, str) or not token:
            raise ValueError("the emulator needs a non-empty token")
        self._token = token
        self._host = require_loopback(host)
        self._port = port
        self.max_page_size = max_page_size
        self.numbers_as_strings = numbers_as_strings
        self.max_actions_per_visit = max_actions_per_visit
        self.auth_error_status = auth_error_status
        self.unstable_ties = unstable_ties
        self.matomo_version = matomo_version
        self.clock = clock
        self._sites = {int(site_id): _SiteIndex(int(site_id), _as_site(site), undated_day)
                       for site_id, site in sites.items()}
        self._lock = threading.Lock()
        self._faults: list[dict] = []
        self._log: list[dict] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"MatomoEmulator(sites={sorted(self._sites)}, url={self.url if self._server else None!r})"

    @classmethod
    def from_generator(cls, site_id: int, timezone: str, start: date, end: date, visits_per_day: int, seed: int,
                       token: str, *, currency: str = "EUR", name: str = "Example Shop",
                       main_url: str = "https://shop.example.com", midnight_visits: bool = False,
                       first_id_visit: int = 1, **options: Any) -> MatomoEmulator:
        """An emulator serving one site filled by :func:`generate_visits`."""
        visits = generate_visits(site_id, timezone, start, end, visits_per_day, seed, first_id_visit,
                                 midnight_visits=midnight_visits, site_name=name, currency=currency,
                                 base_url=main_url)
        site = Site(timezone=timezone, currency=currency, main_url=main_url, name=name, visits=visits,
                    custom_dimensions=[dict(dimension) for dimension in CUSTOM_DIMENSIONS])
        return cls(token, {site_id: site}, **options)

    @classmethod
    def from_export(cls, path: str | Path, site_id: int, timezone: str, token: str, *, currency: str = "EUR",
                    name: str = "Example Shop", main_url: str = "https://shop.example.com",
                    **options: Any) -> MatomoEmulator:
        """An emulator serving one site whose visits come from a JSON export file."""
        site = Site(timezone=timezone, currency=currency, main_url=main_url, name=name, visits=load_export(path))
        return cls(token, {site_id: site}, **options)

    # --- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> MatomoEmulator:
        """Bind the port and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._stopping.clear()
        self._server = _Server((self._host, self._port), _Handler, self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="matomo-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and the listening socket."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> MatomoEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Base URL such as ``http://127.0.0.1:PORT/``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}/"

    # --- faults and request log --------------------------------------------------------------------------

    def add_fault(self, **fault: Any) -> None:
        """Queue a fault for the next matching API request; see the module docstring for the format."""
        _validate_fault(fault)
        with self._lock:
            self._faults.append({"fault": fault, "remaining": int(fault.get("times", 1))})

    def reset(self) -> None:
        """Forget queued faults and logged requests."""
        with self._lock:
            self._faults.clear()
            self._log.clear()

    @property
    def requests(self) -> list[dict]:
        """API requests received so far (token values replaced by ``***``)."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def _take_fault(self, method: str | None) -> dict | None:
        with self._lock:
            for queued in self._faults:
                wanted = queued["fault"].get("method")
                if wanted is None or wanted == method:
                    queued["remaining"] -= 1
                    if queued["remaining"] <= 0:
                        self._faults.remove(queued)
                    return queued["fault"]
        return None

    def _record(self, entry: dict) -> None:
        with self._lock:
            self._log.append(entry)

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    # --- the API -----------------------------------------------------------------------------------------

    def _check_token(self, query: Mapping[str, str], post: Mapping[str, str], id_site: str | None) -> None:
        """Matomo only accepts a secure-only token from the POST body, never from the URL."""
        sent = post.get("token_auth", "").encode()
        if "token_auth" not in query and hmac.compare_digest(sent, self._token.encode()):
            return
        raise _ApiError(_view_access_message(id_site), self.auth_error_status)

    def _site(self, id_site: str | None) -> _SiteIndex:
        if id_site is None or id_site == "":
            raise _ApiError("Please specify a value for 'idSite'.")
        if id_site == "all" or "," in id_site:
            raise _ApiError("The emulator serves one site per request: idSite=all and lists of sites "
                            "are not supported (Matomo would merge them in the server's timezone).")
        index = self._sites.get(_to_int(id_site, -1))
        if index is None:
            raise _ApiError(_view_access_message(id_site), self.auth_error_status)
        return index

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), timezone.utc)

    def _site_from_id(self, params: Mapping[str, str]) -> dict:
        index = self._site(params.get("idSite"))
        site = index.site
        answer = {
            "idsite": index.site_id, "name": site.name, "main_url": site.main_url, "ts_created": site.ts_created,
            "ecommerce": 1, "sitesearch": 1, "sitesearch_keyword_parameters": "",
            "sitesearch_category_parameters": "", "timezone": site.timezone, "currency": site.currency,
            "exclude_unknown_urls": 0, "excluded_ips": "", "excluded_parameters": "", "excluded_user_agents": "",
            "excluded_referrers": "", "group": "", "type": "website", "keep_url_fragment": 0,
            "timezone_name": _timezone_label(site.timezone),
            "currency_name": _CURRENCY_NAMES.get(site.currency, site.currency),
        }
        if self.numbers_as_strings:
            _stringify(answer, _SITE_DB_INTS)
        return answer

    def _last_visits(self, params: Mapping[str, str]) -> list[dict]:
        index = self._site(params.get("idSite"))
        now = self._now()
        start, end = _live_window(index.tz, params.get("period"), params.get("date"), now)
        if "countVisitorsToFetch" in params:  # deprecated: silently replaces limit and resets the offset
            limit, offset = _to_int(params["countVisitorsToFetch"], 0), 0
        else:
            # Over HTTP the limit defaults to 100; a value that is not an integer falls back to the method's 10.
            limit = _int_param(params.get("filter_limit"), missing=100, invalid=10)
            offset = _int_param(params.get("filter_offset"), missing=0, invalid=0)
        if self.max_page_size is not None and limit > self.max_page_size:
            raise _PhpFatalError(_MEMORY_EXHAUSTED)
        ascending = params.get("filter_sort_order", "").lower() == "asc"
        min_ts = _php_numeric_int(params.get("minTimestamp"))
        entries = self._query(index, start, end, min_ts, limit, offset, ascending, now)
        if self.max_page_size is not None and len(entries) > self.max_page_size:
            raise _PhpFatalError(_MEMORY_EXHAUSTED)
        fetch_actions = params.get("doNotFetchActions", "") in ("", "0")  # PHP truthiness of the raw string
        return [self._render_visit(entry.row, fetch_actions) for entry in entries]

    def _query(self, index: _SiteIndex, start: datetime | None, end: datetime | None, min_ts: int, limit: int,
               offset: int, ascending: bool, now: datetime) -> list[_Entry]:
        """Matomo's Live Model::queryLogVisits, including how it splits multi-day windows and pages them."""
        limit = limit + 1 if limit > -1 else limit  # Matomo fetches one more row to know if more exist
        found: list[_Entry] = []
        for part_start, part_end in _split_window(start, end, limit, offset, ascending, now):
            part_limit = limit - len(found) if limit > -1 else limit
            part_offset = 0 if offset and found else offset
            rows = self._select(index, part_start, part_end, min_ts, part_offset, part_limit, ascending)
            if offset and not rows:
                # Matomo counts the rows it skipped in this part with a limited query: the #16394 miscount
                rows = self._select(index, part_start, part_end, min_ts, 0, part_limit, ascending)
                if rows:
                    offset -= len(rows)
                continue
            found.extend(rows)
            if limit > 0 and len(found) >= limit:
                found = found[:limit]
                break
        if len(found) == limit:
            found.pop()
        return found

    def _select(self, index: _SiteIndex, start: datetime | None, end: datetime | None, min_ts: int,
                offset: int, limit: int, ascending: bool) -> list[_Entry]:
        rows = index.between(_epoch(start), _epoch(end), min_ts)
        if not ascending:
            rows.reverse()
        if self.unstable_ties:
            rows = _shuffle_ties(rows, random.Random(f"{offset}:{limit}:{len(rows)}"))
        offset = offset if offset >= 1 else 0
        return rows[offset:offset + limit] if limit >= 1 else rows[offset:]

    def _render_visit(self, row: dict, fetch_actions: bool) -> dict:
        visit = copy.deepcopy(row)  # the stored rows are shared between requests and with the caller
        actions = visit.get("actionDetails") or []
        if not fetch_actions:
            visit["actionDetails"] = []
        else:
            visit["actionDetails"] = actions[:self.max_actions_per_visit]
            if len(actions) > self.max_actions_per_visit:
                visit["truncatedActionsCount"] = len(actions) - self.max_actions_per_visit
        if self.numbers_as_strings:
            _stringify_visit(visit)
        return visit

    def _visits_summary(self, params: Mapping[str, str]) -> dict | list:
        index = self._site(params.get("idSite"))
        start, end = _summary_window(index.tz, params.get("period"), params.get("date"), self._now())
        rows = [entry.row for entry in index.between(start, end - 1)]
        return _summary_metrics(rows)

    def _custom_dimensions(self, params: Mapping[str, str]) -> list[dict]:
        index = self._site(params.get("idSite"))
        return [{"idcustomdimension": str(dimension["idcustomdimension"]), "idsite": str(index.site_id),
                 "name": dimension["name"], "index": str(dimension["index"]), "scope": dimension["scope"],
                 "active": True, "extractions": [], "case_sensitive": True}
                for dimension in index.site.custom_dimensions]

    def _version(self, params: Mapping[str, str]) -> dict:
        return {"value": self.matomo_version}

    _METHODS: dict[str, Callable[[MatomoEmulator, Mapping[str, str]], Any]] = {
        "SitesManager.getSiteFromId": _site_from_id,
        "Live.getLastVisitsDetails": _last_visits,
        "VisitsSummary.get": _visits_summary,
        "CustomDimensions.getConfiguredCustomDimensions": _custom_dimensions,
        "API.getMatomoVersion": _version,
    }

    def _answer(self, query: Mapping[str, str], post: Mapping[str, str]) -> tuple[int, bytes, str]:
        """Run one API call from the parsed query string and POST body: (HTTP status, body, content type)."""
        params = {**post, **query}  # PHP's $_GET + $_POST: the query string wins
        method = query.get("method", "")
        try:
            handler = self._METHODS.get(method)
            if handler is None:
                module, _, name = method.rpartition(".")
                raise _ApiError(f"The method '{name}' does not exist or is not available in the module "
                                f"'\\Piwik\\Plugins\\{module}\\API'.", 400)
            self._check_token(query, post, params.get("idSite"))
            return 200, _json_bytes(handler(self, params)), _JSON
        except _ApiError as error:
            return error.status, _json_bytes({"result": "error", "message": error.message}), _JSON
        except _PhpFatalError as error:
            return 500, str(error).encode(), _HTML


# --- windows ---------------------------------------------------------------------------------------------


def _live_window(tz: tzinfo, period: str | None, date_text: str | None,
                 now: datetime) -> tuple[datetime | None, datetime | None]:
    """Matomo's Live Model::getStartAndEndDate: inclusive bounds on the visit's last action time."""
    if not period or not date_text:
        return None, None
    if period not in _PERIODS:
        raise _ApiError(f"The period '{period}' is not supported. Try any of the following instead: "
                        + ", ".join(_PERIODS))
    local_today = now.astimezone(tz).date()
    if period == "range" or "," in date_text:
        first, last, end_text = _range_days(date_text, now)
    else:
        day = _parse_day(date_text, now)
        if date_text in ("today", "now") or day == local_today:
            day -= timedelta(days=1)  # the current day starts from yesterday 00:00, with no end
        first, last = _period_days(period, day)
        end_text = date_text
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    if start > now:
        start = now
    end = None
    if date_text not in ("today", "now") and _parse_day(end_text, now) != local_today:
        end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=tz)
        if end > now:
            end = now + timedelta(seconds=1)
    return start, end


def _summary_window(tz: tzinfo, period: str | None, date_text: str | None, now: datetime) -> tuple[int, int]:
    """Archive bounds ``[first 00:00, last+1 00:00)`` in site-local time, as UTC seconds."""
    if not period:
        raise _ApiError("Please specify a value for 'period'.")
    if not date_text:
        raise _ApiError("Please specify a value for 'date'.")
    if period not in _PERIODS:
        raise _ApiError(f"The period '{period}' is not supported. Try any of the following instead: "
                        + ", ".join(_PERIODS))
    if period == "range":
        first, last, _ = _range_days(date_text, now)
    elif "," in date_text:
        raise _ApiError("The emulator answers VisitsSummary.get for one period at a time, not for a list of dates.")
    else:
        first, last = _period_days(period, _parse_day(date_text, now))
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return _epoch(start), _epoch(end)


def _split_window(start: datetime | None, end: datetime | None, limit: int, offset: int, ascending: bool,
                  now: datetime) -> list[tuple[datetime | None, datetime | None]]:
    """Matomo's Live Model::splitDatesIntoMultipleQueries: a day, a week, then (without offset) a month and a
    year, then the rest; newest part first unless ascending. Bounds are inclusive."""
    virtual_end = end if end is not None else now + timedelta(days=1)
    virtual_start = start if start is not None else _FIRST_WEBSITE
    if not limit or not _earlier(virtual_start + timedelta(days=1), virtual_end):
        return [(start, end)]
    second = timedelta(seconds=1)
    steps = [(7, 0)] if offset else [(7, 0), (30, 0), (0, 1)]  # (days, years)
    if not ascending:
        virtual_end -= timedelta(days=1)
        parts = [(virtual_end, end)]
        for days, years in steps:
            if _earlier(_shift(virtual_start, days, years), virtual_end):
                parts.append((_shift(virtual_end, -days, -years), virtual_end - second))
                virtual_end = _shift(virtual_end, -days, -years)
        if _earlier(virtual_start, virtual_end):
            parts.append((start, virtual_end - second))
        return parts
    parts = [(virtual_start, virtual_start + timedelta(days=1) - second)]
    virtual_start += timedelta(days=1)
    for days, years in steps:
        if _earlier(_shift(virtual_start, days, years), virtual_end):
            parts.append((virtual_start, _shift(virtual_start, days, years) - second))
            virtual_start = _shift(virtual_start, days, years)
    if _earlier(virtual_start, virtual_end):
        parts.append((virtual_start, end))
    return parts


def _shift(moment: datetime, days: int, years: int) -> datetime:
    """Move a wall-clock time by days and years, as PHP's strtotime('+N day') and ('+N year') do."""
    moment += timedelta(days=days)
    if not years:
        return moment
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February rolls over to 1 March
        return moment.replace(year=moment.year + years, month=3, day=1)


def _range_days(date_text: str, now: datetime) -> tuple[date, date, str]:
    first_text, _, last_text = date_text.partition(",")
    if not first_text or not last_text or "," in last_text:
        raise _ApiError(f"The date '{date_text}' is not a correct date range. It should have the following "
                        "format: YYYY-MM-DD,YYYY-MM-DD.")
    return _parse_day(first_text, now), _parse_day(last_text, now), last_text


def _parse_day(text: str, now: datetime) -> date:
    """A date parameter as Matomo's Date::factory reads it without a timezone (today is the UTC date)."""
    if text in ("today", "now"):
        return now.date()
    if text == "yesterday":
        return now.date() - timedelta(days=1)
    try:
        if _DATE_RE.match(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise _ApiError("Date format must be: YYYY-MM-DD, or 'today' or 'yesterday' or any keyword supported by the "
                    f"strtotime function (see http://php.net/strtotime for more information): '{text}'")


def _period_days(period: str, day: date) -> tuple[date, date]:
    if period == "week":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=6)
    if period == "month":
        following = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
        return day.replace(day=1), following - timedelta(days=1)
    if period == "year":
        return date(day.year, 1, 1), date(day.year, 12, 31)
    return day, day


def _earlier(left: datetime, right: datetime) -> bool:
    return left.timestamp() < right.timestamp()


def _epoch(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def _shuffle_ties(entries: list[_Entry], rng: random.Random) -> list[_Entry]:
    """Visits that ended in the same second in an arbitrary order, as before Matomo 5.2.0."""
    shuffled: list[_Entry] = []
    group: list[_Entry] = []
    for entry in entries + [None]:
        if group and (entry is None or entry.last != group[0].last):
            rng.shuffle(group)
            shuffled.extend(group)
            group = []
        if entry is not None:
            group.append(entry)
    return shuffled


# --- values ----------------------------------------------------------------------------------------------


def _summary_metrics(rows: list[dict]) -> dict | list:
    """VisitsSummary.get for a set of visits; an empty archive is an empty DataTable, ``[]``."""
    if not rows:
        return []
    visits = len(rows)
    actions = [_to_int(row.get("actions"), 0) for row in rows]
    lengths = sum(_to_int(row.get("visitDuration"), 0) for row in rows)
    bounces = sum(1 for count in actions if count <= 1)
    return {
        "nb_uniq_visitors": len({row.get("visitorId") or row.get("idVisit") for row in rows}),
        "nb_users": len({row["userId"] for row in rows if row.get("userId")}),
        "nb_visits": visits,
        "nb_actions": sum(actions),
        "nb_visits_converted": sum(1 for row in rows if _to_int(row.get("visitConverted"), 0)),
        "bounce_count": bounces,
        "sum_visit_length": lengths,
        "max_actions": max(actions),
        "bounce_rate": f"{_php_round(100 * bounces / visits, 0)}%",
        "nb_actions_per_visit": _php_round(sum(actions) / visits, 1),
        "avg_time_on_site": _php_round(lengths / visits, 0),
    }


def _stringify_visit(visit: dict) -> None:
    _stringify(visit, _VISIT_DB_INTS + _VISIT_DB_FLOATS)
    for action in visit.get("actionDetails") or []:
        _stringify(action, _ACTION_DB_INTS)
        if action.get("type") == 13:
            action["type"] = "13"
        if action.get("type") == "goal":
            _stringify(action, ("revenue",))
        else:
            _stringify_fraction(action, ("revenue", "revenueSubTotal", "revenueTax", "revenueShipping",
                                         "revenueDiscount"))
        _stringify(action, ("productViewPrice",))
        for item in action.get("itemDetails") or []:
            _stringify(item, ("quantity",))
            _stringify_fraction(item, ("price",))


def _stringify(row: dict, keys: tuple[str, ...]) -> None:
    for key in keys:
        value = row.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            row[key] = _php_string(value)


def _stringify_fraction(row: dict, keys: tuple[str, ...]) -> None:
    """Ecommerce amounts: whole values went through PHP's round() and stay numbers, the rest are strings."""
    for key in keys:
        value = row.get(key)
        if isinstance(value, float) and not value.is_integer():
            row[key] = _php_string(value)


def _php_string(value: int | float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _php_round(value: float, digits: int) -> int | float:
    """PHP's round(): halves away from zero; whole results print without a fraction in JSON."""
    rounded = Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return int(rounded) if rounded == rounded.to_integral_value() else float(rounded)


def _php_numeric_int(value: str | None) -> int:
    """``(int)`` of a parameter that passes PHP's is_numeric(), else 0 (ignored)."""
    try:
        number = float((value or "").strip())
    except ValueError:
        return 0
    return int(number) if number == number and abs(number) != float("inf") else 0


def _int_param(value: str | None, *, missing: int, invalid: int) -> int:
    """Common::getRequestVar(..., 'int'): only a plain integer string counts, anything else is the default."""
    if value is None:
        return missing
    return int(value) if re.fullmatch(r"-?\d+", value) else invalid


def _to_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _as_site(site: Site | Mapping[str, Any]) -> Site:
    return site if isinstance(site, Site) else Site(**site)


def _view_access_message(id_site: str | None) -> str:
    if id_site is None or id_site == "":
        return "You can't access this resource as it requires a 'view' access."
    return (f"You can't access this resource as it requires 'view' access for the website id = "
            f"{_to_int(id_site, 0)}.")


def _timezone_label(name: str) -> str:
    """A display label like Matomo's ``timezone_name`` (the city of an IANA name, or the UTC offset)."""
    return name.rsplit("/", 1)[-1].replace("_", " ")


def _validate_fault(fault: Mapping[str, Any]) -> None:
    unknown = set(fault) - _FAULT_KEYS
    kinds = [kind for kind in _FAULT_KINDS if kind in fault]
    if unknown:
        raise ValueError(f"unknown fault keys: {sorted(unknown)}")
    if len(kinds) > 1 or (not kinds and "delay" not in fault):
        raise ValueError("a fault needs exactly one of status, error, html, drop (delay may come with any)")
    if "status" in fault and not 400 <= int(fault["status"]) <= 599:
        raise ValueError("a fault status must be an HTTP error status (4xx or 5xx)")
    if int(fault.get("times", 1)) < 1:
        raise ValueError("a fault's times must be at least 1")


def _json_bytes(value: Any) -> bytes:
    """Compact JSON the way PHP's json_encode writes it (escaped slashes and non-ASCII)."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode("ascii")


def _html_page(message: str) -> bytes:
    escaped = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (f"<!DOCTYPE html>\n<html><head><title>Matomo &rsaquo; Error</title></head><body>"
            f"<div id=\"contentsimple\"><h2>Error</h2><p>{escaped}</p></div></body></html>\n").encode("utf-8")


# --- HTTP ------------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    """Tracks open connections so stop() can close keep-alive sockets that would otherwise keep answering."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, emulator: MatomoEmulator):
        self.emulator = emulator
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        # Clients hanging up (timeouts, dropped answers) are expected in fault tests; report anything else.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Routes API calls and the ``/_emulator/`` control endpoints."""

    protocol_version = "HTTP/1.1"
    server_version = "Apache"
    sys_version = ""
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines can carry a token that a client wrongly put in the URL."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if parts.path.startswith("/_emulator/"):
            self._control(parts.path, body)
        elif parts.path not in _API_PATHS:
            self._send(404, _html_page("Not Found"), _HTML)
        else:
            self._api(dict(parse_qsl(parts.query, keep_blank_values=True)),
                      dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)))

    def _api(self, query: dict[str, str], post: dict[str, str]) -> None:
        emulator = self.server.emulator
        method = query.get("method")
        emulator._record({
            "http_method": self.command, "path": urlsplit(self.path).path, "method": method,
            "query": _masked(query), "post": _masked(post),
            "token_in_query": "token_auth" in query, "token_in_post": "token_auth" in post,
        })
        fault = emulator._take_fault(method)
        if fault is not None and self._apply_fault(fault, query, post):
            return
        if query.get("module") != "API" or query.get("format", "").lower() != "json" or not method:
            self._send(200, _html_page("The request needs module=API, method and format=JSON in the URL."),
                       _HTML)
            return
        self._send(*emulator._answer(query, post))

    def _apply_fault(self, fault: dict, query: dict[str, str], post: dict[str, str]) -> bool:
        """Play a fault; return False when the request should still be answered normally (a bare delay)."""
        emulator = self.server.emulator
        if "delay" in fault:
            emulator._sleep(float(fault["delay"]))
        if fault.get("drop"):
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if "error" in fault:
            self._send(200, _json_bytes({"result": "error", "message": str(fault["error"])}),
                       _JSON)
            return True
        if fault.get("html"):
            body = fault.get("body") or "<html><body><h1>Matomo</h1><p>Maintenance in progress.</p></body></html>"
            self._send(200, str(body).encode(), _HTML)
            return True
        if "status" in fault:
            self._send_status_fault(fault, {**post, **query}.get("idSite"))
            return True
        return False

    def _send_status_fault(self, fault: dict, id_site: str | None) -> None:
        status = int(fault["status"])
        headers = [("Retry-After", str(fault["retry_after"]))] if "retry_after" in fault else []
        body = fault.get("body")
        if body is None and status in (401, 403):
            payload, content_type = _json_bytes({"result": "error", "message": _view_access_message(id_site)}), \
                _JSON
        elif body is None:
            text = f"{status} {_STATUS_TEXT.get(status, 'Error')}"
            payload, content_type = _html_page(text), _HTML
        else:
            payload = str(body).encode()
            content_type = (_JSON if str(body).lstrip()[:1] in ("{", "[")
                            else _HTML)
        self._send(status, payload, content_type, headers)

    def _control(self, path: str, body: bytes) -> None:
        emulator = self.server.emulator
        if path == "/_emulator/requests" and self.command == "GET":
            self._send(200, json.dumps(emulator.requests).encode(), "application/json")
        elif path == "/_emulator/reset" and self.command == "POST":
            emulator.reset()
            self._send(200, b'{"reset":true}', "application/json")
        elif path == "/_emulator/faults" and self.command == "POST":
            self._queue_faults(body)
        else:
            self._send(404, b'{"error":"unknown control endpoint"}', "application/json")

    def _queue_faults(self, body: bytes) -> None:
        emulator = self.server.emulator
        try:
            faults = json.loads(body or b"[]")
            faults = faults if isinstance(faults, list) else [faults]
            for fault in faults:
                _validate_fault(fault)
        except (ValueError, TypeError, AttributeError) as error:
            self._send(400, json.dumps({"error": str(error)}).encode(), "application/json")
            return
        for fault in faults:
            emulator.add_fault(**fault)
        self._send(200, json.dumps({"queued": len(faults)}).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str, headers: list[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _masked(params: Mapping[str, str]) -> dict[str, str]:
    return {key: "***" if key == "token_auth" else value for key, value in params.items()}
