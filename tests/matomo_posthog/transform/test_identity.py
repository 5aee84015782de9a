import subprocess
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

from matomo_posthog.transform import SiteContext, transform_visit
from matomo_posthog.transform.identity import distinct_ids, event_uuid, session_id

SITE = SiteContext(site_id=1, timezone="UTC")
PLUGINS = Path(__file__).resolve().parents[3] / "plugins"


def visit(**fields):
    return {
        "idSite": 1,
        "idVisit": 7,
        "firstActionTimestamp": 1700000000,
        "lastActionTimestamp": 1700000100,
        "actionDetails": [
            {"type": "action", "url": "https://example.org/", "timestamp": 1700000000, "timeSpent": 100},
            {"type": "download", "url": "https://example.org/a.pdf", "timestamp": 1700000100},
        ],
        **fields,
    }


def test_event_uuids_are_the_same_on_every_run_and_differ_between_events():
    first = transform_visit(visit(), SITE).events
    second = transform_visit(visit(), SITE).events
    assert [e["uuid"] for e in first] == [e["uuid"] for e in second]
    assert len({e["uuid"] for e in first}) == len(first) == 3  # pageview, pageleave, download


def test_event_uuids_do_not_depend_on_the_process():
    # A different interpreter (other hash seed) computes the same uuid.
    code = "from matomo_posthog.transform.identity import event_uuid; print(event_uuid(1, 7, 0, 'action'))"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(PLUGINS), "PYTHONHASHSEED": "123"},
    ).stdout.strip()
    assert output == event_uuid(1, 7, 0, "action")


def test_event_uuids_depend_on_site_visit_position_and_kind():
    reference = event_uuid(1, 7, 0, "action")
    assert uuid.UUID(reference).version == 5
    assert len({reference, event_uuid(2, 7, 0, "action"), event_uuid(1, 8, 0, "action"),
                event_uuid(1, 7, 1, "action"), event_uuid(1, 7, 0, "pageleave")}) == 5


def test_numbers_as_strings_give_the_same_uuids():
    as_strings = visit(idVisit="7", idSite="1")
    assert [e["uuid"] for e in transform_visit(as_strings, SITE).events] == [
        e["uuid"] for e in transform_visit(visit(), SITE).events
    ]


def test_session_id_is_a_uuid7_starting_at_the_first_action():
    result = transform_visit(visit(), SITE)
    session = uuid.UUID(result.events[0]["properties"]["$session_id"])

    assert session.version == 7
    assert session.variant == uuid.RFC_4122
    milliseconds = session.int >> 80
    first_event = min(datetime.fromisoformat(e["timestamp"]) for e in result.events)
    assert milliseconds == 1700000000 * 1000
    assert milliseconds <= first_event.timestamp() * 1000
    assert {e["properties"]["$session_id"] for e in result.events} == {str(session)}


def test_session_ids_differ_between_visits_and_repeat_for_the_same_visit():
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert session_id(1, 7, start) == session_id(1, 7, start)
    assert session_id(1, 7, start) != session_id(1, 8, start)
    assert session_id(1, 7, start) != session_id(2, 7, start)


def test_user_id_wins_and_the_visitor_id_is_merged_with_identify():
    result = transform_visit(visit(userId="ada@example.org", visitorId="a13b7c5a62f72dea"), SITE)

    assert {e["distinct_id"] for e in result.events} == {"ada@example.org"}
    identify = [e for e in result.events if e["event"] == "$identify"]
    assert len(identify) == 1
    assert identify[0]["properties"]["$anon_distinct_id"] == "a13b7c5a62f72dea"
    assert identify[0]["timestamp"] == result.events[0]["timestamp"] == "2023-11-14T22:13:20.000000+00:00"
    assert result.events[0] is identify[0]
    assert result.extra_events == {"$identify": 1, "$pageleave": 1}


def test_visitor_id_alone_is_the_distinct_id_and_nothing_is_merged():
    assert distinct_ids({"visitorId": "a13b7c5a62f72dea", "userId": None}, 1, 7) == ("a13b7c5a62f72dea", None)
    assert distinct_ids({"visitorId": "a13b7c5a62f72dea", "userId": "  "}, 1, 7) == ("a13b7c5a62f72dea", None)


def test_visits_without_ids_get_one_id_per_visit():
    assert distinct_ids({"visitorId": False}, 3, 68536) == ("matomo-visit-3-68536", None)


def test_user_id_alone_is_the_distinct_id():
    assert distinct_ids({"userId": 12345}, 1, 7) == ("12345", None)


def test_distinct_ids_longer_than_posthog_keeps_are_hashed():
    long_id = "x" * 300
    distinct_id, _ = distinct_ids({"userId": long_id}, 1, 7)
    assert len(distinct_id) <= 200
    assert distinct_id != distinct_ids({"userId": long_id + "y"}, 1, 7)[0]
