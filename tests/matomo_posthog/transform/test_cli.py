import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from matomo_posthog.transform import cli

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"


@pytest.fixture
def fixture_path(fixture_files):
    def find(prefix):
        return next(path for path in fixture_files if path.name.startswith(prefix))

    return find


def parse(*argv):
    parser = argparse.ArgumentParser(prog="matomo-posthog")
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["transform", *argv])


def test_register_adds_the_transform_subcommand():
    args = parse("--site-id", "2", "--timezone", "UTC+14", "--currency", "EUR", "visits.json")
    assert (args.site_id, args.timezone, args.currency, args.mapping, args.file) == (
        2, "UTC+14", "EUR", None, "visits.json"
    )
    assert args.func is cli.run


def test_events_go_to_stdout_as_ndjson_and_the_summary_to_stderr(capsys, fixture_path):
    status = cli.run(parse("--site-id", "1", "--timezone", "UTC", str(fixture_path("test_UserId_VisitorId"))))

    out, err = capsys.readouterr()
    assert status == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert len(events) == 30
    assert {e["event"] for e in events} == {"$pageview", "$pageleave", "$identify", "Cart Abandoned"}
    assert "8 visits, 14 actions -> 30 events (13 from actions, 17 extra)" in err
    assert "goal" in err and "visits with errors: 0" in err


def test_the_mapping_file_is_applied(capsys, fixture_path, tmp_path):
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"emit_goals": True, "event_names": {"pageleave": "Page Left"}}))

    cli.run(parse("--site-id", "1", "--timezone", "UTC", "--mapping", str(mapping),
                  str(fixture_path("test_UserId_VisitorId"))))

    names = {json.loads(line)["event"] for line in capsys.readouterr().out.splitlines()}
    assert {"Goal Converted", "Page Left"} <= names and "$pageleave" not in names


def test_visit_errors_are_listed_on_stderr_and_do_not_fail_the_run(capsys, tmp_path):
    export = tmp_path / "visits.json"
    export.write_text(json.dumps([{"idVisit": 1, "actionDetails": [{"type": "action", "timestamp": "x"}]}, "bad"]))

    assert cli.run(parse("--site-id", "1", "--timezone", "UTC", str(export))) == 0

    err = capsys.readouterr().err
    assert "visits with errors: 2" in err
    assert "visit 1: actionDetails[0].timestamp is not a number" in err
    assert "bad_timestamp" in err


@pytest.mark.parametrize("content, message", [
    (None, "cannot read the file"),
    ("{not json", "not valid JSON"),
    ('{"idVisit": 1}', "not a JSON array of visits"),
    ('{"result": "error", "message": "You can\'t access this resource"}', "Matomo answered with an error"),
])
def test_an_unusable_file_exits_2_with_one_line_naming_it(capsys, tmp_path, content, message):
    export = tmp_path / "visits.json"
    if content is not None:
        export.write_text(content)

    assert cli.run(parse("--site-id", "1", "--timezone", "UTC", str(export))) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and str(export) in err and message in err


@pytest.mark.parametrize("argv, message", [
    (["--timezone", "Mars/Olympus"], "site timezone"),
    (["--timezone", "UTC", "--mapping", "/nonexistent/mapping.json"], "mapping.json: cannot read"),
])
def test_bad_options_exit_2(capsys, tmp_path, argv, message):
    export = tmp_path / "visits.json"
    export.write_text("[]")
    assert cli.run(parse("--site-id", "1", *argv, str(export))) == 2
    assert message in capsys.readouterr().err


def test_the_command_runs_as_a_program(fixture_path):
    completed = subprocess.run(
        [sys.executable, "-m", "matomo_posthog.transform.cli", "--site-id", "2", "--timezone", "UTC+14",
         str(fixture_path("test_utcPlus"))],
        capture_output=True, text=True, encoding="utf-8", env={**os.environ, "PYTHONPATH": str(PLUGINS)},
    )

    assert completed.returncode == 0, completed.stderr
    events = [json.loads(line) for line in completed.stdout.splitlines()]
    pageviews = {e["properties"]["matomo_visit_id"]: e["timestamp"] for e in events if e["event"] == "$pageview"}
    assert pageviews[6] == "2010-01-31T16:00:00.000000+00:00"
    assert "3 visits, 3 actions" in completed.stderr


def test_the_program_exits_2_on_a_missing_file(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "matomo_posthog.transform.cli", "--site-id", "1", "--timezone", "UTC",
         str(tmp_path / "missing.json")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(PLUGINS)},
    )
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.strip() == (
        f"matomo-posthog transform: {tmp_path / 'missing.json'}: cannot read the file (No such file or directory)"
    )
