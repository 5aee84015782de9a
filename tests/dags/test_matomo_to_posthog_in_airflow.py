"""The DAG in a running Airflow (``airflow standalone``), driven through the REST API the UI uses.

A user's path: unpause, create a backfill over three days, watch every run succeed, clear one day's chain
with its downstream tasks, and read that day's task logs. PostHog must end with every event exactly once.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
import requests

from matomo_posthog.emulators.generator import generate_visits
from matomo_posthog.emulators.matomo import MatomoEmulator
from matomo_posthog.emulators.posthog import PostHogEmulator
from matomo_posthog.timezones import parse_timezone
from matomo_posthog.transform import Mapping, SiteContext, TransformStats, transform_visits
from matomo_posthog.windows import day_bounds_utc

MATOMO_TOKEN = "standalone-matomo-token-9d2e7c41b8"
POSTHOG_KEY = "phc_standalone_project_key_4f8a0e6b"
SITE, TIMEZONE, SEED, PER_DAY = 9, "Europe/Berlin", 21, 10
DAYS = [date(2024, 10, 26), date(2024, 10, 27), date(2024, 10, 28)]  # Berlin falls back on 2024-10-27
DAG_ID = f"matomo_to_posthog_site_{SITE}"
STARTUP_SECONDS, RUN_SECONDS = 240, 420


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def expected_uuids() -> Counter:
    tz = parse_timezone(TIMEZONE)
    start, end = day_bounds_utc(DAYS[0], tz)[0].timestamp(), day_bounds_utc(DAYS[-1], tz)[1].timestamp()
    visits = [v for v in generate_visits(SITE, TIMEZONE, DAYS[0], DAYS[-1], PER_DAY, seed=SEED)
              if start <= v["lastActionTimestamp"] < end]
    site = SiteContext(site_id=SITE, timezone=TIMEZONE, currency="EUR")
    return Counter(e["uuid"] for e in transform_visits(visits, site, Mapping(), TransformStats()))


class Airflow:
    """An ``airflow standalone`` on free loopback ports, and a client for its REST API."""

    def __init__(self, home: Path, env: dict[str, str]):
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **env,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        }
        self.session = requests.Session()
        self.log = open(home / "standalone.log", "w")
        self.process = subprocess.Popen([str(Path(sys.executable).parent / "airflow"), "standalone"], env=self.env,
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()

    def wait_for(self, what, condition, seconds):
        deadline = time.monotonic() + seconds
        while True:
            assert self.process.poll() is None, f"airflow standalone exited: {self.output()[-3000:]}"
            value = condition()
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.output()[-3000:]}"
            time.sleep(1)

    def output(self) -> str:
        return (self.home / "standalone.log").read_text(errors="replace")

    def login(self):
        passwords = self.home / "simple_auth_manager_passwords.json.generated"

        def token():
            try:
                password = json.loads(passwords.read_text())["admin"]
                answer = requests.post(f"{self.url}/auth/token", json={"username": "admin", "password": password},
                                       timeout=10)
            except (OSError, ValueError, KeyError, requests.RequestException):
                return None
            return answer.json().get("access_token") if answer.status_code in (200, 201) else None

        self.session.headers["Authorization"] = f"Bearer {self.wait_for('the API', token, STARTUP_SECONDS)}"

    def api(self, method, path, **kwargs):
        for _ in range(10):
            answer = self.session.request(method, f"{self.url}/api/v2{path}", timeout=30, **kwargs)
            if answer.status_code != 503:  # SQLite answers "database is locked" now and then
                return answer
            time.sleep(1)
        return answer

    def runs(self):
        return self.api("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 100}).json()["dag_runs"]


@pytest.fixture
def airflow(tmp_path):
    matomo = MatomoEmulator.from_generator(SITE, TIMEZONE, DAYS[0], DAYS[-1], PER_DAY, seed=SEED, token=MATOMO_TOKEN)
    with matomo, PostHogEmulator(api_key=POSTHOG_KEY) as posthog:
        config = tmp_path / "sites.toml"
        config.write_text(
            f'[[sites]]\nsite_id = {SITE}\ntimezone = "{TIMEZONE}"\nstart_date = "2024-10-20"\n'
            f'storage = "{tmp_path / "storage"}"\nmin_request_interval = 0.0\nmatomo_pool = ""\n'
            "batch_size = 25\nprogress_seconds = 0\n"
        )
        home = tmp_path / "airflow"
        home.mkdir()
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "MATOMO_POSTHOG_CONFIG": str(config),
            "AIRFLOW_CONN_MATOMO_DEFAULT": json.dumps({"conn_type": "http", "host": matomo.url,
                                                       "password": MATOMO_TOKEN}),
            "AIRFLOW_CONN_POSTHOG_DEFAULT": json.dumps({"conn_type": "http", "host": posthog.url,
                                                        "password": POSTHOG_KEY}),
        }
        server = Airflow(home, env)
        try:
            server.login()
            yield server, posthog
        finally:
            server.stop()


def backfill_succeeded(airflow, count):
    def check():
        runs = [r for r in airflow.runs() if r["run_type"] == "backfill"]
        failed = [r for r in runs if r["state"] == "failed"]
        assert not failed, f"runs failed: {[r['dag_run_id'] for r in failed]}"
        done = [r for r in runs if r["state"] == "success"]
        return done if len(done) >= count and len(runs) == len(done) else None
    return check


@pytest.mark.e2e
def test_backfill_clear_one_day_and_read_its_logs_through_the_rest_api(airflow):
    server, posthog = airflow
    server.wait_for("the DAG to be parsed", lambda: server.api("GET", f"/dags/{DAG_ID}").status_code == 200,
                    STARTUP_SECONDS)
    # The backfill is created while the DAG is paused, then the DAG is unpaused: on SQLite a scheduler that
    # already runs the DAG can die on the rows the backfill is still writing (StaleDataError).
    backfill = server.api("POST", "/backfills", json={
        "dag_id": DAG_ID, "from_date": "2024-10-26T00:00:00+02:00", "to_date": "2024-10-28T00:00:00+01:00",
        "run_backwards": False, "dag_run_conf": {}, "reprocess_behavior": "none", "max_active_runs": 3,
    })
    assert backfill.status_code in (200, 201), backfill.text
    assert server.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False}).status_code == 200
    runs = server.wait_for("three successful runs", backfill_succeeded(server, 3), RUN_SECONDS)
    assert sorted(r["data_interval_start"][:16] for r in runs) == [
        "2024-10-25T22:00", "2024-10-26T22:00", "2024-10-27T23:00"
    ]

    # Unpausing also started the ongoing daily sync: its recent day waits, deferred, until it is final.
    scheduled = [r for r in server.runs() if r["run_type"] == "scheduled"]
    if scheduled:
        def waiting():
            task = server.api("GET", f"/dags/{DAG_ID}/dagRuns/{scheduled[0]['dag_run_id']}"
                                     "/taskInstances/day.wait_until_final/0").json()
            return task.get("state") == "deferred"
        server.wait_for("the recent day to wait deferred", waiting, RUN_SECONDS)

    expected = expected_uuids()
    assert Counter(e["uuid"] for e in posthog.events()) == expected
    assert set(posthog.deliveries().values()) == {1}

    # Clear the fall-back day's chain from its extract on, as the UI's "Clear → Downstream" does.
    run = next(r for r in runs if r["data_interval_start"].startswith("2024-10-26T22:00"))
    run_id = run["dag_run_id"]
    cleared = server.api("POST", f"/dags/{DAG_ID}/clearTaskInstances", json={
        "dag_run_id": run_id, "task_ids": [["day.extract", 0]], "include_downstream": True,
        "only_failed": False, "reset_dag_runs": True, "dry_run": False,
    })
    assert cleared.status_code == 200, cleared.text
    assert {t["task_id"] for t in cleared.json()["task_instances"]} >= {"day.extract", "day.transform", "day.load"}

    def rerun_done():
        task = server.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/day.load/0").json()
        return task if task.get("try_number", 0) >= 2 and task.get("state") == "success" else None

    load = server.wait_for("the cleared day to run again", rerun_done, RUN_SECONDS)
    assert Counter(e["uuid"] for e in posthog.events()) == expected
    assert set(posthog.deliveries().values()) == {1}, "the re-run must not resend accepted events"

    logs = {}
    for task_id in ("day.extract", "day.load"):
        answer = server.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/1",
                            params={"map_index": 0, "full_content": True}, headers={"Accept": "application/json"})
        assert answer.status_code == 200, answer.text
        logs[task_id] = json.dumps(answer.json(), ensure_ascii=False)
    assert "2024-10-27" in logs["day.extract"] and "page 1" in logs["day.extract"]
    assert "ETA" in logs["day.load"] and "events accepted in" in logs["day.load"]
    rerun_log = server.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/day.load/logs/{load['try_number']}",
                           params={"map_index": 0, "full_content": True}, headers={"Accept": "application/json"}).text
    assert "already loaded" in rerun_log or "nothing sent" in rerun_log
    for text in (*logs.values(), rerun_log, server.output()):
        assert MATOMO_TOKEN not in text and POSTHOG_KEY not in text
