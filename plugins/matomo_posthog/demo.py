"""``make demo`` and ``make airflow``: the real DAG in real Airflow against both emulators on 127.0.0.1.

The demo generates a week of visits (it crosses the start of daylight saving time in Berlin), runs the DAG
for that week with ``airflow dags test``, prints a table per day and exits 0 only if PostHog holds every
event the transform produced. ``--standalone`` keeps the emulators running behind ``airflow standalone``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Iterator

from airflow.sdk import ObjectStoragePath

from matomo_posthog.config import SiteConfig, load_config
from matomo_posthog.steps import format_table
from matomo_posthog.storage import day_files, read_json, read_ndjson_gz
from matomo_posthog.windows import days_between

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEMO_CONFIG = ROOT / "include" / "demo.toml"
WEEK = ("2024-03-25", "2024-03-31")
MATOMO_TOKEN = "demo-matomo-token-5f1c9e2a7b3d"
POSTHOG_KEY = "phc_demo_project_key_8c4e1a9f"


@contextmanager
def emulator(*args: str, secrets: dict[str, str] | None = None) -> Iterator[str]:
    """Start ``matomo-posthog emulate ...`` and yield its URL; stop it on the way out.

    ``secrets`` go in through the environment, where the process list does not show them.
    """
    process = subprocess.Popen(
        [str(BIN / "matomo-posthog"), "emulate", *args, "--port", "0"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, **(secrets or {})},
    )
    try:
        line = process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"emulator {args[0]} did not start (exit {process.poll()})")
        yield line.rsplit(" ", 1)[-1].strip()
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def demo_emulators(site: SiteConfig) -> Iterator[tuple[str, str]]:
    """Both emulators, the Matomo one serving the generated demo week of ``site``; yields their URLs."""
    matomo_args = ["--site-id", str(site.site_id), "--timezone", site.timezone, "--seed", "7",
                   "--start", WEEK[0], "--end", WEEK[1], "--visits-per-day", "25"]
    with emulator("matomo", *matomo_args, secrets={"MATOMO_EMULATOR_TOKEN": MATOMO_TOKEN}) as matomo_url, \
            emulator("posthog", secrets={"POSTHOG_EMULATOR_API_KEY": POSTHOG_KEY}) as posthog_url:
        yield matomo_url, posthog_url


def airflow_env(home: Path, matomo_url: str, posthog_url: str) -> dict[str, str]:
    """Environment for the Airflow commands: a private home, this project's DAGs and the demo connections."""
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "MATOMO_POSTHOG_CONFIG": str(DEMO_CONFIG),
        "AIRFLOW_CONN_MATOMO_DEFAULT": json.dumps({"conn_type": "http", "host": matomo_url, "password": MATOMO_TOKEN}),
        "AIRFLOW_CONN_POSTHOG_DEFAULT": json.dumps({"conn_type": "http", "host": posthog_url, "password": POSTHOG_KEY}),
    }


def airflow(env: dict[str, str], *args: str, quiet: bool = True) -> None:
    """Run an ``airflow`` command, failing loudly with its output if it fails."""
    result = subprocess.run(
        [str(BIN / "airflow"), *args], env=env, text=True,
        stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT if quiet else None,
    )
    if result.returncode:
        if quiet:
            print(result.stdout[-5000:])
        raise SystemExit(f"airflow {args[0]} failed with exit status {result.returncode}")


def prepare_airflow(env: dict[str, str], site: SiteConfig) -> None:
    """Create the Airflow database and the pool that caps calls to Matomo."""
    airflow(env, "db", "migrate")
    airflow(env, "pools", "set", site.matomo_pool, str(site.matomo_pool_slots), "calls to one Matomo")


def accepted_uuids(posthog_url: str) -> set[str]:
    """The uuids the PostHog emulator holds."""
    with urllib.request.urlopen(f"{posthog_url}/_emulator/events", timeout=30) as response:
        return {event["uuid"] for event in json.load(response)}


def demo_table(posthog_url: str, site: SiteConfig) -> tuple[str, bool]:
    """Per day: visits in Matomo, events produced, events PostHog holds; and whether they all match."""
    held = accepted_uuids(posthog_url)
    rows, complete = [], True
    for day in days_between(date.fromisoformat(WEEK[0]), date.fromisoformat(WEEK[1])):
        files = day_files(ObjectStoragePath(site.storage), site.site_id, day)
        report = read_json(files.report, default={})
        produced = [event["uuid"] for event in read_ndjson_gz(files.events)] if files.events.exists() else []
        in_posthog = sum(1 for uuid in produced if uuid in held)
        complete &= bool(produced) and in_posthog == len(produced)
        rows.append([day.isoformat(), report.get("extract", {}).get("matomo_visits", "-"), len(produced), in_posthog])
    return format_table(rows, ("day", "visits in Matomo", "events produced", "accepted by PostHog")), complete


def main(argv: list[str] | None = None) -> int:
    """Run the demo (or, with ``--standalone``, the Airflow UI with the demo set up)."""
    parser = argparse.ArgumentParser(prog="make demo")
    parser.add_argument("--standalone", action="store_true", help="run airflow standalone instead of one DAG run")
    args = parser.parse_args(argv)
    home = ROOT / ".airflow" / ("standalone" if args.standalone else "demo")
    home.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(ROOT / "include" / "data" / "demo", ignore_errors=True)
    site = load_config(DEMO_CONFIG)[0]
    with demo_emulators(site) as (matomo_url, posthog_url):
        print(f"Matomo emulator at {matomo_url}, PostHog emulator at {posthog_url}")
        env = airflow_env(home, matomo_url, posthog_url)
        prepare_airflow(env, site)
        if args.standalone:
            print("Starting Airflow on http://127.0.0.1:8080 (admin password in "
                  f"{home / 'simple_auth_manager_passwords.json.generated'}); Ctrl-C stops everything.")
            subprocess.run([str(BIN / "airflow"), "standalone"], env=env)
            return 0
        conf = json.dumps({"start": WEEK[0], "end": WEEK[1]})
        print(f"Running {site.dag_id} for {WEEK[0]} .. {WEEK[1]} with airflow dags test ...")
        airflow(env, "dags", "test", site.dag_id, "2024-04-01", "--conf", conf)
        table, complete = demo_table(posthog_url, site)
    print(table)
    print("Every produced event is in PostHog." if complete else "Some produced events are missing from PostHog.")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
