"""Shared test data: Matomo's own outputs in ../shared/fixtures/matomo, beside the repository."""

import json
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "matomo"
FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))

# The site timezone each fixture was recorded with (Matomo's system tests use UTC except the UTC+14 one).
FIXTURE_TIMEZONES = {"test_utcPlus__Live.getVisitorProfile.json": "UTC+14"}


def pytest_generate_tests(metafunc):
    # Any test taking `fixture_file` runs once per Matomo fixture file.
    if "fixture_file" in metafunc.fixturenames:
        metafunc.parametrize("fixture_file", FIXTURE_FILES, ids=[path.stem[:60] for path in FIXTURE_FILES])


@pytest.fixture(scope="session")
def fixture_files():
    """The Matomo fixture files."""
    return FIXTURE_FILES


@pytest.fixture(scope="session")
def load_fixture():
    """Read a fixture file (by path or by name) as the list of visits Matomo returned."""

    def load(name):
        path = name if isinstance(name, Path) else FIXTURES / name
        return json.loads(path.read_text(encoding="utf-8"))

    return load


@pytest.fixture(scope="session")
def fixture_site():
    """The site a fixture file's visits come from (its idSite, its timezone, USD as in Matomo's tests)."""
    from matomo_posthog.transform import SiteContext

    def site(name, visits):
        site_id = next((v["idSite"] for v in visits if v.get("idSite")), 1)
        return SiteContext(site_id=site_id, timezone=FIXTURE_TIMEZONES.get(Path(name).name, "UTC"), currency="USD")

    return site


def _capture_check():
    # The PostHog emulator's check is what the load step will face; fall back to the same rules written here.
    try:
        from matomo_posthog.emulators.posthog import validate_event
    except ImportError:
        return None
    return validate_event


_EMULATOR_CHECK = _capture_check()


def event_problem(event):
    """Why PostHog capture would refuse this event, or None; also the transform's own promises."""
    import math
    import uuid as uuidlib
    from datetime import datetime

    if _EMULATOR_CHECK is not None:
        problem = _EMULATOR_CHECK(event)
        if problem:
            return problem
    if set(event) != {"uuid", "event", "distinct_id", "timestamp", "properties"}:
        return f"unexpected keys {sorted(event)}"
    if not isinstance(event["event"], str) or not event["event"].strip() or len(event["event"]) > 200:
        return "event name empty or too long"
    if not isinstance(event["distinct_id"], str) or not event["distinct_id"] or len(event["distinct_id"]) > 200:
        return "distinct_id empty or too long"
    try:
        uuidlib.UUID(event["uuid"])
        stamp = datetime.fromisoformat(event["timestamp"])
    except (TypeError, ValueError) as exc:
        return f"uuid or timestamp unparseable: {exc}"
    if stamp.utcoffset() is None or stamp.utcoffset().total_seconds() != 0:
        return "timestamp not in UTC"
    if not isinstance(event["properties"], dict):
        return "properties not an object"
    try:
        json.dumps(event, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        return f"not JSON-serialisable: {exc}"
    session = uuidlib.UUID(event["properties"]["$session_id"])
    if session.version != 7 or (session.int >> 80) > stamp.timestamp() * 1000 or math.isnan(stamp.timestamp()):
        return "$session_id not a UUIDv7 starting at or before the event"
    return None


@pytest.fixture(scope="session")
def check_event():
    """A function returning why an event would be refused, or None."""
    return event_problem
