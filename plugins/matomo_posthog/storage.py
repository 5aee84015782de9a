"""Where each day's files live, and how they are written and read.

Layout under the storage root (any ``ObjectStoragePath`` or ``pathlib.Path``)::

    site=<id>/<YYYY-MM-DD>/visits.ndjson.gz     raw Matomo visits, one per line
    site=<id>/<YYYY-MM-DD>/events.ndjson.gz     PostHog events, one per line
    site=<id>/<YYYY-MM-DD>/report.json          what each step counted
    site=<id>/<YYYY-MM-DD>/load-checkpoint.json how far the load got

Files are written to a temporary name and renamed into place, so a killed task never leaves a half file
under the real name; gzip headers carry no timestamp, so the same records always give the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, Iterable, Iterator


class StorageError(Exception):
    """A stored file is missing or unreadable; the message names the file and the line."""


@dataclass(frozen=True)
class DayFiles:
    """The files of one site-local day of one site."""

    folder: Any

    @property
    def visits(self):
        return self.folder / "visits.ndjson.gz"

    @property
    def events(self):
        return self.folder / "events.ndjson.gz"

    @property
    def report(self):
        return self.folder / "report.json"

    @property
    def checkpoint(self):
        return self.folder / "load-checkpoint.json"


def day_files(root: Any, site_id: int, day: date | str) -> DayFiles:
    """The files of ``day`` for ``site_id`` under the storage root."""
    day_text = day if isinstance(day, str) else day.isoformat()
    return DayFiles(root / f"site={site_id}" / day_text)


@contextmanager
def _atomic_file(path: Any) -> Iterator[Any]:
    """A binary file written under a temporary name, renamed to ``path`` only once the block completes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.partial"
    try:
        with temporary.open("wb") as raw:
            yield raw
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    temporary.replace(path)


class NdjsonWriter:
    """Streams records into a gzip NDJSON file that appears under its name only once it is complete.

    Use it as a context manager: an exception inside the block drops the partial file, and the real name
    keeps whatever it had before.
    """

    def __init__(self, path: Any):
        self.path = path
        self.count = 0
        self._files = ExitStack()
        raw = self._files.enter_context(_atomic_file(path))
        unzipped = gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=0)
        self._text = self._files.enter_context(io.TextIOWrapper(unzipped, encoding="utf-8", newline="\n"))

    def write(self, record: dict) -> None:
        """Append one record as a line of compact JSON."""
        self._text.write(json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False))
        self._text.write("\n")
        self.count += 1

    def __enter__(self) -> "NdjsonWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._files.__exit__(exc_type, exc, tb)


def write_ndjson_gz(path: Any, records: Iterable[dict]) -> int:
    """Write records to a gzip NDJSON file; returns how many were written."""
    with NdjsonWriter(path) as writer:
        for record in records:
            writer.write(record)
    return writer.count


def read_ndjson_gz(path: Any) -> Iterator[dict]:
    """Yield the records of a gzip NDJSON file one at a time."""
    if not path.exists():
        raise StorageError(f"{path} does not exist; the step that writes it has not run for this day")
    with path.open("rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
        for number, line in enumerate(io.TextIOWrapper(unzipped, encoding="utf-8"), start=1):
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise StorageError(f"{path}: line {number} is not valid JSON ({exc.msg})") from None


def count_records(path: Any) -> int:
    """How many records a gzip NDJSON file holds, without decoding them."""
    count = 0
    with path.open("rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
        for block in iter(lambda: unzipped.read(1 << 20), b""):
            count += block.count(b"\n")
    return count


def file_digest(path: Any) -> str:
    """SHA-256 of a file's bytes, to tell whether a checkpoint still belongs to it."""
    digest = hashlib.sha256()
    with path.open("rb") as raw:
        for block in iter(lambda: raw.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: Any, default: Any = None) -> Any:
    """A small JSON file's content, or ``default`` when it does not exist."""
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise StorageError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None


def write_json(path: Any, content: Any) -> None:
    """Replace a small JSON file in one step."""
    data = json.dumps(content, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")
    with _atomic_file(path) as raw:
        raw.write(data)


def update_report(files: DayFiles, section: str, content: dict) -> dict:
    """Set one step's section of the day's report, keeping the other steps' sections."""
    report = read_json(files.report, default={})
    report[section] = content
    write_json(files.report, report)
    return report
