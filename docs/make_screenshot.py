"""Make docs/airflow-backfill.png: the Airflow UI showing a backfill of the demo week, day by day.

The README shows what a backfill looks like in Airflow. This script makes that picture again from scratch,
so it stays true to the code: it starts both emulators with the demo week (2024-03-25 .. 2024-03-31, site 1,
Europe/Berlin, the week daylight saving time starts), runs ``airflow standalone`` in a private home on free
loopback ports, creates a backfill for the week through the REST API, unpauses the site's DAG, waits until
its seven runs succeed and takes a screenshot with headless Chromium: the DAG's grid of the backfill runs next
to the ``day.load`` task of every day, each labelled by its day. Then it stops it all.

Run it with ``.venv/bin/python docs/make_screenshot.py``. It needs Debian's Chromium at /usr/bin/chromium
(``apt-get install chromium``). Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Callable, TypeVar

import psutil
import requests
from websockets.sync.client import ClientConnection, connect

from matomo_posthog import demo
from matomo_posthog.config import load_config

CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = Path(__file__).resolve().parent / "airflow-backfill.png"
SITE = load_config(demo.DEMO_CONFIG)[0]
DAG_ID = SITE.dag_id
BACKFILL = {
    "dag_id": DAG_ID,
    "from_date": "2024-03-25T00:00:00+01:00",
    "to_date": "2024-03-31T00:00:00+01:00",
    "run_backwards": False,
    "dag_run_conf": {},
    "reprocess_behavior": "none",
    "max_active_runs": 4,
}
DAYS = 7
# The grid of the backfill runs next to the load task of every day: one task instance per day, labelled by its
# day (its map index), in day order; only those that succeeded, as the scheduled run's empty one comes first.
PAGE = f"/dags/{DAG_ID}/tasks/day.load/task_instances?task_state=success&run_type=backfill&sort=rendered_map_index"
# What the page shows once it is drawn with its data and its English labels.
EXPECTED = [f"2024-03-{day}" for day in range(25, 32)] + ["7 Task Instances", "All Runs", "Run Type", "State:",
                                                          "Success"]
WINDOW = (1920, 800)  # wide enough for the grid to show all seven runs; a PNG of about 150 KB
STARTUP_SECONDS, RUN_SECONDS = 300, 600
ATTEMPTS = 3
REDRAW_SECONDS = 10

T = TypeVar("T")


def check_chromium() -> None:
    """Stop early, saying how to install it, if Chromium is missing."""
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} not found; install it with: apt-get update && apt-get install -y chromium")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(folder: Path) -> Path:
    """The demo config with its storage moved into ``folder``, so ``make demo`` and this never share files."""
    document = tomllib.loads(demo.DEMO_CONFIG.read_text())
    defaults = document.get("defaults", {})
    lines = ["[defaults]", *(f"{key} = {json.dumps(value)}" for key, value in defaults.items())]
    for site in document["sites"]:
        site["storage"] = (folder / "storage").as_uri()
        lines += ["", "[[sites]]", *(f"{key} = {json.dumps(str(value) if key.endswith('_date') else value)}"
                                     for key, value in site.items())]
    path = folder / "sites.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def standalone_env(home: Path, config: Path, matomo_url: str, posthog_url: str, url: str) -> dict[str, str]:
    """The demo's Airflow environment, on free loopback ports, with a UI that needs no login."""
    port = url.rsplit(":", 1)[-1]
    return {
        **demo.airflow_env(home, matomo_url, posthog_url),
        "MATOMO_POSTHOG_CONFIG": str(config),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": port,
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
    }


def start_standalone(env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``airflow standalone`` in its own process group, its output going to ``log``."""
    with open(log, "w") as out:
        return subprocess.Popen([str(demo.BIN / "airflow"), "standalone"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


class ComponentStopped(Exception):
    """A component of ``airflow standalone`` stopped, and standalone does not start it again.

    Airflow's scheduler can die of a ``StaleDataError`` on ``dag_run`` when a backfill's runs are created while
    it schedules them (SQLite); ``run_backfill`` avoids that, and starting again from scratch is the way out.
    """


def check_airflow(process: subprocess.Popen, log: Path) -> None:
    """Fail if ``airflow standalone`` exited or one of its components (scheduler, API server, ...) did."""
    if process.poll() is not None:
        raise SystemExit(f"airflow standalone exited:\n{log.read_text(errors='replace')[-3000:]}")
    try:
        stopped = any(child.status() == psutil.STATUS_ZOMBIE for child in psutil.Process(process.pid).children())
    except psutil.NoSuchProcess:  # it exited just now: the next check says so
        return
    if stopped:
        errors = re.findall(r"^(\S+ +\| .*?\w(?:Error|Exception): .*)$", log.read_text(errors="replace"), re.M)
        raise ComponentStopped(errors[-1] if errors else "no error in its log")


def wait_for(what: str, condition: Callable[[], T], seconds: float, process: subprocess.Popen, log: Path) -> T:
    """Poll ``condition`` every second until it is truthy; fail if Airflow stops or time runs out."""
    print(f"Waiting for {what} ...")
    deadline = time.monotonic() + seconds
    while True:
        check_airflow(process, log)
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(1)


def api(url: str, method: str, path: str, **kwargs) -> requests.Response | None:
    """One REST API call (no token needed with all-admins); None while the API server is not up yet."""
    for _ in range(10):
        try:
            answer = requests.request(method, f"{url}/api/v2{path}", timeout=30, **kwargs)
        except requests.RequestException:
            return None
        if answer.status_code != 503:  # SQLite says "database is locked" now and then
            return answer
        time.sleep(1)
    return answer


def text_of(answer: requests.Response | None) -> str:
    """What the API said, for an error message."""
    return "no answer" if answer is None else f"{answer.status_code} {answer.text}"


def backfill_runs(url: str) -> list[dict]:
    """The DAG's backfill runs; fail at once if one of them failed."""
    answer = api(url, "GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 100})
    if answer is None or answer.status_code != 200:
        return []
    runs = [run for run in answer.json()["dag_runs"] if run["run_type"] == "backfill"]
    failed = [run["dag_run_id"] for run in runs if run["state"] == "failed"]
    if failed:
        raise SystemExit(f"backfill runs failed: {failed}")
    return runs


def finished(url: str, backfill_id: int) -> list[dict] | None:
    """The backfill runs once all seven succeeded and the scheduler marked the backfill completed (until then
    the UI shows a "Backfill in progress" banner). The scheduled run stays deferred until its day is final."""
    runs = backfill_runs(url)
    if len(runs) != DAYS or any(run["state"] != "success" for run in runs):
        return None
    answer = api(url, "GET", f"/backfills/{backfill_id}")
    done = answer is not None and answer.status_code == 200 and answer.json().get("completed_at")
    return runs if done else None


def run_backfill(url: str, process: subprocess.Popen, log: Path) -> None:
    """Backfill the demo week, unpause the DAG and wait until every day's run succeeded and the backfill is done.

    The backfill is created while the DAG is still paused (as a new DAG is): the scheduler leaves a paused DAG's
    runs alone, so it never works on runs that are still being created. With SQLite, that race often kills it.
    """
    def parsed() -> bool:
        answer = api(url, "GET", f"/dags/{DAG_ID}")
        return answer is not None and answer.status_code == 200

    wait_for(f"Airflow to parse {DAG_ID}", parsed, STARTUP_SECONDS, process, log)
    answer = api(url, "POST", "/backfills", json=BACKFILL)
    if answer is None or answer.status_code not in (200, 201):
        raise SystemExit(f"could not create the backfill: {text_of(answer)}")
    backfill_id = answer.json()["id"]
    answer = api(url, "PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
    if answer is None or answer.status_code != 200:
        raise SystemExit(f"could not unpause {DAG_ID}: {text_of(answer)}")
    runs = wait_for(f"the {DAYS} backfill runs to succeed", lambda: finished(url, backfill_id), RUN_SECONDS,
                    process, log)
    print("Succeeded:", ", ".join(sorted(run["logical_date"][:16] for run in runs)))


def start_chromium(profile: Path) -> tuple[subprocess.Popen, str]:
    """Headless Chromium, in its own process group, with a DevTools endpoint on a free loopback port.

    Returns the process and the websocket URL of its blank page. The UI shows dates in the browser's timezone:
    that of the site, here.
    """
    width, height = WINDOW
    command = [
        str(CHROMIUM), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
        f"--user-data-dir={profile}", f"--window-size={width},{height}",
        "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank",
    ]
    env = {**os.environ, "TZ": SITE.timezone, "XDG_CONFIG_HOME": str(profile)}  # its crash reports stay in there
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 60
    while not (port_file.exists() and port_file.read_text().strip()):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_group(process, signal.SIGTERM)
            raise SystemExit("Chromium did not start")
        time.sleep(0.2)
    port = port_file.read_text().split()[0]
    pages = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
    return process, next(page["webSocketDebuggerUrl"] for page in pages if page["type"] == "page")


def stop_group(process: subprocess.Popen, first: signal.Signals) -> None:
    """Send ``first`` to the process group, give it 30 seconds to exit, then SIGKILL whatever of it is left."""
    if process.poll() is None:
        os.killpg(process.pid, first)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


class DevTools:
    """Just enough of the Chrome DevTools Protocol: call a method on one page and get its result."""

    def __init__(self, socket: ClientConnection):
        self.socket = socket
        self.last_id = 0

    def call(self, method: str, **params) -> dict:
        """Call ``method`` and wait for its answer."""
        self.last_id += 1
        self.socket.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self.last_id:  # anything else is an event, not asked for
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def text(self) -> str:
        """The text the page shows."""
        result = self.call("Runtime.evaluate", expression="document.body ? document.body.innerText : ''")
        return result["result"].get("value", "")

    def missing(self, expected: list[str]) -> list[str]:
        """The texts in ``expected`` the page does not show (yet)."""
        shown = self.text()
        return [text for text in expected if text not in shown]

    def go(self, path: str) -> None:
        """Go to ``path`` inside the app, as following one of its links does (no new page load)."""
        self.call("Runtime.evaluate", expression=f"history.pushState(null, '', {json.dumps(path)}); "
                                                 "dispatchEvent(new PopStateEvent('popstate'))")


def screenshot(url: str, path: str, output: Path, profile: Path, expected: list[str]) -> None:
    """Load ``url`` + ``path`` in headless Chromium and save a PNG once it shows every text in ``expected``.

    The UI is a React app that fetches its data and its English texts after loading, so a fixed delay is not
    enough: it is ready when the days and the translated labels are on screen. Often it draws some labels before
    their texts arrive and leaves them as keys ("allRuns", "states.success"), even when loaded again; going to
    its home page and back, inside the app, draws them anew with the texts it has by then.
    """
    process, websocket_url = start_chromium(profile)
    try:
        with connect(websocket_url, max_size=None) as socket:
            tools = DevTools(socket)
            width, height = WINDOW
            tools.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                       mobile=False)
            tools.call("Page.navigate", url=url + path)
            drawn = time.monotonic()
            deadline = drawn + 120
            while missing := tools.missing(expected):
                if time.monotonic() > deadline:
                    raise SystemExit(f"the page never showed {missing}; it shows:\n{tools.text()[:2000]}")
                if time.monotonic() - drawn > REDRAW_SECONDS:
                    print(f"The page does not show {missing}; going to the home page and back ...")
                    tools.go("/")
                    time.sleep(1)
                    tools.go(path)
                    drawn = time.monotonic()
                time.sleep(0.5)
            time.sleep(2)  # let the last fetches and drawing settle
            png = tools.call("Page.captureScreenshot", format="png")["data"]
        output.write_bytes(base64.b64decode(png))
    finally:
        stop_group(process, signal.SIGTERM)


def make_screenshot() -> None:
    """Emulators, Airflow, backfill, screenshot; everything stopped on the way out."""
    with tempfile.TemporaryDirectory(prefix="airflow-screenshot-") as tmp:
        folder = Path(tmp)
        home, log = folder / "airflow", folder / "standalone.log"
        home.mkdir()
        config = write_config(folder)
        url = f"http://127.0.0.1:{free_port()}"
        with demo.demo_emulators(SITE) as (matomo_url, posthog_url):
            env = standalone_env(home, config, matomo_url, posthog_url, url)
            demo.prepare_airflow(env, SITE)
            print(f"Starting airflow standalone on {url} (log: {log})")
            process = start_standalone(env, log)
            try:
                run_backfill(url, process, log)
                screenshot(url, PAGE, OUTPUT, folder / "chromium", EXPECTED)
            finally:
                stop_group(process, signal.SIGINT)  # Ctrl-C, as in a terminal


def main() -> int:
    """Make the screenshot, starting again from scratch if a component of Airflow stops on the way."""
    check_chromium()
    for attempt in range(1, ATTEMPTS + 1):
        try:
            make_screenshot()
            break
        except ComponentStopped as stopped:
            print(f"A component of airflow standalone stopped ({stopped}); attempt {attempt} of {ATTEMPTS} failed.")
    else:
        raise SystemExit("A component of airflow standalone stopped on every attempt; see the messages above.")
    print(f"Wrote {OUTPUT} ({OUTPUT.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
