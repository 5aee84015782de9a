"""Test-wide Airflow settings, applied before any test imports Airflow.

Airflow reads its home and DAG folder when first imported, so they are set here at collection time: a
private temporary home (its database is created only by the tests that need one) and this project's DAGs.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="matomo-posthog-airflow-"))

os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db():
    """An initialised Airflow metadata database in the test home."""
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True,
                   capture_output=True, env=os.environ)
    return AIRFLOW_HOME


@pytest.fixture(scope="session")
def fixtures_dir():
    """Real Matomo outputs shipped beside the project."""
    return SHARED / "fixtures" / "matomo"


class FakeTime:
    """A clock that only moves when the code under test sleeps: retries and pacing without real waiting."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    clock = __call__

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time():
    """A fresh fake clock with its sleep."""
    return FakeTime()


@pytest.fixture
def connection(monkeypatch):
    """Define an Airflow connection for the test through its ``AIRFLOW_CONN_*`` variable."""

    def define(conn_id, host, password=None):
        fields = {"conn_type": "http", "host": host, **({"password": password} if password else {})}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))

    return define
