"""The DAG file parses into one DAG per configured site, with no connection defined."""

import os
from datetime import datetime, timedelta, timezone

import pytest
from airflow.dag_processing.dagbag import DagBag

ROOT_DAGS = os.environ["AIRFLOW__CORE__DAGS_FOLDER"]


@pytest.fixture
def dagbag(monkeypatch, tmp_path):
    for name in [n for n in os.environ if n.startswith("AIRFLOW_CONN_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "sites.toml"
    config.write_text(
        '[[sites]]\nsite_id = 1\ntimezone = "Europe/Berlin"\nstart_date = "2024-01-01"\n'
        '[[sites]]\nsite_id = 7\ntimezone = "UTC+5.5"\nstart_date = "2023-06-01"\n'
    )
    monkeypatch.setenv("MATOMO_POSTHOG_CONFIG", str(config))
    return DagBag(dag_folder=ROOT_DAGS)


def test_dag_file_has_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_one_dag_per_site_in_its_own_timezone(dagbag):
    assert set(dagbag.dag_ids) == {"matomo_to_posthog_site_1", "matomo_to_posthog_site_7"}
    berlin = dagbag.dags["matomo_to_posthog_site_1"]
    assert berlin.timetable.expression == "0 0 * * *"
    assert str(berlin.timetable.timezone.name) == "Europe/Berlin"
    assert berlin.start_date == datetime(2023, 12, 31, 23, tzinfo=timezone.utc)
    kolkata = dagbag.dags["matomo_to_posthog_site_7"]
    assert kolkata.timetable.timezone.utcoffset(None) == timedelta(hours=5, minutes=30)
    assert kolkata.start_date == datetime(2023, 5, 31, 18, 30, tzinfo=timezone.utc)


def test_each_day_runs_extract_transform_load_then_a_report(dagbag):
    dag = dagbag.dags["matomo_to_posthog_site_1"]
    assert set(dag.task_ids) == {"plan", "day.wait_until_final", "day.extract", "day.transform", "day.load", "report"}
    assert dag.get_task("day.extract").upstream_task_ids == {"day.wait_until_final"}
    assert dag.get_task("day.transform").upstream_task_ids == {"day.extract"}
    assert dag.get_task("day.load").upstream_task_ids == {"day.transform"}
    assert dag.get_task("report").trigger_rule == "all_done"
    assert dag.get_task("day.extract").pool == "matomo_api"
    assert set(dag.params) == {"start", "end", "dry_run", "reload"}
