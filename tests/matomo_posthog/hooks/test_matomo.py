"""MatomoHook over real HTTP against the Matomo emulator; retries never really sleep."""

import logging
from datetime import date

import pytest

from matomo_posthog.emulators.generator import generate_visits
from matomo_posthog.emulators.matomo import MatomoEmulator, Site
from matomo_posthog.hooks.matomo import (
    MatomoApiError,
    MatomoAuthError,
    MatomoHook,
    MatomoPageTooBigError,
    new_visits,
    rows_before_last_tie,
)

TOKEN = "matomo-test-token-7a1f3c9e5b2d"
DAY = date(2024, 3, 31)


@pytest.fixture
def matomo(connection):
    emulator = MatomoEmulator.from_generator(1, "Europe/Berlin", DAY, date(2024, 4, 1), 30, seed=3, token=TOKEN)
    with emulator:
        connection("matomo_default", emulator.url, TOKEN)
        yield emulator


def hook(fake_time, **options):
    options.setdefault("timeout", 5)
    return MatomoHook(sleep=fake_time.sleep, clock=fake_time.clock, backoff_base=1, backoff_cap=60, **options)


def log_text(caplog, capfd):
    """Everything logged: Airflow routes hook loggers through its own handlers to the console."""
    out, err = capfd.readouterr()
    return caplog.text + out + err


def all_visits(h, **options):
    return [visit for page in h.iter_day_pages(1, DAY, **options) for visit in page]


def test_token_travels_only_in_the_post_body_with_api_names_in_the_query(matomo, fake_time):
    hook(fake_time).get_site(1)
    (request,) = matomo.requests
    assert request["http_method"] == "POST"
    assert request["token_in_post"] and not request["token_in_query"]
    assert request["query"]["module"] == "API" and request["query"]["format"] == "JSON"
    assert request["query"]["method"] == "SitesManager.getSiteFromId"
    assert request["post"]["language"] == "en" and request["post"]["idSite"] == "1"


def test_day_is_paged_oldest_first_in_period_day_until_a_short_page(matomo, fake_time):
    visits = all_visits(hook(fake_time), page_size=7)
    lives = [r for r in matomo.requests if r["method"] == "Live.getLastVisitsDetails"]
    # Each page after the first starts again at the previous page's last visit (its run of equal end times).
    assert [r["post"]["filter_offset"] for r in lives] == [str(6 * n) for n in range(len(lives))]
    assert {(r["post"]["period"], r["post"]["date"], r["post"]["filter_sort_order"]) for r in lives} == {
        ("day", "2024-03-31", "asc")
    }
    times = [v["lastActionTimestamp"] for v in visits]
    assert times == sorted(times) and len(visits) >= 30


def test_overlapping_pages_give_each_visit_once(connection, fake_time):
    emulator = MatomoEmulator.from_generator(1, "UTC", DAY, DAY, 40, seed=5, token=TOKEN, unstable_ties=True)
    with emulator:
        connection("matomo_default", emulator.url, TOKEN)
        visits = all_visits(hook(fake_time), page_size=3)
    ids = [v["idVisit"] for v in visits]
    assert len(ids) == len(set(ids))


def test_page_that_runs_matomo_out_of_memory_is_asked_again_at_half_size(connection, fake_time, caplog, capfd):
    caplog.set_level(logging.WARNING)
    emulator = MatomoEmulator.from_generator(1, "Europe/Berlin", DAY, DAY, 30, seed=3, token=TOKEN, max_page_size=8)
    with emulator:
        connection("matomo_default", emulator.url, TOKEN)
        visits = all_visits(hook(fake_time), page_size=32, min_page_size=2)
        limits = [int(r["post"]["filter_limit"]) for r in emulator.requests]
    assert limits[:3] == [32, 16, 8] and set(limits[2:]) == {8}
    assert len({v["idVisit"] for v in visits}) == len(visits) >= 30
    assert "could not answer 32 visits at offset 0; asking for 16 at a time" in log_text(caplog, capfd)


def test_page_too_big_even_at_the_floor_fails(connection, fake_time):
    emulator = MatomoEmulator.from_generator(1, "UTC", DAY, DAY, 30, seed=3, token=TOKEN, max_page_size=2)
    with emulator:
        connection("matomo_default", emulator.url, TOKEN)
        with pytest.raises(MatomoPageTooBigError, match="out of memory"):
            all_visits(hook(fake_time), page_size=16, min_page_size=4)


def test_could_not_run_in_time_error_body_also_halves_the_page(matomo, fake_time):
    matomo.add_fault(error="Could not run the query in time. Please try a smaller date range.")
    all_visits(hook(fake_time), page_size=20)
    assert [r["post"]["filter_limit"] for r in matomo.requests[:2]] == ["20", "10"]


def test_error_with_http_200_raises_with_matomos_message(matomo, fake_time):
    matomo.add_fault(error="Mysql error: table is marked as crashed")
    with pytest.raises(MatomoApiError, match="table is marked as crashed"):
        hook(fake_time).visits_summary(1, DAY)


def test_wrong_token_fails_at_once_naming_the_connection(matomo, fake_time, connection):
    connection("matomo_eu", matomo.url, "not-the-right-token-12345")
    with pytest.raises(MatomoAuthError, match="'matomo_eu'.*Check the token"):
        hook(fake_time, matomo_conn_id="matomo_eu").get_site(1)
    assert len(matomo.requests) == 1 and fake_time.sleeps == []


@pytest.mark.parametrize("status", [401, 403])
def test_auth_status_is_not_retried(matomo, fake_time, status):
    matomo.add_fault(status=status)
    with pytest.raises(MatomoAuthError):
        hook(fake_time).get_site(1)
    assert len(matomo.requests) == 1


def test_rate_limit_waits_at_least_retry_after_then_succeeds(matomo, fake_time):
    matomo.add_fault(status=429, retry_after=45)
    assert hook(fake_time).get_site(1)["timezone"] == "Europe/Berlin"
    assert fake_time.sleeps[0] >= 45 and len(matomo.requests) == 2


@pytest.mark.parametrize("fault", [{"status": 500}, {"status": 503}, {"drop": True}])
def test_server_and_network_errors_are_retried(matomo, fake_time, fault):
    matomo.add_fault(times=2, **fault)
    assert hook(fake_time).get_site(1)["timezone"] == "Europe/Berlin"
    assert len(fake_time.sleeps) == 2


def test_backoff_grows_and_retries_are_bounded_with_a_message_of_what_was_tried(matomo, fake_time):
    matomo.add_fault(status=503, times=10)
    with pytest.raises(MatomoApiError, match=r"failed 4 times on connection 'matomo_default': HTTP 503, HTTP 503"):
        hook(fake_time, max_attempts=4).get_site(1)
    assert len(fake_time.sleeps) == 3


def test_slow_answer_past_the_timeout_is_retried(matomo, fake_time):
    matomo.add_fault(delay=1.0)
    site = hook(fake_time, timeout=0.2).get_site(1)
    assert site["timezone"] == "Europe/Berlin"


def test_html_answer_gives_a_short_clear_error(matomo, fake_time):
    matomo.add_fault(html=True)
    with pytest.raises(MatomoApiError, match="not JSON .is the host the Matomo URL") as caught:
        hook(fake_time).get_site(1)
    assert len(str(caught.value)) < 400


def test_requests_are_spaced_by_the_minimum_interval(matomo, fake_time):
    h = hook(fake_time, min_request_interval=0.5)
    h.get_site(1)
    h.get_site(1)
    h.get_site(1)
    assert fake_time.sleeps == [pytest.approx(0.5), pytest.approx(0.5)]


def test_unknown_site_is_a_clear_error(matomo, fake_time):
    with pytest.raises(MatomoApiError, match="website id"):
        hook(fake_time).get_site(99)


def test_token_appears_in_no_log_line_or_error_of_a_troubled_extract(matomo, fake_time, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    matomo.add_fault(status=503, retry_after=1)
    matomo.add_fault(drop=True)
    matomo.add_fault(error=f"echoing your token_auth {TOKEN} back")
    errors = []
    h = hook(fake_time, max_attempts=3)
    for call in (lambda: h.get_site(1), lambda: h.get_site(1), lambda: all_visits(h, page_size=5)):
        try:
            call()
        except MatomoApiError as exc:
            errors.append(str(exc))
    logged = log_text(caplog, capfd)
    assert errors, "the error body should have failed a call"
    assert "retrying" in logged and "page 1" in logged, "the log should hold the retries and pages"
    assert TOKEN not in logged and all(TOKEN not in e for e in errors)


def test_new_visits_drops_repeats_by_id_in_either_number_form():
    seen = set()
    assert new_visits([{"idVisit": 1}, {"idVisit": 2}], seen) == [{"idVisit": 1}, {"idVisit": 2}]
    assert new_visits([{"idVisit": "2"}, {"idVisit": 3}], seen) == [{"idVisit": 3}]


def test_visits_ending_in_the_same_second_across_a_page_boundary_are_all_fetched(connection, fake_time):
    visits = generate_visits(1, "UTC", DAY, DAY, 30, seed=8)
    for index, visit in enumerate(visits):
        # Runs of three visits that ended in the same second, as busy sites have.
        visit["lastActionTimestamp"] = visits[index - index % 3]["lastActionTimestamp"]
    emulator = MatomoEmulator(TOKEN, {1: Site(timezone="UTC", visits=visits)}, unstable_ties=True)
    with emulator:
        connection("matomo_default", emulator.url, TOKEN)
        fetched = all_visits(hook(fake_time), page_size=5)
    assert sorted(v["idVisit"] for v in fetched) == sorted(v["idVisit"] for v in visits)


@pytest.mark.parametrize("times, before", [
    ([1, 2, 3, 3], 2), ([1, 2, 3, 4], 3), ([5, 5, 5], 0), ([None, None], 2),
])
def test_rows_before_last_tie(times, before):
    assert rows_before_last_tie([{"lastActionTimestamp": t} for t in times]) == before
