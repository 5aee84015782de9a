"""The Matomo emulator over real HTTP: Matomo's windows, paging, auth rules, errors and injected faults."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from matomo_posthog.emulators.generator import local_midnight_utc
from matomo_posthog.emulators.matomo import MatomoEmulator, Site
from matomo_posthog.emulators.matomo_cli import register
from matomo_posthog.timezones import parse_timezone

TOKEN = "emulator-test-token-4f2a"
BERLIN = parse_timezone("Europe/Berlin")
NEW_YEAR_2025 = datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp()
PLUGINS = Path(__file__).resolve().parents[3] / "plugins"


def call(emulator: MatomoEmulator, method: str, *, token: str | None = TOKEN, query: dict | None = None,
         session: requests.Session | None = None, timeout: float = 5, **params) -> requests.Response:
    """POST like a careful client: module/method/format in the URL, everything else and the token in the body."""
    body = {**params, **({"token_auth": token} if token is not None else {})}
    url_params = {"module": "API", "method": method, "format": "JSON", **(query or {})}
    return (session or requests).post(emulator.url + "index.php", params=url_params, data=body, timeout=timeout)


def ids(response: requests.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [visit["idVisit"] for visit in response.json()]


@pytest.fixture
def emulator():
    """Site 1 in Europe/Berlin, 20 visits a day from 2024-03-30 to 2024-04-01, one ending at each midnight."""
    with MatomoEmulator.from_generator(1, "Europe/Berlin", date(2024, 3, 30), date(2024, 4, 1), 20, 5, TOKEN,
                                       midnight_visits=True, clock=lambda: NEW_YEAR_2025) as running:
        yield running


def all_visits(emulator: MatomoEmulator) -> list[dict]:
    return call(emulator, "Live.getLastVisitsDetails", filter_limit=-1, idSite=1).json()


def local_day_bounds(day: date) -> tuple[int, int]:
    return local_midnight_utc(day, BERLIN), local_midnight_utc(day + timedelta(days=1), BERLIN)


# --- requests and authentication ---------------------------------------------------------------------------


def test_site_from_id_describes_the_site(emulator):
    site = call(emulator, "SitesManager.getSiteFromId", idSite=1).json()
    assert site["idsite"] == 1
    assert (site["timezone"], site["currency"], site["main_url"]) == ("Europe/Berlin", "EUR",
                                                                      "https://shop.example.com")


def test_custom_dimensions_describe_the_generated_dimension_fields(emulator):
    dimensions = call(emulator, "CustomDimensions.getConfiguredCustomDimensions", idSite=1).json()
    assert [(d["idcustomdimension"], d["scope"]) for d in dimensions] == [("1", "visit"), ("2", "visit"),
                                                                          ("3", "action")]
    visit = all_visits(emulator)[0]
    assert {"dimension1", "dimension2"} <= set(visit) and "dimension3" in visit["actionDetails"][0]


def test_unknown_site_is_an_access_error_with_http_200(emulator):
    response = call(emulator, "SitesManager.getSiteFromId", idSite=7)
    assert response.status_code == 200
    assert response.json() == {"result": "error", "message": "You can't access this resource as it requires "
                                                             "'view' access for the website id = 7."}


def test_token_in_query_string_is_rejected(emulator):
    response = call(emulator, "SitesManager.getSiteFromId", query={"token_auth": TOKEN}, idSite=1)
    assert response.status_code == 200
    assert response.json()["result"] == "error"
    assert "requires 'view' access for the website id = 1" in response.json()["message"]
    assert emulator.requests[-1]["token_in_query"] is True


def test_missing_or_wrong_token_is_an_access_error_with_http_200(emulator):
    for token in (None, "wrong-token", ""):
        response = call(emulator, "Live.getLastVisitsDetails", token=token, idSite=1, period="day",
                        date="2024-03-31")
        assert response.status_code == 200
        assert response.json()["result"] == "error"


def test_access_errors_can_answer_401():
    with MatomoEmulator(TOKEN, {1: Site()}, auth_error_status=401) as emulator:
        response = call(emulator, "SitesManager.getSiteFromId", token="wrong", idSite=1)
    assert response.status_code == 401
    assert response.json()["result"] == "error"


def test_format_json_only_in_post_body_gives_an_html_page(emulator):
    response = requests.post(emulator.url + "index.php?module=API&method=SitesManager.getSiteFromId",
                             data={"format": "JSON", "idSite": 1, "token_auth": TOKEN}, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        response.json()


def test_unknown_method_is_a_400_error(emulator):
    response = call(emulator, "Live.getEverything", idSite=1)
    assert response.status_code == 400
    assert response.json()["message"] == ("The method 'getEverything' does not exist or is not available in "
                                          "the module '\\Piwik\\Plugins\\Live\\API'.")


def test_query_string_parameters_win_over_the_post_body(emulator):
    day = ids(call(emulator, "Live.getLastVisitsDetails", query={"idSite": "1", "date": "2024-03-30"},
                   idSite=2, period="day", date="2024-03-31", filter_limit=-1))
    start, end = local_day_bounds(date(2024, 3, 30))
    assert sorted(day) == sorted(v["idVisit"] for v in all_visits(emulator)
                                 if start <= v["lastActionTimestamp"] <= end)


def test_one_site_per_request(emulator):
    for id_site in ("all", "1,2"):
        response = call(emulator, "Live.getLastVisitsDetails", idSite=id_site, period="day", date="2024-03-31")
        assert response.status_code == 200 and response.json()["result"] == "error"


def test_bad_period_and_date_are_matomo_errors(emulator):
    bad_period = call(emulator, "Live.getLastVisitsDetails", idSite=1, period="fortnight", date="2024-03-31")
    bad_date = call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="31/03/2024")
    assert bad_period.json()["message"].startswith("The period 'fortnight' is not supported.")
    assert bad_date.json()["message"].startswith("Date format must be: YYYY-MM-DD")


def test_request_log_records_what_was_sent_without_the_token(emulator):
    call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-31", filter_limit=10)
    logged = requests.get(emulator.url + "_emulator/requests", timeout=5)
    assert TOKEN not in logged.text
    entry = logged.json()[-1]
    assert entry["method"] == "Live.getLastVisitsDetails"
    assert entry["query"] == {"module": "API", "method": "Live.getLastVisitsDetails", "format": "JSON"}
    assert entry["post"] == {"idSite": "1", "period": "day", "date": "2024-03-31", "filter_limit": "10",
                             "token_auth": "***"}
    assert (entry["token_in_query"], entry["token_in_post"]) == (False, True)
    assert TOKEN not in repr(emulator) and TOKEN not in json.dumps(emulator.requests)


# --- Live.getLastVisitsDetails windows and paging ------------------------------------------------------------


def test_day_window_includes_next_midnight(emulator):
    visits = all_visits(emulator)
    midnight = local_midnight_utc(date(2024, 3, 31), BERLIN)
    at_midnight = [v["idVisit"] for v in visits if v["lastActionTimestamp"] == midnight]
    assert len(at_midnight) == 1
    saturday = ids(call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-30"))
    sunday = ids(call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-31"))
    assert at_midnight[0] in saturday and at_midnight[0] in sunday
    assert (len(saturday), len(sunday)) == (20, 21)


def test_day_window_is_the_site_local_day_on_a_dst_day(emulator):
    start, end = local_day_bounds(date(2024, 3, 31))
    assert end - start == 23 * 3600
    expected = {v["idVisit"] for v in all_visits(emulator) if start <= v["lastActionTimestamp"] <= end}
    got = ids(call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-31"))
    assert set(got) == expected


def test_default_order_is_newest_first_and_only_asc_is_recognised(emulator):
    for order in (None, "desc", "ascending"):
        params = {"filter_sort_order": order} if order else {}
        visits = call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-31",
                      **params).json()
        keys = [(v["lastActionTimestamp"], v["idVisit"]) for v in visits]
        assert keys == sorted(keys, reverse=True)
    visits = call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-31",
                  filter_sort_order="ASC").json()
    keys = [(v["lastActionTimestamp"], v["idVisit"]) for v in visits]
    assert keys == sorted(keys)


def test_asc_paging_covers_every_visit_once(emulator):
    seen: list[int] = []
    for offset in range(0, 40, 7):
        seen += ids(call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-31",
                         filter_sort_order="asc", filter_limit=7, filter_offset=offset))
    expected = ids(call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-31",
                        filter_sort_order="asc", filter_limit=-1))
    assert seen == expected and len(set(seen)) == 21


def test_filter_limit_defaults_to_100_and_minus_one_returns_all():
    with MatomoEmulator.from_generator(1, "UTC", date(2024, 1, 1), date(2024, 1, 1), 130, 1, TOKEN,
                                       clock=lambda: NEW_YEAR_2025) as emulator:
        default = call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-01-01")
        everything = call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-01-01",
                          filter_limit=-1)
    assert (len(default.json()), len(everything.json())) == (100, 130)


def test_min_timestamp_is_strict(emulator):
    visits = call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-31",
                  filter_sort_order="asc").json()
    pivot = visits[5]["lastActionTimestamp"]
    after = call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-31",
                 filter_sort_order="asc", minTimestamp=pivot).json()
    assert after == [v for v in visits if v["lastActionTimestamp"] > pivot]
    assert all(v["lastActionTimestamp"] > pivot for v in after) and len(after) == len(visits) - 6


def test_do_not_fetch_actions_empties_action_details_with_php_truthiness(emulator):
    def actions(flag):
        visits = call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-31",
                      doNotFetchActions=flag).json()
        return [len(v["actionDetails"]) for v in visits]

    assert all(count > 0 for count in actions("0"))
    assert all(count == 0 for count in actions("1"))
    assert all(count == 0 for count in actions("false"))  # a non-empty string other than "0" is true in PHP


def test_asking_for_the_current_day_returns_everything_since_yesterday():
    noon_april_first = datetime(2024, 4, 1, 10, tzinfo=timezone.utc).timestamp()
    with MatomoEmulator.from_generator(1, "Europe/Berlin", date(2024, 3, 30), date(2024, 4, 1), 20, 5, TOKEN,
                                       clock=lambda: noon_april_first) as emulator:
        visits = all_visits(emulator)
        since_yesterday = {v["idVisit"] for v in visits
                           if v["lastActionTimestamp"] >= local_midnight_utc(date(2024, 3, 31), BERLIN)}
        for day in ("2024-04-01", "today"):
            got = ids(call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date=day, filter_limit=-1))
            assert set(got) == since_yesterday


def test_yesterday_keyword_follows_the_clock(emulator):
    with MatomoEmulator.from_generator(1, "UTC", date(2024, 3, 30), date(2024, 4, 1), 5, 5, TOKEN,
                                       clock=lambda: datetime(2024, 4, 2, 8, tzinfo=timezone.utc).timestamp()) as utc:
        assert ids(call(utc, "Live.getLastVisitsDetails", idSite=1, period="day", date="yesterday")) == \
            ids(call(utc, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-04-01"))


def test_multi_day_period_paging_skips_visits_like_matomo(emulator):
    seen: set[int] = set()
    for offset in range(0, 70, 10):
        seen |= set(ids(call(emulator, "Live.getLastVisitsDetails", idSite=1, period="range",
                             date="2024-03-30,2024-04-01", filter_limit=10, filter_offset=offset)))
    everything = ids(call(emulator, "Live.getLastVisitsDetails", idSite=1, period="range",
                          date="2024-03-30,2024-04-01", filter_limit=-1))
    assert len(everything) == 60
    assert seen < set(everything)  # matomo-org/matomo#16394: later pages skip visits


def test_count_visitors_to_fetch_resets_the_offset(emulator):
    first = ids(call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-31",
                     filter_limit=5))
    again = ids(call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-31",
                     countVisitorsToFetch=5, filter_offset=5))
    assert again == first


def test_numbers_can_be_served_as_strings_like_php_before_8_1():
    with MatomoEmulator.from_generator(1, "UTC", date(2024, 6, 12), date(2024, 6, 12), 20, 1, TOKEN,
                                       numbers_as_strings=True, clock=lambda: NEW_YEAR_2025) as emulator:
        visits = call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-06-12").json()
        site = call(emulator, "SitesManager.getSiteFromId", idSite=1).json()
    assert site["idsite"] == "1"
    actions = [action for visit in visits for action in visit["actionDetails"]]
    assert all(isinstance(visit["idVisit"], str) and isinstance(visit["actions"], str) for visit in visits)
    assert all(isinstance(visit["lastActionTimestamp"], int) for visit in visits)
    assert "13" in {action["type"] for action in actions} and 13 not in {action["type"] for action in actions}
    assert all(isinstance(action["timestamp"], int) and isinstance(action.get("pageId", ""), str)
               for action in actions)


def test_actions_over_the_limit_are_truncated_and_counted():
    with MatomoEmulator.from_generator(1, "UTC", date(2024, 6, 12), date(2024, 6, 12), 20, 1, TOKEN,
                                       max_actions_per_visit=2, clock=lambda: NEW_YEAR_2025) as emulator:
        visits = all_visits(emulator)
    long_visits = [v for v in visits if "truncatedActionsCount" in v]
    assert long_visits and all(len(v["actionDetails"]) == 2 for v in long_visits)


def test_export_rows_are_served_in_the_site_timezone(tmp_path):
    # lastActionTimestamp values of the UTC+14 fixture (test_utcPlus__Live.getVisitorProfile): idVisit 5 ends
    # exactly at local midnight, so it belongs to both local days. A row without dates goes to undated_day.
    rows = [{"idSite": 1, "idVisit": 6, "lastActionTimestamp": 1264953600, "actionDetails": []},
            {"idSite": 1, "idVisit": 5, "lastActionTimestamp": 1264932000, "actionDetails": []},
            {"idSite": 1, "idVisit": 4, "lastActionTimestamp": 1264910400, "actionDetails": []},
            {"idSite": 1, "idVisit": 9, "actionDetails": [{"type": 13, "contentName": "ImageAd"}]}]
    export = tmp_path / "visits.json"
    export.write_text(json.dumps(rows))
    with MatomoEmulator.from_export(export, 1, "UTC+14", TOKEN, undated_day=date(2010, 3, 1),
                                    clock=lambda: NEW_YEAR_2025) as emulator:
        february = ids(call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2010-02-01"))
        january = ids(call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2010-01-31"))
        undated = call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2010-03-01").json()
    assert (february, january) == ([6, 5], [5, 4])
    assert undated == [rows[3]]


def test_unstable_ties_reorder_visits_that_ended_in_the_same_second():
    rows = [{"idVisit": number, "lastActionTimestamp": 1704110400, "actionDetails": []} for number in range(1, 13)]
    with MatomoEmulator(TOKEN, {1: Site(visits=rows)}, unstable_ties=True,
                        clock=lambda: NEW_YEAR_2025) as emulator:
        pages = [ids(call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-01-01",
                          filter_sort_order="asc", filter_limit=4, filter_offset=offset)) for offset in (0, 4, 8)]
    assert sum(pages, []) != list(range(1, 13))


# --- VisitsSummary.get ---------------------------------------------------------------------------------------


def test_visits_summary_counts_the_day_without_the_next_midnight(emulator):
    visits = all_visits(emulator)
    for day in (date(2024, 3, 30), date(2024, 3, 31)):
        start, end = local_day_bounds(day)
        in_day = [v for v in visits if start <= v["lastActionTimestamp"] < end]
        summary = call(emulator, "VisitsSummary.get", idSite=1, period="day", date=day.isoformat()).json()
        assert summary["nb_visits"] == len(in_day)
        assert summary["nb_actions"] == sum(v["actions"] for v in in_day)
        assert summary["bounce_rate"].endswith("%")
    live = call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-30").json()
    summary = call(emulator, "VisitsSummary.get", idSite=1, period="day", date="2024-03-30").json()
    assert summary["nb_visits"] == len(live) - 1  # the visit ending at midnight belongs to the next day


def test_visits_summary_of_an_empty_day_is_an_empty_list(emulator):
    assert call(emulator, "VisitsSummary.get", idSite=1, period="day", date="2023-01-01").json() == []


# --- faults --------------------------------------------------------------------------------------------------


def test_status_fault_is_consumed_by_one_request(emulator):
    emulator.add_fault(status=503, retry_after=7)
    failed = call(emulator, "SitesManager.getSiteFromId", idSite=1)
    assert (failed.status_code, failed.headers["Retry-After"]) == (503, "7")
    assert call(emulator, "SitesManager.getSiteFromId", idSite=1).status_code == 200


def test_fault_matches_only_its_method_and_repeats(emulator):
    emulator.add_fault(status=429, method="Live.getLastVisitsDetails", times=2, body="Too Many Requests")
    assert call(emulator, "SitesManager.getSiteFromId", idSite=1).status_code == 200
    for _ in range(2):
        response = call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-31")
        assert (response.status_code, response.text) == (429, "Too Many Requests")
    assert call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-31").status_code == 200


def test_error_fault_is_a_matomo_error_with_http_200(emulator):
    emulator.add_fault(error="Could not run the query in time")
    response = call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-31")
    assert response.status_code == 200
    assert response.json() == {"result": "error", "message": "Could not run the query in time"}


def test_html_fault_answers_200_with_a_page(emulator):
    emulator.add_fault(html=True)
    response = call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-31")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")


def test_drop_fault_closes_the_connection_without_an_answer(emulator):
    emulator.add_fault(drop=True)
    with pytest.raises(requests.ConnectionError):
        call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-31")
    assert call(emulator, "SitesManager.getSiteFromId", idSite=1).status_code == 200


def test_delay_fault_makes_a_client_time_out(emulator):
    emulator.add_fault(delay=0.3)
    with pytest.raises(requests.Timeout):
        call(emulator, "SitesManager.getSiteFromId", idSite=1, timeout=0.05)
    assert call(emulator, "SitesManager.getSiteFromId", idSite=1).status_code == 200


def test_max_page_size_answers_500_out_of_memory():
    with MatomoEmulator.from_generator(1, "UTC", date(2024, 1, 1), date(2024, 1, 1), 30, 1, TOKEN,
                                       max_page_size=25, clock=lambda: NEW_YEAR_2025) as emulator:
        too_big = call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-01-01",
                       filter_limit=26)
        everything = call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-01-01",
                          filter_limit=-1)
        small = call(emulator, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-01-01",
                     filter_limit=25)
    for response in (too_big, everything):
        assert response.status_code == 500
        assert "Allowed memory size of 134217728 bytes exhausted (tried to allocate 20480 bytes)" in response.text
    assert len(small.json()) == 25


def test_faults_and_reset_through_the_control_endpoints(emulator):
    queued = requests.post(emulator.url + "_emulator/faults", timeout=5,
                           json=[{"status": 500}, {"error": "boom", "method": "VisitsSummary.get"}])
    assert queued.json() == {"queued": 2}
    assert requests.post(emulator.url + "_emulator/faults", json={"status": 200}, timeout=5).status_code == 400
    assert call(emulator, "SitesManager.getSiteFromId", idSite=1).status_code == 500
    requests.post(emulator.url + "_emulator/reset", timeout=5)
    assert emulator.requests == []
    summary = call(emulator, "VisitsSummary.get", idSite=1, period="day", date="2024-03-31")
    assert summary.json()["nb_visits"] == 20


def test_stop_closes_the_socket_and_kept_alive_connections():
    emulator = MatomoEmulator(TOKEN, {1: Site()}).start()
    session = requests.Session()
    assert call(emulator, "SitesManager.getSiteFromId", idSite=1, session=session).status_code == 200
    url = emulator.url
    emulator.stop()
    with pytest.raises(requests.ConnectionError):
        session.post(url + "index.php?module=API&method=SitesManager.getSiteFromId&format=JSON",
                     data={"idSite": 1, "token_auth": TOKEN}, timeout=2)


# --- command line --------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emulate")
    register(parser.add_subparsers())
    return parser


def test_cli_refuses_a_non_loopback_host(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(["matomo", "--host", "0.0.0.0", "--token", "x"])
    assert exit_info.value.code == 2
    assert "loopback" in capsys.readouterr().err


def test_cli_needs_a_token(monkeypatch, capsys):
    monkeypatch.delenv("MATOMO_EMULATOR_TOKEN", raising=False)
    args = _parser().parse_args(["matomo"])
    assert args.func(args) == 2
    assert "MATOMO_EMULATOR_TOKEN" in capsys.readouterr().err


def test_cli_serves_until_sigterm_and_exits_zero():
    script = ("import argparse, sys\n"
              "from matomo_posthog.emulators.matomo_cli import register\n"
              "parser = argparse.ArgumentParser()\n"
              "register(parser.add_subparsers())\n"
              "args = parser.parse_args(sys.argv[1:])\n"
              "sys.exit(args.func(args))\n")
    env = {**os.environ, "PYTHONPATH": str(PLUGINS), "MATOMO_EMULATOR_TOKEN": TOKEN}
    process = subprocess.Popen([sys.executable, "-c", script, "matomo", "--timezone", "UTC+14", "--start",
                                "2024-01-01", "--end", "2024-01-02", "--visits-per-day", "3"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()
        assert line.startswith("matomo emulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1].strip()
        response = requests.post(url + "index.php?module=API&method=Live.getLastVisitsDetails&format=JSON",
                                 data={"idSite": 1, "period": "day", "date": "2024-01-02", "token_auth": TOKEN},
                                 timeout=5)
        assert len(response.json()) == 3
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        output, errors = process.communicate()
        assert output == "" and TOKEN not in errors
    finally:
        process.kill()
