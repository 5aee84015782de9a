"""MatomoHook: calls Matomo's Reporting API safely and pages through one site-local day of visits.

Matomo answers most errors with HTTP 200 and ``{"result": "error"}``, accepts secure tokens only in a POST
body, and runs out of memory on large pages (see docs/FACTS in the project's shared notes). This hook keeps the
token out of URLs, logs and exceptions, retries only what a retry can fix, and shrinks the page size when
Matomo cannot answer a page.
"""

from __future__ import annotations

import random
import re
import time
from datetime import date
from typing import Any, Callable, Iterator

import requests
from airflow.providers.http.hooks.http import HttpHook

from matomo_posthog.retry import RETRYABLE_STATUSES, backoff_seconds, parse_retry_after
from matomo_posthog.transform.values import integer

AUTH_STATUSES = frozenset({401, 403})

# Messages that mean "this page was too big for the server", answered by halving the page size.
_TOO_BIG = re.compile(
    r"Allowed memory size|Out of memory|Could not run the query in time|Maximum execution time|"
    r"max_execution_time|MAX_EXECUTION_TIME",
    re.IGNORECASE,
)
# Messages that mean the token or its rights are wrong: retrying cannot help.
_AUTH = re.compile(
    r"can't access this resource|token_auth|authenticate|not authenticated|requires '?(view|admin)'? access|"
    r"permission",
    re.IGNORECASE,
)


class MatomoApiError(Exception):
    """Matomo answered with an error, or with something that is not the JSON it should be."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class MatomoAuthError(MatomoApiError):
    """The token is wrong or lacks access: fix the connection, retrying will not help."""


class MatomoPageTooBigError(MatomoApiError):
    """Matomo ran out of memory or time on this page: ask again with a smaller page."""


def live_params(site_id: int, day: date, limit: int, offset: int) -> dict[str, Any]:
    """The parameters of one page of a site-local day, oldest visits first."""
    return {
        "idSite": site_id,
        "period": "day",
        "date": day.isoformat(),
        "filter_limit": limit,
        "filter_offset": offset,
        "filter_sort_order": "asc",
    }


def new_visits(page: list[dict], seen: set) -> list[dict]:
    """The visits of a page not seen on an earlier page (Matomo's pages can overlap), remembering them."""
    fresh = []
    for visit in page:
        key = visit.get("idVisit") if isinstance(visit, dict) else None
        if key is not None:
            key = str(key)
            if key in seen:
                continue
            seen.add(key)
        fresh.append(visit)
    return fresh


def rows_before_last_tie(page: list[dict]) -> int:
    """How many rows of a page come before those that ended in the same second as its last row.

    Matomo before 5.2 orders visits that ended in the same second arbitrarily, differently on each request,
    so such a run of rows split by a page boundary can lose rows. Starting the next page at the run's first
    row fetches the whole run again in one answer; ``new_visits`` drops the repeats.
    """
    last = page[-1].get("lastActionTimestamp") if isinstance(page[-1], dict) else None
    count = len(page)
    while last is not None and count and isinstance(page[count - 1], dict) and (
        page[count - 1].get("lastActionTimestamp") == last
    ):
        count -= 1
    return count if last is not None else len(page)


class MatomoHook(HttpHook):
    """Talks to one Matomo through an Airflow connection (host = Matomo URL, password = token_auth).

    The connection is read on the first request, not when the hook is built.
    """

    conn_name_attr = "matomo_conn_id"
    default_conn_name = "matomo_default"
    conn_type = "http"
    hook_name = "Matomo"

    def __init__(
        self,
        matomo_conn_id: str = default_conn_name,
        timeout: float = 120.0,
        max_attempts: int = 6,
        backoff_base: float = 2.0,
        backoff_cap: float = 300.0,
        min_request_interval: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(method="POST", http_conn_id=matomo_conn_id)
        self.matomo_conn_id = matomo_conn_id
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.min_request_interval = min_request_interval
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._session: requests.Session | None = None
        self._token: str | None = None
        self._last_request_at: float | None = None

    def _extract_auth(self, connection):
        # The connection's password is Matomo's token_auth, sent in the body; never as HTTP basic auth.
        return None

    def _connect(self) -> tuple[requests.Session, str]:
        if self._session is None:
            connection = self.get_connection(self.matomo_conn_id)
            if not connection.password:
                raise MatomoAuthError(
                    f"connection {self.matomo_conn_id!r} has no password: set it to the Matomo token_auth"
                )
            self._token = connection.password
            self._session = self.get_conn()
        return self._session, self._token

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _snippet(self, response: requests.Response) -> str:
        text = " ".join(response.text.split())
        return self._redact(text[:200] + ("…" if len(text) > 200 else ""))

    def _throttle(self) -> None:
        if self._last_request_at is not None and self.min_request_interval > 0:
            wait = self._last_request_at + self.min_request_interval - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._last_request_at = self._clock()

    def call(self, method: str, **params: Any) -> Any:
        """Call one API method and return its decoded JSON, retrying what a retry can fix.

        ``module``, ``method`` and ``format`` stay in the query string (so early errors are JSON too); every
        other parameter, the token included, goes in the POST body.
        """
        session, token = self._connect()
        url = self.url_from_endpoint("index.php")
        query = {"module": "API", "method": method, "format": "JSON"}
        body = {**params, "language": "en", "token_auth": token}
        problems: list[str] = []
        for attempt in range(1, self.max_attempts + 1):
            self._throttle()
            retry_after = None
            try:
                response = session.post(url, params=query, data=body, timeout=self.timeout)
            except requests.Timeout:
                problems.append(f"no answer within {self.timeout:g}s")
            except requests.ConnectionError as exc:
                problems.append(f"connection failed ({type(exc).__name__})")
            else:
                too_big = response.status_code >= 400 and _TOO_BIG.search(response.text)
                if response.status_code not in RETRYABLE_STATUSES or too_big:
                    return self._decode(method, response)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                problems.append(f"HTTP {response.status_code}")
            if attempt < self.max_attempts:
                delay = backoff_seconds(attempt, retry_after, self.backoff_base, self.backoff_cap, self._rng)
                self.log.warning(
                    "Matomo %s attempt %d/%d failed (%s); retrying in %.1fs",
                    method, attempt, self.max_attempts, problems[-1], delay,
                )
                self._sleep(delay)
        raise MatomoApiError(
            f"Matomo {method} failed {self.max_attempts} times on connection {self.matomo_conn_id!r}: "
            + ", ".join(problems)
        )

    def _decode(self, method: str, response: requests.Response) -> Any:
        status = response.status_code
        where = f"Matomo {method} (connection {self.matomo_conn_id!r})"
        if status >= 400:
            if _TOO_BIG.search(response.text):
                raise MatomoPageTooBigError(f"{where} ran out of memory or time: {self._snippet(response)}", status)
            if status in AUTH_STATUSES:
                raise MatomoAuthError(
                    f"{where} refused the token (HTTP {status}): check the password of the connection", status
                )
            raise MatomoApiError(f"{where} answered HTTP {status}: {self._snippet(response)}", status)
        try:
            data = response.json()
        except ValueError:
            raise MatomoApiError(
                f"{where} answered something that is not JSON (is the host the Matomo URL?): "
                f"{self._snippet(response)}",
                status,
            ) from None
        if isinstance(data, dict) and data.get("result") == "error":
            message = self._redact(str(data.get("message", "")))
            if _TOO_BIG.search(message):
                raise MatomoPageTooBigError(f"{where} ran out of memory or time: {message}", status)
            if _AUTH.search(message):
                raise MatomoAuthError(f"{where}: {message} Check the token and its access to the site.", status)
            raise MatomoApiError(f"{where}: {message}", status)
        return data

    def get_site(self, site_id: int) -> dict:
        """The site's settings (``timezone``, ``currency``, ``main_url``...) from ``SitesManager.getSiteFromId``."""
        site = self.call("SitesManager.getSiteFromId", idSite=site_id)
        if not isinstance(site, dict) or "timezone" not in site:
            raise MatomoApiError(f"Matomo has no site {site_id} (SitesManager.getSiteFromId gave {site!r:.200})")
        return site

    def visits_summary(self, site_id: int, day: date) -> dict:
        """``nb_visits`` and ``nb_actions`` of a site-local day from ``VisitsSummary.get`` (zeros when unarchived)."""
        summary = self.call("VisitsSummary.get", idSite=site_id, period="day", date=day.isoformat())
        if not isinstance(summary, dict):
            summary = {}
        return {key: integer(summary.get(key)) or 0 for key in ("nb_visits", "nb_actions")}

    def iter_day_pages(
        self, site_id: int, day: date, page_size: int = 1000, min_page_size: int = 10
    ) -> Iterator[list[dict]]:
        """Yield the day's visits page by page, oldest first, each visit once (by ``idVisit``).

        Pages only within ``period=day``: Matomo miscounts offsets across multi-day periods. A page that runs
        Matomo out of memory or time is asked again at the same offset with half the size, down to
        ``min_page_size``.
        """
        seen: set[str] = set()
        offset, limit, page_number, total = 0, page_size, 0, 0
        while True:
            try:
                page = self.call("Live.getLastVisitsDetails", **live_params(site_id, day, limit, offset))
            except MatomoPageTooBigError:
                if limit <= min_page_size:
                    raise
                smaller = max(min_page_size, limit // 2)
                self.log.warning(
                    "Matomo could not answer %d visits at offset %d; asking for %d at a time", limit, offset, smaller
                )
                limit = smaller
                continue
            if not isinstance(page, list):
                raise MatomoApiError(
                    f"Matomo Live.getLastVisitsDetails for site {site_id} on {day} gave {type(page).__name__}, "
                    "not a list of visits"
                )
            page_number += 1
            fresh = new_visits(page, seen)
            total += len(fresh)
            self.log.info(
                "site %s %s: page %d (offset %d, limit %d) had %d visits, %d new; %d so far",
                site_id, day, page_number, offset, limit, len(page), len(fresh), total,
            )
            if fresh:
                yield fresh
            if len(page) < limit:
                return
            offset += rows_before_last_tie(page) or len(page)
