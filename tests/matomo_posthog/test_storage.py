import gzip
import json
from datetime import date

import pytest

from matomo_posthog.storage import (
    NdjsonWriter,
    StorageError,
    count_records,
    day_files,
    file_digest,
    read_json,
    read_ndjson_gz,
    update_report,
    write_ndjson_gz,
)


def test_day_files_follow_the_documented_layout(tmp_path):
    files = day_files(tmp_path, 3, date(2024, 3, 31))
    assert files.visits == tmp_path / "site=3" / "2024-03-31" / "visits.ndjson.gz"
    assert files.events.name == "events.ndjson.gz"
    assert files.report.name == "report.json"


def test_records_round_trip_through_gzip_ndjson(tmp_path):
    path = tmp_path / "a" / "events.ndjson.gz"
    records = [{"n": 1, "text": "La fiancée de l'eau"}, {"n": 2, "nested": {"x": [1, 2]}}]
    assert write_ndjson_gz(path, records) == 2
    assert list(read_ndjson_gz(path)) == records
    assert count_records(path) == 2


def test_same_records_give_the_same_bytes(tmp_path):
    write_ndjson_gz(tmp_path / "one.gz", [{"a": 1}])
    write_ndjson_gz(tmp_path / "two.gz", [{"a": 1}])
    assert file_digest(tmp_path / "one.gz") == file_digest(tmp_path / "two.gz")


def test_failed_write_leaves_the_previous_file_untouched(tmp_path):
    path = tmp_path / "visits.ndjson.gz"
    write_ndjson_gz(path, [{"old": True}])
    with pytest.raises(RuntimeError):
        with NdjsonWriter(path) as writer:
            writer.write({"new": True})
            raise RuntimeError("the task died")
    assert list(read_ndjson_gz(path)) == [{"old": True}]
    assert [p.name for p in tmp_path.iterdir()] == ["visits.ndjson.gz"]


def test_missing_file_names_itself(tmp_path):
    with pytest.raises(StorageError, match="events.ndjson.gz does not exist"):
        list(read_ndjson_gz(tmp_path / "events.ndjson.gz"))


def test_corrupt_line_is_named_by_number(tmp_path):
    path = tmp_path / "events.ndjson.gz"
    path.write_bytes(gzip.compress(b'{"ok": 1}\n{not json\n'))
    with pytest.raises(StorageError, match="line 2"):
        list(read_ndjson_gz(path))


def test_report_sections_are_kept_when_another_step_writes(tmp_path):
    files = day_files(tmp_path, 1, "2024-01-01")
    update_report(files, "extract", {"visits_extracted": 3})
    update_report(files, "transform", {"events": 9})
    assert read_json(files.report) == {"extract": {"visits_extracted": 3}, "transform": {"events": 9}}
    assert json.loads(files.report.read_text())["transform"]["events"] == 9
