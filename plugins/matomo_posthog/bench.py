"""``make bench``: this package against PostHog's documented Matomo script, and its own costs, measured.

Everything runs on 127.0.0.1 against the bundled emulators, in three sections:

1. **Same export, documented script vs this package.** A generated week of a non-UTC site is written as the JSON
   array the documented script reads. The script (``../shared/baseline/documented_script.py``, unchanged) and
   this package's transform and loader each send it twice, as a user retrying would, to their own PostHog
   emulator. What PostHog then holds is judged against the visits' true UTC times, computed here from the site
   timezone and each visit's UTC bounds rather than taken from either migrator.
2. **Extract memory.** ``steps.extract_day`` over a day of N and of 10 N visits, each in a fresh process (the
   emulator, which holds every visit, runs in a process of its own), reporting the extract's peak memory.
3. **Transform throughput** of ``transform_visits`` over the generated export.

The report is printed as plain-text tables and written as JSON (``include/data/bench/bench.json`` by default).
Performance claims belong here, measured, rather than in timed tests.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
import uuid
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, Callable, Iterator

from matomo_posthog.emulators.generator import generate_visits
from matomo_posthog.emulators.matomo_cli import TOKEN_ENV as MATOMO_TOKEN_ENV
from matomo_posthog.emulators.posthog_cli import API_KEY_ENV as POSTHOG_KEY_ENV
from matomo_posthog.load import DayLoader
from matomo_posthog.steps import extract_day, format_table, transform_day
from matomo_posthog.storage import DayFiles, day_files, write_ndjson_gz
from matomo_posthog.timezones import local_wall_epoch, parse_timezone
from matomo_posthog.transform import DEFAULT_MAPPING, SiteContext, TransformStats, transform_visits
from matomo_posthog.transform.names import EXTRA_EVENTS

ROOT = Path(__file__).resolve().parents[2]
BASELINE_SCRIPT = ROOT.parent / "shared" / "baseline" / "documented_script.py"
DEFAULT_OUTPUT = ROOT / "include" / "data" / "bench" / "bench.json"
AIRFLOW_HOME = ROOT / ".airflow" / "bench"

SITE_ID = 1
# Berlin moves to summer time on 2024-03-31: the week has both UTC+1 and UTC+2 days.
TIMEZONE = "Europe/Berlin"
START = date(2024, 3, 25)
MEMORY_DAY = date(2024, 3, 27)
SEED = 11
PAGE_SIZE = 1000
MIN_PAGE_SIZE = 10
TRANSFORM_PASSES = 3

# The literal project key in the documented script: its emulator must accept exactly that.
BASELINE_KEY = "<ph_project_api_key>"
PROJECT_KEY = "phc_bench_project_key_3f9a1c7e52"
MATOMO_TOKEN = "bench-matomo-token-6b2d8e4f19"
# The loader's default rate, PostHog's example of an agreed import rate.
DEFAULT_EVENTS_PER_MINUTE = 10_000
# High enough that the loader's pacing never waits: the bench measures the work, not the agreed rate.
UNPACED_EVENTS_PER_MINUTE = 10_000_000

# Events this package adds that are not one Matomo action each ($pageleave, $identify, Product Viewed...).
EXTRA_EVENT_NAMES = frozenset(EXTRA_EVENTS.values())
# posthog-js's $os names for the generator's operating systems, so that a faithful rename counts as the visit's OS.
POSTHOG_JS_OS = {"Mac": "Mac OS X", "Ubuntu": "Linux", "iPadOS": "iOS"}
SESSION_SPAN_MS = 24 * 3600 * 1000
STDERR_TAIL_LINES = 3

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sizes:
    """How much data each section uses; the large extract day has ten times ``extract_visits``."""

    days: int
    visits_per_day: int
    extract_visits: int


FULL = Sizes(days=7, visits_per_day=300, extract_visits=5_000)
QUICK = Sizes(days=2, visits_per_day=40, extract_visits=500)


# --- the truth the stored events are judged against ---------------------------------------------------------------


def person(visit: dict) -> str:
    """The distinct_id both migrators give a visit's events: its userId, else its visitorId."""
    return str(visit.get("userId") or visit.get("visitorId"))


def true_utc(wall: int, tz: tzinfo, first: int, last: int) -> int:
    """The UTC second of a Matomo action ``timestamp`` (site wall clock encoded as epoch seconds).

    When clocks fall back a wall time has two readings: the one nearer the visit's real UTC bounds is taken.
    """
    naive = datetime(1970, 1, 1) + timedelta(seconds=wall)
    readings = {int(naive.replace(tzinfo=tz, fold=fold).timestamp()) for fold in (0, 1)}
    return min(readings, key=lambda moment: max(first - moment, moment - last, 0))


@dataclass
class Truth:
    """Every instant a correct migrator could stamp on a visit's events, and the instants the timezone bug gives.

    Keys are ``(distinct_id, epoch second)``; values the visit. ``on_time`` holds each action's true UTC time
    and the visit's first and last action times (a $pageleave can end a visit); ``shifted`` holds each action's
    site-local wall clock read as UTC, which is what ``datetime.utcfromtimestamp(action["timestamp"])`` gives.
    """

    on_time: dict[tuple[str, int], dict]
    shifted: dict[tuple[str, int], dict]


def build_truth(visits: list[dict], timezone_name: str) -> Truth:
    """Index the visits' true and shifted instants (see :class:`Truth`)."""
    tz = parse_timezone(timezone_name)
    on_time: dict[tuple[str, int], dict] = {}
    shifted: dict[tuple[str, int], dict] = {}
    for visit in visits:
        who, first, last = person(visit), int(visit["firstActionTimestamp"]), int(visit["lastActionTimestamp"])
        on_time[who, first] = on_time[who, last] = visit
        for action in visit["actionDetails"]:
            wall = int(action["timestamp"])
            moment = true_utc(wall, tz, first, last)
            if local_wall_epoch(moment, tz) != wall:
                raise ValueError(f"visit {visit['idVisit']}: action time {wall} does not read back in {timezone_name}")
            on_time[who, moment] = visit
            shifted[who, wall] = visit
    # An instant that is true for one action and shifted for another says nothing about the offset bug.
    return Truth(on_time, {key: visit for key, visit in shifted.items() if key not in on_time})


def export_counts(visits: list[dict]) -> dict:
    """Visits, actions and goals of an export; ``actions_to_send`` excludes goals, which both migrators skip."""
    actions = sum(len(visit["actionDetails"]) for visit in visits)
    goals = sum(1 for visit in visits for action in visit["actionDetails"] if action.get("type") == "goal")
    return {"visits": len(visits), "actions": actions, "goals": goals, "actions_to_send": actions - goals}


# --- judging what PostHog holds -------------------------------------------------------------------------------------


def _moment(stored: str) -> datetime:
    return datetime.strptime(stored, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def _visit_os_names(visit: dict) -> set[str]:
    name = visit.get("operatingSystemName")
    return {name, POSTHOG_JS_OS.get(name, name)}


def session_id_fits(value: Any, first_ms: int, last_ms: int) -> bool:
    """True for a UUIDv7 whose time is at or before the session's first event and within 24 h of its last."""
    try:
        parsed = uuid.UUID(str(value))
    except ValueError:
        return False
    if parsed.variant != uuid.RFC_4122 or parsed.version != 7:
        return False
    started = parsed.int >> 80
    return started <= first_ms and last_ms - started <= SESSION_SPAN_MS


def events_in_valid_sessions(events: list[dict]) -> int:
    """Events whose ``$session_id`` PostHog would use to build sessions (see :func:`session_id_fits`)."""
    sessions: dict[Any, list[int]] = defaultdict(list)
    for event in events:
        sessions[event["properties"].get("$session_id")].append(int(_moment(event["timestamp"]).timestamp() * 1000))
    return sum(len(times) for key, times in sessions.items() if session_id_fits(key, min(times), max(times)))


def judge(events: list[dict], truth: Truth) -> dict:
    """Count what is right and wrong in the deduplicated events PostHog holds for one export."""
    tally: Counter[str] = Counter()
    os_values: Counter[str] = Counter()
    for event in events:
        key = (event["distinct_id"], round(_moment(event["timestamp"]).timestamp()))
        visit = truth.on_time.get(key)
        if visit is None:
            tally["timestamps_off"] += 1
            visit = truth.shifted.get(key)
            tally["timestamps_off_by_utc_offset"] += visit is not None
        properties = event["properties"]
        tally["pageleave_events"] += event["event"] == "$pageleave"
        tally["referring_domain_present"] += bool(properties.get("$referring_domain"))
        tally["os_is_visit_os"] += visit is not None and properties.get("$os") in _visit_os_names(visit)
        os_values[str(properties.get("$os"))] += 1
        tally["action_events"] += event["event"] not in EXTRA_EVENT_NAMES
    held = len(events)
    return {
        "distinct_events": held,
        "timestamps_off": tally["timestamps_off"],
        "timestamps_off_by_utc_offset": tally["timestamps_off_by_utc_offset"],
        "valid_session_id_events": events_in_valid_sessions(events),
        "pageleave_events": tally["pageleave_events"],
        "referring_domain_present": tally["referring_domain_present"],
        "os_is_visit_os": tally["os_is_visit_os"],
        "os_not_visit_os": held - tally["os_is_visit_os"],
        "os_values": dict(os_values.most_common()),
        "action_events": tally["action_events"],
    }


def actions_lost(run: dict, counts: dict) -> int:
    """Actions of the input (goals aside) that no event accepted in this run stands for."""
    return max(counts["actions_to_send"] - (run["events_accepted"] - run["extra_events"]), 0)


# --- emulators, each in its own process -----------------------------------------------------------------------------


@contextmanager
def emulator_process(kind: str, args: list[str], secret_env: dict[str, str]) -> Iterator[str]:
    """Run ``matomo-posthog emulate <kind> ...`` in its own process and yield its URL; stop it on the way out.

    The secret goes in through the environment so that it never shows in a process list.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "matomo_posthog.cli", "emulate", kind, "--port", "0", *args],
        env={**os.environ, **secret_env}, stdout=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"the {kind} emulator did not start (exit status {process.poll()})")
        yield line.rsplit(" ", 1)[-1].strip().rstrip("/")
    finally:
        process.terminate()
        process.wait(timeout=30)


class RemotePostHog:
    """Reads a PostHog emulator running in another process through its ``/_emulator/`` endpoints."""

    def __init__(self, url: str):
        self.url = url

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}/_emulator/{path}", timeout=120) as response:
            return json.load(response)

    def totals(self) -> dict:
        """Deliveries and deduplicated events the emulator holds."""
        summary = self._get("summary")
        return {"deliveries": summary["deliveries"], "distinct_events": summary["events"]}

    def events(self) -> list[dict]:
        """The deduplicated events, as PostHog would store them."""
        return self._get("events")


@contextmanager
def posthog_emulator(api_key: str) -> Iterator[RemotePostHog]:
    """A fresh PostHog emulator in its own process, so that neither migrator shares a process with it."""
    with emulator_process("posthog", [], {POSTHOG_KEY_ENV: api_key}) as url:
        yield RemotePostHog(url)


# --- the documented script ------------------------------------------------------------------------------------------


def script_parses(visit: dict) -> bool:
    """Whether the documented script's ``float()``/``int()`` conversions succeed on the visit's fields.

    It calls ``float()`` on browserVersion, latitude and longitude and ``int()`` on both halves of resolution
    (skipping empty values); ``"120.0.6099.144"`` or ``"unknown"`` raise and end the whole run.
    """
    try:
        for key in ("browserVersion", "latitude", "longitude"):
            if visit.get(key) not in ("", None):
                float(visit[key])
        resolution = visit.get("resolution")
        if resolution not in ("", None):
            width, height = resolution.split("x")[:2]
            int(width), int(height)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def script_names_are_text(visit: dict) -> bool:
    """Whether every event the script makes of the visit has a text name.

    The script names an event by the action ``type``; content actions have the number ``13`` as type, PostHog
    refuses a non-text event name, and one refused event fails its whole batch of 100.
    """
    for action in visit["actionDetails"]:
        kind = action.get("type")
        name = action.get("eventAction") if kind == "event" else kind
        if kind != "goal" and not (isinstance(name, str) and name):
            return False
    return True


def _script_attempt(export: Path, posthog: RemotePostHog) -> dict:
    before = posthog.totals()["deliveries"]
    env = {**os.environ, "SEED_INPUT": str(export), "SEED_HOST": posthog.url, "SEED_DEBUG": "0"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(BASELINE_SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=600)
    seconds = time.perf_counter() - started
    stderr = done.stderr.replace(BASELINE_KEY, "***")
    lines = [line for line in stderr.splitlines() if line.strip()]
    accepted = posthog.totals()["deliveries"] - before
    return {
        "seconds": round(seconds, 3),
        "exit_status": done.returncode,
        "events_accepted": accepted,
        "extra_events": 0,  # one capture() per action, nothing else
        "events_per_second": round(accepted / seconds, 1),
        # The SDK reports each refused batch on stderr and carries on.
        "batches_refused": stderr.count("error uploading"),
        "error": lines[-1] if done.returncode and lines else None,
        "stderr_tail": lines[-STDERR_TAIL_LINES:],
    }


def run_script(visits: list[dict], folder: Path, label: str, runs: int = 2) -> tuple[dict, list[dict]]:
    """Run the documented script ``runs`` times over ``visits`` into a fresh emulator: results and held events."""
    export = folder / f"{label}.json"
    export.write_text(json.dumps(visits, ensure_ascii=False))
    with posthog_emulator(BASELINE_KEY) as posthog:
        attempts = [_script_attempt(export, posthog) for _ in range(runs)]
        return {"runs": attempts, **posthog.totals()}, posthog.events()


# --- this package ---------------------------------------------------------------------------------------------------


@contextmanager
def airflow_connection(conn_id: str, url: str, secret: str) -> Iterator[None]:
    """Give hooks an Airflow connection through its ``AIRFLOW_CONN_*`` variable for the duration of the block."""
    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    previous = os.environ.get(name)
    os.environ[name] = json.dumps({"conn_type": "http", "host": url, "password": secret})
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def stage_days(root: Path, visits: list[dict]) -> list[DayFiles]:
    """Write the visits as ``extract_day`` leaves them: one ``visits.ndjson.gz`` per site-local day of their end."""
    tz = parse_timezone(TIMEZONE)
    by_day: dict[date, list[dict]] = defaultdict(list)
    for visit in visits:
        by_day[datetime.fromtimestamp(int(visit["lastActionTimestamp"]), tz).date()].append(visit)
    days = []
    for day in sorted(by_day):
        files = day_files(root, SITE_ID, day)
        write_ndjson_gz(files.visits, by_day[day])
        days.append(files)
    return days


class TimedCall:
    """A function that adds up the seconds spent in it."""

    def __init__(self, function: Callable):
        self.function = function
        self.seconds = 0.0

    def __call__(self, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.function(*args)
        finally:
            self.seconds += time.perf_counter() - started


def _package_attempt(visits: list[dict], send_batch: Callable[[list[dict]], None],
                     posthog: RemotePostHog) -> dict:
    # Each run starts from empty storage: no checkpoint says "already loaded", so every event is sent again,
    # as the script's re-run sends everything again.
    before = posthog.totals()["deliveries"]
    send = TimedCall(send_batch)
    transform = TimedCall(transform_day)
    with tempfile.TemporaryDirectory(prefix="matomo-posthog-bench-") as folder:
        days = stage_days(Path(folder), visits)
        produced = from_actions = 0
        started = time.perf_counter()
        for files in days:
            transformed = transform(files, SITE_ID, TIMEZONE, DEFAULT_MAPPING, LOG)
            produced += transformed["events"]
            from_actions += transformed["events_from_actions"]
            DayLoader(files, send, events_per_minute=UNPACED_EVENTS_PER_MINUTE, log=LOG).run()
        seconds = time.perf_counter() - started
    accepted = posthog.totals()["deliveries"] - before
    return {
        "seconds": round(seconds, 3),
        "transform_seconds": round(transform.seconds, 3),
        "load_seconds": round(seconds - transform.seconds, 3),
        "send_batch_seconds": round(send.seconds, 3),
        "exit_status": 0,
        "events_produced": produced,
        "events_accepted": accepted,
        "extra_events": produced - from_actions,
        "events_per_second": round(accepted / seconds, 1),
        # DayLoader raises on anything it cannot get accepted, so reaching here means none refused for good.
        "batches_refused": 0,
        "error": None,
    }


def run_package(visits: list[dict], runs: int = 2) -> tuple[dict, list[dict]]:
    """Transform and load ``visits`` ``runs`` times through the real PostHogHook into a fresh emulator."""
    # Imported here: Airflow reads AIRFLOW_HOME when it is first imported, and main() sets it first.
    from matomo_posthog.hooks.posthog import PostHogHook

    with posthog_emulator(PROJECT_KEY) as posthog, airflow_connection("posthog_default", posthog.url, PROJECT_KEY):
        hook = PostHogHook()
        hook.get_conn()  # read the connection before any clock starts
        attempts = [_package_attempt(visits, hook.send_batch, posthog) for _ in range(runs)]
        return {"runs": attempts, **posthog.totals()}, posthog.events()


# --- section 1 ------------------------------------------------------------------------------------------------------


def _measured(result: dict, events: list[dict], visits: list[dict]) -> dict:
    counts = export_counts(visits)
    for run in result["runs"]:
        run["actions_lost"] = actions_lost(run, counts)
    return {"input": counts, **result, "quality": judge(events, build_truth(visits, TIMEZONE))}


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 2) if denominator else None


def fastest_run(column: dict) -> dict:
    """The quicker of a column's runs: both do the same work, so the other one's extra time is the machine's."""
    return min(column["runs"], key=lambda run: run["seconds"])


def comparison_ratios(script: dict, package: dict, startup_seconds: float) -> dict:
    """The ratios quoted in the report: speed from each side's fastest run, events held per action after both."""
    script_run, package_run = fastest_run(script), fastest_run(package)
    return {
        "speedup_wall": _ratio(script_run["seconds"], package_run["seconds"]),
        "speedup_wall_without_script_startup": _ratio(script_run["seconds"] - startup_seconds,
                                                      package_run["seconds"]),
        "events_per_second": _ratio(package_run["events_per_second"], script_run["events_per_second"]),
        "events_sent": _ratio(package_run["events_accepted"], script_run["events_accepted"]),
        "script_held_per_action": _ratio(script["quality"]["action_events"], script["input"]["actions_to_send"]),
        "package_held_per_action": _ratio(package["quality"]["action_events"], package["input"]["actions_to_send"]),
    }


def generate_export(sizes: Sizes) -> list[dict]:
    """The compared export: ``sizes.days`` days of the site from ``START``."""
    return generate_visits(SITE_ID, TIMEZONE, START, _last_day(sizes), sizes.visits_per_day, SEED)


def _last_day(sizes: Sizes) -> date:
    return START + timedelta(days=sizes.days - 1)


def compare(sizes: Sizes, visits: list[dict]) -> dict:
    """Section 1: the documented script and this package over the same export, each run twice."""
    parseable = [visit for visit in visits if script_parses(visit)]
    comparable = [visit for visit in parseable if script_names_are_text(visit)]
    with tempfile.TemporaryDirectory(prefix="matomo-posthog-bench-") as folder:
        startup = run_script([], Path(folder), "empty", runs=1)[0]["runs"][0]["seconds"]
        columns = {
            "script_full": _measured(*run_script(visits, Path(folder), "full"), visits),
            "script_parseable": _measured(*run_script(parseable, Path(folder), "parseable"), parseable),
            "script_subset": _measured(*run_script(comparable, Path(folder), "subset"), comparable),
        }
    columns["package_subset"] = _measured(*run_package(comparable), comparable)
    columns["package_full"] = _measured(*run_package(visits), visits)
    return {
        "site": {"timezone": TIMEZONE, "start": START.isoformat(), "end": _last_day(sizes).isoformat(),
                 "visits_per_day": sizes.visits_per_day, "seed": SEED},
        "subsets": {
            "parseable": "visits whose fields the script's float()/int() calls accept",
            "subset": "parseable visits without content actions (type 13), whose numeric event names fail batches",
        },
        "script_startup_seconds": startup,
        "package_events_per_minute": UNPACED_EVENTS_PER_MINUTE,
        "columns": columns,
        "ratios": comparison_ratios(columns["script_subset"], columns["package_subset"], startup),
    }


# --- section 2 ------------------------------------------------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    """A memory figure of this process (``VmRSS``, ``VmHWM``) in KiB from /proc, or None where there is none."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB$", status, re.MULTILINE)
    return int(match.group(1)) if match else None


def _reset_peak_rss() -> bool:
    """Restart the kernel's peak-RSS mark (``VmHWM``) from the current RSS; False where Linux's control is missing."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _max_rss_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # macOS counts bytes, Linux KiB


def extract_in_child(params_json: str) -> None:
    """Extract one day in this (fresh) process and print what it cost as one JSON line; see :func:`measure_extract`.

    The baseline is taken after the imports and one small call that loads Airflow's connection machinery, so
    what is measured above it is the extract's own. With ``trace`` the Python allocation peak is traced instead:
    tracing slows the run and inflates the process, so it gets a process of its own.
    """
    from matomo_posthog.hooks.matomo import MatomoHook

    params = json.loads(params_json)
    day = date.fromisoformat(params["day"])
    hook = MatomoHook(timeout=120)
    hook.get_site(SITE_ID)
    max_rss_before, rss_before, peak_reset = _max_rss_kib(), _status_kib("VmRSS"), _reset_peak_rss()
    if params["trace"]:
        tracemalloc.start()
    with tempfile.TemporaryDirectory(prefix="matomo-posthog-bench-") as folder:
        files = day_files(Path(folder), SITE_ID, day)
        report = extract_day(hook, files, SITE_ID, TIMEZONE, day, PAGE_SIZE, MIN_PAGE_SIZE, LOG)
    peak = _status_kib("VmHWM") if peak_reset else None
    result = {
        "visits_extracted": report["visits_extracted"],
        "pages": report["pages"],
        "seconds": report["seconds"],
        "rss_after_imports_mib": round(rss_before / 1024, 1) if rss_before else None,
        "peak_rss_above_imports_mib": round((peak - rss_before) / 1024, 1) if peak and rss_before else None,
        "ru_maxrss_mib": round(_max_rss_kib() / 1024, 1),
        "ru_maxrss_above_imports_mib": round((_max_rss_kib() - max_rss_before) / 1024, 1),
    }
    if params["trace"]:
        result["tracemalloc_peak_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    print(json.dumps(result))


def _extract_child(url: str, day: date, trace: bool) -> dict:
    env = {**os.environ, "AIRFLOW_CONN_MATOMO_DEFAULT": json.dumps({"conn_type": "http", "host": url,
                                                                   "password": MATOMO_TOKEN})}
    code = "import sys; from matomo_posthog.bench import extract_in_child; extract_in_child(sys.argv[1])"
    params = json.dumps({"day": day.isoformat(), "trace": trace})
    done = subprocess.run([sys.executable, "-c", code, params], env=env, capture_output=True, text=True, timeout=900)
    # Airflow's logging writes to stdout too; the result is the last JSON line.
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        tail = "\n".join(done.stderr.splitlines()[-STDERR_TAIL_LINES:])
        raise RuntimeError(f"extract process failed with exit status {done.returncode}: {tail}")
    return json.loads(lines[-1])


def measure_extract(visits: int) -> dict:
    """Serve one generated day of ``visits`` visits from an emulator process; extract it in two fresh processes.

    The first extract measures RSS and speed, the second traces Python allocations.
    """
    day = MEMORY_DAY.isoformat()
    args = ["--site-id", str(SITE_ID), "--timezone", TIMEZONE, "--seed", str(SEED), "--start", day, "--end", day,
            "--visits-per-day", str(visits)]
    started = time.perf_counter()
    with emulator_process("matomo", args, {MATOMO_TOKEN_ENV: MATOMO_TOKEN}) as url:
        ready = time.perf_counter() - started
        plain = _extract_child(url, MEMORY_DAY, trace=False)
        traced = _extract_child(url, MEMORY_DAY, trace=True)
    if plain["visits_extracted"] != visits:
        raise RuntimeError(f"extracted {plain['visits_extracted']} of {visits} generated visits")
    return {
        "visits": visits,
        "emulator_ready_seconds": round(ready, 2),
        **plain,
        "visits_per_second": round(plain["visits_extracted"] / plain["seconds"], 1),
        "tracemalloc_peak_mib": traced["tracemalloc_peak_mib"],
    }


def extract_memory(sizes: Sizes) -> dict:
    """Section 2: the extract's peak memory on a day and on a day ten times larger."""
    small = measure_extract(sizes.extract_visits)
    large = measure_extract(sizes.extract_visits * 10)
    return {
        "page_size": PAGE_SIZE,
        "day": MEMORY_DAY.isoformat(),
        "small": small,
        "large": large,
        "peak_rss_ratio": _ratio(large["peak_rss_above_imports_mib"] or 0, small["peak_rss_above_imports_mib"] or 0),
        "tracemalloc_peak_ratio": _ratio(large["tracemalloc_peak_mib"], small["tracemalloc_peak_mib"]),
    }


# --- section 3 ------------------------------------------------------------------------------------------------------


def transform_throughput(visits: list[dict]) -> dict:
    """Section 3: ``transform_visits`` over the export in memory; the best of a few passes."""
    site = SiteContext(site_id=SITE_ID, timezone=TIMEZONE)
    best, events = float("inf"), 0
    for _ in range(TRANSFORM_PASSES):
        stats = TransformStats()
        started = time.perf_counter()
        events = sum(1 for _ in transform_visits(visits, site, DEFAULT_MAPPING, stats))
        best = min(best, time.perf_counter() - started)
    return {
        "visits": len(visits),
        "events": events,
        "passes": TRANSFORM_PASSES,
        "best_seconds": round(best, 3),
        "events_per_second": round(events / best, 1),
        "visits_per_second": round(len(visits) / best, 1),
    }


# --- the report -----------------------------------------------------------------------------------------------------

COMPARISON_COLUMNS = (
    ("script_full", "script, full"),
    ("script_parseable", "script, parseable"),
    ("script_subset", "script, subset"),
    ("package_subset", "package, subset"),
    ("package_full", "package, full"),
)


def _comparison_rows(columns: dict) -> list[list[str]]:
    def row(label: str, cell: Callable[[dict], Any]) -> list[str]:
        return [label] + [str(cell(columns[key])) for key, _ in COMPARISON_COLUMNS]

    def first(column: dict) -> dict:
        return column["runs"][0]

    return [
        row("visits in the input", lambda c: c["input"]["visits"]),
        row("actions to send (actions - goals)", lambda c: c["input"]["actions_to_send"]),
        row("exit status, run 1 / run 2", lambda c: " / ".join(str(r["exit_status"]) for r in c["runs"])),
        row("batches refused, run 1", lambda c: first(c)["batches_refused"]),
        row("wall seconds, run 1 / run 2", lambda c: " / ".join(f"{r['seconds']:.2f}" for r in c["runs"])),
        row("events accepted, run 1 / run 2", lambda c: " / ".join(str(r["events_accepted"]) for r in c["runs"])),
        row("actions lost, run 1 / run 2", lambda c: " / ".join(str(r["actions_lost"]) for r in c["runs"])),
        row("events/s, fastest run", lambda c: f"{fastest_run(c)['events_per_second']:,.0f}"),
        row("deliveries after re-run", lambda c: c["deliveries"]),
        row("distinct events after dedup", lambda c: c["quality"]["distinct_events"]),
        row("timestamps off true UTC", lambda c: c["quality"]["timestamps_off"]),
        row("  of which by the UTC offset", lambda c: c["quality"]["timestamps_off_by_utc_offset"]),
        row("valid UUIDv7 $session_id", lambda c: c["quality"]["valid_session_id_events"]),
        row("$pageleave events", lambda c: c["quality"]["pageleave_events"]),
        row("$referring_domain present", lambda c: c["quality"]["referring_domain_present"]),
        row("$os is the visit's OS", lambda c: c["quality"]["os_is_visit_os"]),
        row("$os is not the visit's OS", lambda c: c["quality"]["os_not_visit_os"]),
        row("action events held after dedup", lambda c: c["quality"]["action_events"]),
    ]


def _speed(ratio: float | None) -> str:
    if not ratio:
        return "not comparable"
    return f"{ratio}x faster" if ratio >= 1 else f"{round(1 / ratio, 2)}x slower"


def _findings(comparison: dict) -> list[str]:
    columns, ratios = comparison["columns"], comparison["ratios"]
    full, parseable = columns["script_full"]["runs"][0], columns["script_parseable"]["runs"][0]
    lines = []
    if full["exit_status"]:
        lines.append(f"The documented script crashed on the full export (exit status {full['exit_status']}) after "
                     f"PostHog accepted {full['events_accepted']} events: {full['error']}")
    if parseable["batches_refused"]:
        lines.append(f"On the visits it can parse it exits {parseable['exit_status']}, yet PostHog refused "
                     f"{parseable['batches_refused']} batches of up to 100 events and holds "
                     f"{columns['script_parseable']['quality']['distinct_events']} events of "
                     f"{columns['script_parseable']['input']['actions_to_send']}: content actions are sent with the "
                     "number 13 as event name, and one such event fails its whole batch.")
    subset = columns["script_subset"]["quality"]
    lost = [run["actions_lost"] for run in columns["script_subset"]["runs"]]
    if any(lost):
        lines.append(
            f"On the subset the script exited 0 both times, yet {' and '.join(map(str, lost))} actions got no event "
            "in runs 1 and 2: at exit the SDK gives its upload thread 1 s, then drops what is still queued, "
            "silently. How many depends on how busy the machine is.")
    lines.append(
        f"Same input (subset), fastest of the two runs: this package {_speed(ratios['speedup_wall'])} in wall time "
        f"({_speed(ratios['speedup_wall_without_script_startup'])} without the script's "
        f"{comparison['script_startup_seconds']:.2f} s interpreter start and SDK import) while sending "
        f"{ratios['events_sent']}x as many events ($pageleave, Product Viewed, $identify); "
        f"{ratios['events_per_second']}x the script's events/s.")
    run = fastest_run(columns["package_subset"])
    lines.append(
        f"Where this package's {run['seconds']:.2f} s go: transform_day {run['transform_seconds']:.2f} s (gzip NDJSON "
        f"in and out), the loader {run['load_seconds']:.2f} s, of which {run['send_batch_seconds']:.2f} s inside "
        "send_batch (SDK, HTTP, the emulator's ingestion). The script writes no files and overlaps capture() with "
        "a background upload thread.")
    lines.append(
        f"The script's capture() path replaced $os with this machine's: its events carry {subset['os_values']}; "
        f"{subset['os_not_visit_os']} of {subset['distinct_events']} name an OS other than the visit's.")
    lines.append(
        f"After a re-run PostHog holds {ratios['script_held_per_action']} events per Matomo action from the script "
        f"(random uuids never deduplicate) and {ratios['package_held_per_action']} from this package "
        "(deterministic uuids collapse).")
    lines.append(f"This package loads at {comparison['package_events_per_minute']:,} events/min so pacing never "
                 f"waits; at the default of {DEFAULT_EVENTS_PER_MINUTE:,}/min its {run['events_accepted']:,} events "
                 f"would take {run['events_accepted'] * 60 / DEFAULT_EVENTS_PER_MINUTE:.0f} s. It is timed "
                 "in-process, after imports and after reading its connection.")
    return lines


def format_comparison(comparison: dict) -> str:
    """Section 1 as text: the table, then the findings with the ratios of this run."""
    site = comparison["site"]
    heading = (f"1. Same export: documented script vs this package ({site['timezone']}, "
               f"{site['start']}..{site['end']}, {site['visits_per_day']} visits/day, seed {site['seed']}; "
               "each run twice)")
    notes = [f"   {name}: {text}" for name, text in comparison["subsets"].items()]
    table = format_table(_comparison_rows(comparison["columns"]),
                         ("metric", *(label for _, label in COMPARISON_COLUMNS)))
    findings = [f" - {line}" for line in _findings(comparison)]
    return "\n".join([heading, *notes, "", table, "", *findings])


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_memory(memory: dict) -> str:
    """Section 2 as text."""
    columns = ("visits in the day", "emulator ready s", "extract s", "visits/s", "pages", "RSS after imports MiB",
               "peak above it MiB", "ru_maxrss delta MiB", "tracemalloc peak MiB")
    rows = [[f"{m['visits']:,}", f"{m['emulator_ready_seconds']:.1f}", f"{m['seconds']:.1f}",
             f"{m['visits_per_second']:,.0f}", str(m["pages"]), _mib(m["rss_after_imports_mib"]),
             _mib(m["peak_rss_above_imports_mib"]), _mib(m["ru_maxrss_above_imports_mib"]),
             _mib(m["tracemalloc_peak_mib"])] for m in (memory["small"], memory["large"])]
    return "\n".join([
        f"2. Extract memory: steps.extract_day, page size {memory['page_size']}, one day ({memory['day']}) served by "
        "the Matomo emulator in its own process, each extract in a fresh process",
        "   peak above it: the kernel's peak-RSS mark (VmHWM), reset after imports, minus the RSS then. ru_maxrss "
        "delta: the same from getrusage, which",
        "   cannot be reset and keeps the spawning process's size across exec, so it can read 0. tracemalloc peak: "
        "a second, traced run.",
        "   emulator ready: its interpreter start plus generating the day's visits.",
        "",
        format_table(rows, columns),
        "",
        f" - 10x the visits: peak RSS above imports {memory['peak_rss_ratio']}x, "
        f"tracemalloc peak {memory['tracemalloc_peak_ratio']}x",
    ])


def format_transform(transform: dict) -> str:
    """Section 3 as text."""
    return (f"3. Transform: transform_visits over {transform['visits']:,} visits -> {transform['events']:,} events, "
            f"best of {transform['passes']} passes: {transform['best_seconds']:.2f} s, "
            f"{transform['events_per_second']:,.0f} events/s ({transform['visits_per_second']:,.0f} visits/s)")


def format_report(report: dict) -> str:
    """The whole report as plain text."""
    machine = report["machine"]
    header = (f"make bench: {machine['cpus']} CPUs (load average {machine['load_average_at_start']} at start), "
              f"Python {machine['python']}, {machine['platform']}; {report['seconds']:.0f} s in all")
    return "\n\n".join([header, format_comparison(report["comparison"]), format_memory(report["extract_memory"]),
                        format_transform(report["transform"])])


def run_bench(sizes: Sizes) -> dict:
    """Run every section and return the report."""
    started = time.perf_counter()
    visits = generate_export(sizes)
    report = {
        "sizes": asdict(sizes),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    # Other work on the machine slows every timing here; the load says how much there was.
                    "load_average_at_start": round(os.getloadavg()[0], 2)},
        "comparison": compare(sizes, visits),
        "extract_memory": extract_memory(sizes),
        "transform": transform_throughput(visits),
    }
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    """Run the bench, print the report and write it as JSON."""
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few seconds per section)")
    parser.add_argument("--visits-per-day", type=int, metavar="N", help="visits per day of the compared export")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON report (default {DEFAULT_OUTPUT})")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.visits_per_day is not None:
        if args.visits_per_day < 1:
            parser.error("--visits-per-day must be at least 1")
        sizes = replace(sizes, visits_per_day=args.visits_per_day)
    # Airflow reads its home when first imported (by the hooks); keep its files out of the user's home.
    os.environ.setdefault("AIRFLOW_HOME", str(AIRFLOW_HOME))
    LOG.setLevel(logging.WARNING)
    report = run_bench(sizes)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(format_report(report))
    print(f"\nReport written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
