"""A local stand-in for PostHog's capture endpoint, strict where real PostHog is strict.

It follows PostHog's capture service (``rust/capture``) so that a loader tested against it behaves the same
against PostHog: a batch with one bad event is refused whole, an oversized event is refused after the events
before it were taken, distinct_ids are truncated, unparseable timestamps silently become the receive time,
and events collapse on PostHog's deduplication key. Standard library only; listens on 127.0.0.1.

Capture endpoints (``/batch/``, ``/batch``, ``/e/``, ``/capture/``)
    ``POST`` a JSON body ``{"api_key": "...", "batch": [event, ...], "historical_migration": true,
    "sent_at": "..."}``, gzip-compressed or not (detected from the bytes). Answers ``200 {"status": "Ok"}``;
    ``400`` for a body or any event that does not parse or validate (nothing stored); ``401`` for a missing,
    wrong or personal (``phx_``) key; ``413`` for a body over ``max_body_bytes`` (nothing stored) or an event
    over ``max_event_bytes`` (the events before it are stored). Errors are JSON with ``type``, ``status``,
    ``code``, ``error`` and ``detail``; the message names the offending event's index and uuid.

Read and control endpoints (no key needed: the server only listens on loopback)
    ``GET /_emulator/events[?event=NAME][&distinct_id=ID]``
        deduplicated events, oldest first: ``[{"uuid", "event", "distinct_id", "timestamp", "properties"}]``.
        ``timestamp`` is the time PostHog would store, in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.
    ``GET /_emulator/summary``
        ``{"events", "deliveries", "distinct_uuids", "batches", "by_day", "by_event", "duplicates",
        "non_historical_batches", "timestamps_replaced"}``: ``events``, ``by_day`` (UTC day of the timestamp)
        and ``by_event`` count deduplicated events; ``duplicates`` is the number of uuids delivered more than
        once.
    ``GET /_emulator/deliveries``
        ``{uuid: number of accepted deliveries}``.
    ``POST /_emulator/faults``
        a fault object or a list of them, queued; each answers the next capture request(s) instead of the
        normal behaviour: ``{"status": 429, "retry_after": 2}`` (nothing stored), ``{"drop": true}`` (the
        connection closes without an answer), ``{"accept_then_drop": true}`` (processed and stored, then the
        connection closes without an answer), ``{"delay": 0.5}`` (answers late; combines with the others).
        ``"times": n`` (default 1) repeats a fault for n requests.
    ``POST /_emulator/reset``
        forgets all events, deliveries and queued faults.

Every accepted event is kept in the SQLite table ``deliveries`` (one row per delivery, with its batch number,
receive time, the batch's ``historical_migration`` flag and the event's JSON as received); the view ``events``
keeps the latest delivery per deduplication key: uuid, event name, distinct_id and UTC day of the timestamp.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
import uuid as uuidlib
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import SplitResult, parse_qs, urlsplit

from matomo_posthog.emulators.loopback import require_loopback

log = logging.getLogger(__name__)

DEFAULT_MAX_EVENT_BYTES = 1_000_000
DEFAULT_MAX_BODY_BYTES = 20_000_000
MAX_DISTINCT_ID_CHARS = 200
CAPTURE_PATHS = frozenset({"/batch/", "/batch", "/e/", "/capture/"})

_GZIP_MAGIC = b"\x1f\x8b"
# PostHog clamps events more than 23 hours in the future to the receive time.
_FUTURE_CUTOFF = timedelta(hours=23)
_READ_CHUNK = 1 << 16
_FAULT_KEYS = frozenset({"status", "retry_after", "drop", "accept_then_drop", "delay", "times"})

_HYPHENATED_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SIMPLE_UUID = re.compile(r"[0-9a-fA-F]{32}")
_ISO_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?"
)
_EPOCH_TIMESTAMP = re.compile(r"\d{10}|\d{13}")


class CaptureError(Exception):
    """A capture request refused with an HTTP status, a machine-readable code and a message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        """The JSON error body: PostHog's ``status``/``code``/``error`` plus ``detail``, which the SDK reads."""
        return {
            "type": _error_type(self.status),
            "status": self.status,
            "code": self.code,
            "error": self.message,
            "detail": self.message,
        }


def _error_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 429:
        return "throttled"
    return "server_error" if status >= 500 else "validation_error"


# ---------------------------------------------------------------------------------------------------------
# Pure validation and normalisation, shared by the server and by callers that want to pre-check events.
# ---------------------------------------------------------------------------------------------------------


def validate_event(event: Any) -> str | None:
    """Check one event as PostHog capture does: None when it would be accepted, else a short reason.

    Size is not checked here (it depends on the server's ``max_event_bytes``; see :func:`event_size`).
    """
    if not isinstance(event, dict):
        return "event is not a JSON object"
    name = event.get("event")
    if not isinstance(name, str):
        return "event name is missing or not a string"
    if not name:
        return "event submitted with an empty event name"
    reason = _distinct_id_problem(event)
    if reason:
        return reason
    # PostHog treats a null uuid as absent and assigns one.
    if event.get("uuid") is not None and parse_uuid(event["uuid"]) is None:
        return f"uuid {event['uuid']!r} is not a valid UUID"
    if "properties" in event and not isinstance(event["properties"], dict):
        return "properties is not a JSON object"
    for key in ("$set", "$set_once"):
        if event.get(key) is not None and not isinstance(event[key], dict):
            return f"{key} is not a JSON object"
    if event.get("timestamp") is not None and not isinstance(event["timestamp"], str):
        return "timestamp is not a string"
    offset = event.get("offset")
    if offset is not None and (isinstance(offset, bool) or not isinstance(offset, int)):
        return "offset is not an integer"
    return None


def _distinct_id_problem(event: dict[str, Any]) -> str | None:
    if event.get("distinct_id") is None:
        return "event submitted without a distinct_id"
    value = event["distinct_id"]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return "distinct_id is neither a string nor a number"
    if not normalise_distinct_id(value):
        return "event submitted with an empty distinct_id"
    return None


def normalise_distinct_id(value: str | int | float) -> str:
    """The distinct_id PostHog stores: numbers as text, NUL replaced, cut to 200 characters."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace("\0", "\ufffd")[:MAX_DISTINCT_ID_CHARS]


def parse_uuid(value: Any) -> str | None:
    """The canonical lowercase form of a UUID in a form PostHog accepts, or None when it is not one."""
    if not isinstance(value, str):
        return None
    text = value
    if text.startswith("urn:uuid:"):
        text = text[len("urn:uuid:") :]
    elif text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if not (_HYPHENATED_UUID.fullmatch(text) or _SIMPLE_UUID.fullmatch(text)):
        return None
    return str(uuidlib.UUID(text))


def parse_timestamp(text: str) -> datetime | None:
    """A UTC datetime for an ISO 8601 or epoch (s or ms) timestamp, or None when it does not parse.

    Without a zone the time is taken as UTC, as PostHog does.
    """
    text = text.strip()
    if _EPOCH_TIMESTAMP.fullmatch(text):
        seconds = int(text) / (1000 if len(text) == 13 else 1)
        return datetime.fromtimestamp(seconds, timezone.utc)
    match = _ISO_TIMESTAMP.fullmatch(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    clock = [int(part or 0) for part in (hour, minute, second)]
    microseconds = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        parsed = datetime(int(year), int(month), int(day), *clock, microseconds, tzinfo=_parse_zone(zone))
        return parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


def _parse_zone(zone: str | None) -> timezone:
    if zone is None or zone in ("Z", "z"):
        return timezone.utc
    digits = zone[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
    return timezone(-offset if zone[0] == "-" else offset)


def event_size(event: dict[str, Any]) -> int:
    """Bytes of the event's compact JSON serialisation, the size compared with ``max_event_bytes``."""
    return len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def format_timestamp(moment: datetime) -> str:
    """UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``: fixed width, so text order is time order."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class ResolvedTimestamp:
    """The time PostHog stores for an event and where it came from."""

    moment: datetime
    source: str  # "timestamp", "sent_at_skew", "offset" or "now"
    replaced: bool  # a timestamp was sent but the receive time was stored instead


def resolve_timestamp(event: dict[str, Any], sent_at: datetime | None, now: datetime) -> ResolvedTimestamp:
    """Compute the stored time as PostHog does.

    A parsed timestamp is corrected for clock skew (``sent_at`` minus receive time) unless the event sets
    ``$ignore_sent_at: true``; an ``offset`` in milliseconds wins over both; an unparseable timestamp becomes
    the receive time, as does one more than 23 hours in the future.
    """
    raw = event.get("timestamp")
    parsed = parse_timestamp(raw) if isinstance(raw, str) else None
    moment, source = now, "now"
    if parsed is not None:
        ignore_sent_at = event.get("properties", {}).get("$ignore_sent_at") is True
        if sent_at is not None and not ignore_sent_at:
            moment, source = parsed - (sent_at - now), "sent_at_skew"
        else:
            moment, source = parsed, "timestamp"
    if event.get("offset") is not None:
        moment, source = now - timedelta(milliseconds=event["offset"]), "offset"
    too_far_ahead = moment - now > _FUTURE_CUTOFF
    replaced = isinstance(raw, str) and source != "offset" and (parsed is None or too_far_ahead)
    return ResolvedTimestamp(now if too_far_ahead else moment, source, replaced)


# ---------------------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    historical_migration INTEGER NOT NULL,
    uuid TEXT NOT NULL,
    uuid_generated INTEGER NOT NULL,
    event TEXT NOT NULL,
    distinct_id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    day TEXT NOT NULL,
    timestamp_source TEXT NOT NULL,
    timestamp_replaced INTEGER NOT NULL,
    properties TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_dedup_key ON deliveries (uuid, event, distinct_id, day);
-- PostHog keeps the latest copy of events that share the deduplication key.
CREATE VIEW IF NOT EXISTS events AS
    SELECT * FROM deliveries
    WHERE id IN (SELECT MAX(id) FROM deliveries GROUP BY uuid, event, distinct_id, day);
"""

_INSERT = """
INSERT INTO deliveries (batch, received_at, historical_migration, uuid, uuid_generated, event, distinct_id,
                        timestamp, day, timestamp_source, timestamp_replaced, properties, data)
VALUES (:batch, :received_at, :historical_migration, :uuid, :uuid_generated, :event, :distinct_id,
        :timestamp, :day, :timestamp_source, :timestamp_replaced, :properties, :data)
"""


class _Store:
    """SQLite storage behind one connection, serialised by a lock so handler threads can share it."""

    def __init__(self, path: str):
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.executescript(_SCHEMA)

    def insert_batch(self, rows: list[dict[str, Any]], historical_migration: bool) -> None:
        """Store the rows as one new batch, numbered after the last one."""
        with self._lock, self._db:
            (last,) = self._db.execute("SELECT COALESCE(MAX(batch), 0) FROM deliveries").fetchone()
            extra = {"batch": last + 1, "historical_migration": int(historical_migration)}
            self._db.executemany(_INSERT, [{**row, **extra} for row in rows])

    def events(self, event: str | None = None, distinct_id: str | None = None) -> list[dict[str, Any]]:
        """Deduplicated events, oldest first, optionally filtered by name and distinct_id."""
        sql = "SELECT uuid, event, distinct_id, timestamp, properties FROM events WHERE 1=1"
        params: list[str] = []
        for column, value in (("event", event), ("distinct_id", distinct_id)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        rows = self._query(sql + " ORDER BY timestamp, uuid, id", params)
        return [
            {"uuid": u, "event": e, "distinct_id": d, "timestamp": t, "properties": json.loads(p)}
            for u, e, d, t, p in rows
        ]

    def summary(self) -> dict[str, Any]:
        """Counts over everything stored; see the module docstring."""
        one = self._scalar
        return {
            "events": one("SELECT COUNT(*) FROM events"),
            "deliveries": one("SELECT COUNT(*) FROM deliveries"),
            "distinct_uuids": one("SELECT COUNT(DISTINCT uuid) FROM deliveries"),
            "batches": one("SELECT COUNT(DISTINCT batch) FROM deliveries"),
            "by_day": dict(self._query("SELECT day, COUNT(*) FROM events GROUP BY day ORDER BY day")),
            "by_event": dict(self._query("SELECT event, COUNT(*) FROM events GROUP BY event ORDER BY event")),
            "duplicates": one("SELECT COUNT(*) FROM (SELECT uuid FROM deliveries GROUP BY uuid HAVING COUNT(*) > 1)"),
            "non_historical_batches": one(
                "SELECT COUNT(DISTINCT batch) FROM deliveries WHERE historical_migration = 0"
            ),
            "timestamps_replaced": one("SELECT COUNT(*) FROM deliveries WHERE timestamp_replaced = 1"),
        }

    def deliveries(self) -> dict[str, int]:
        """Accepted deliveries per uuid."""
        return dict(self._query("SELECT uuid, COUNT(*) FROM deliveries GROUP BY uuid ORDER BY uuid"))

    def reset(self) -> None:
        """Forget every delivery."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM deliveries")

    def close(self) -> None:
        """Close the connection; later calls fail."""
        with self._lock:
            self._db.close()

    def _scalar(self, sql: str) -> int:
        return self._query(sql)[0][0]

    def _query(self, sql: str, params: list[str] | tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()


# ---------------------------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------------------------


def check_fault(fault: Any) -> dict[str, Any]:
    """Validate a fault object (see the module docstring) and return it with ``times`` filled in."""
    if not isinstance(fault, dict) or not fault:
        raise ValueError(f"a fault must be a non-empty JSON object, got {fault!r}")
    unknown = set(fault) - _FAULT_KEYS
    if unknown:
        raise ValueError(f"unknown fault keys {sorted(unknown)}; allowed: {sorted(_FAULT_KEYS)}")
    actions = [key for key in ("status", "drop", "accept_then_drop") if fault.get(key) not in (None, False)]
    if len(actions) > 1:
        raise ValueError(f"a fault does one of status, drop, accept_then_drop; got {actions}")
    if not actions and fault.get("delay") is None:
        raise ValueError("a fault needs status, drop, accept_then_drop or delay")
    status = fault.get("status")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599):
        raise ValueError(f"fault status must be an HTTP error status (400-599), got {status!r}")
    if fault.get("retry_after") is not None and status is None:
        raise ValueError("retry_after only goes with a status fault")
    for key in ("retry_after", "delay"):
        if fault.get(key) is not None and not _is_non_negative_number(fault[key]):
            raise ValueError(f"fault {key} must be a non-negative number of seconds, got {fault[key]!r}")
    times = fault.get("times", 1)
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise ValueError(f"fault times must be a positive integer, got {times!r}")
    return {**fault, "times": times}


def _is_non_negative_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value >= 0


class _FaultQueue:
    """Faults waiting for capture requests, each used ``times`` times in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[dict[str, Any]] = []

    def add(self, fault: dict[str, Any]) -> None:
        checked = check_fault(fault)
        with self._lock:
            self._queue.append(checked)

    def take(self) -> dict[str, Any] | None:
        """The fault for this request, or None for normal behaviour."""
        with self._lock:
            if not self._queue:
                return None
            head = self._queue[0]
            head["times"] -= 1
            if head["times"] == 0:
                self._queue.pop(0)
            return head

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()


# ---------------------------------------------------------------------------------------------------------
# Capture processing
# ---------------------------------------------------------------------------------------------------------


@dataclass
class _Reply:
    """An HTTP answer: status, JSON body and extra headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


_OK = {"status": "Ok"}


def _decode_body(raw: bytes, content_encoding: str | None, max_body_bytes: int) -> dict[str, Any]:
    """Decompress (gzip is recognised by its magic bytes) and parse the JSON object body, or raise CaptureError."""
    if raw.startswith(_GZIP_MAGIC):
        raw = _gunzip(raw, max_body_bytes)
    elif (content_encoding or "").strip().lower() == "gzip":
        raise CaptureError(400, "invalid_gzip", "failed to decode request: Content-Encoding is gzip, body is not")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CaptureError(400, "invalid_body_encoding", f"failed to decode request: not UTF-8 ({exc})") from None
    try:
        # serde_json, which PostHog parses with, rejects NaN and Infinity.
        payload = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise CaptureError(400, "invalid_json", f"failed to parse request: {exc}") from None
    if not isinstance(payload, dict):
        raise CaptureError(400, "invalid_payload", "failed to parse request: body is not a JSON object")
    return payload


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _gunzip(raw: bytes, max_body_bytes: int) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        # Bounded, so a small body that inflates hugely is refused like a big one.
        data = inflater.decompress(raw, max_body_bytes + 1)
    except zlib.error as exc:
        raise CaptureError(400, "invalid_gzip", f"failed to decode request: invalid gzip data ({exc})") from None
    if len(data) > max_body_bytes:
        raise CaptureError(413, "payload_too_large", f"request body inflates to over {max_body_bytes} bytes")
    if not inflater.eof:
        raise CaptureError(400, "invalid_gzip", "failed to decode request: truncated gzip data")
    return data


def _check_api_key(payload: dict[str, Any], api_key: str) -> None:
    """Raise 401 unless the batch carries the emulator's project key."""
    key = payload.get("api_key")
    if not isinstance(key, str) or not key:
        raise CaptureError(401, "no_token", "event submitted without an api_key")
    if key.startswith("phx_"):
        raise CaptureError(401, "personal_api_key", "API key is not valid: personal_api_key")
    if key != api_key:
        raise CaptureError(401, "invalid_api_key", "API key is not valid: not this project's key")


def _batch_events(payload: dict[str, Any]) -> list[Any]:
    """The events of a ``{"batch": [...]}`` body, or raise 400."""
    events = payload.get("batch")
    if not isinstance(events, list):
        raise CaptureError(400, "invalid_payload", "failed to parse request: 'batch' is not a list")
    if payload.get("historical_migration") is not None and not isinstance(payload["historical_migration"], bool):
        raise CaptureError(400, "invalid_payload", "failed to parse request: 'historical_migration' is not a bool")
    if not events:
        raise CaptureError(400, "empty_batch", "request holds no event")
    return events


def _describe(index: int, event: Any) -> str:
    uuid = event.get("uuid") if isinstance(event, dict) else None
    return f"event {index} (uuid {uuid})" if uuid is not None else f"event {index} (no uuid)"


def _validate_batch(events: list[Any]) -> None:
    """Raise 400 naming the first invalid event: one bad event refuses the whole batch."""
    for index, event in enumerate(events):
        reason = validate_event(event)
        if reason:
            raise CaptureError(400, "invalid_event", f"{_describe(index, event)}: {reason}")


def _delivery_row(event: dict[str, Any], sent_at: datetime | None, now: datetime) -> dict[str, Any]:
    """The stored form of a valid event received at ``now``."""
    canonical = parse_uuid(event.get("uuid"))
    resolved = resolve_timestamp(event, sent_at, now)
    return {
        "received_at": format_timestamp(now),
        # PostHog gives an event without a uuid a fresh one, so such events never deduplicate.
        "uuid": canonical or str(uuidlib.uuid4()),
        "uuid_generated": int(canonical is None),
        "event": event["event"],
        "distinct_id": normalise_distinct_id(event["distinct_id"]),
        "timestamp": format_timestamp(resolved.moment),
        "day": resolved.moment.date().isoformat(),
        "timestamp_source": resolved.source,
        "timestamp_replaced": int(resolved.replaced),
        "properties": json.dumps(event.get("properties", {}), ensure_ascii=False),
        "data": json.dumps(event, ensure_ascii=False),
    }


# ---------------------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------------------


class _Drop(Exception):
    """Close the connection without answering."""


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the emulator that owns the server."""

    server_version = "posthog-emulator"
    # A client that stops sending must not hold a thread forever.
    timeout = 60

    @property
    def emulator(self) -> PostHogEmulator:
        return self.server.emulator  # type: ignore[attr-defined]

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        self._answer(self._get)

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        self._answer(self._post)

    def _answer(self, route: Callable[[SplitResult], _Reply]) -> None:
        url = urlsplit(self.path)
        try:
            self._send(route(url))
        except _Drop:
            self.close_connection = True
        except CaptureError as error:
            self._send(_Reply(error.status, error.body()))
        except Exception:  # a bug here must reach the client as a 500, as a real server's would
            log.exception("posthog emulator failed on %s %s", self.command, url.path)
            self._send(_Reply(500, CaptureError(500, "internal_error", "emulator error, see its log").body()))

    def _get(self, url: SplitResult) -> _Reply:
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        if url.path == "/_emulator/events":
            return _Reply(200, self.emulator.events(query.get("event"), query.get("distinct_id")))
        if url.path == "/_emulator/summary":
            return _Reply(200, self.emulator.summary())
        if url.path == "/_emulator/deliveries":
            return _Reply(200, self.emulator.deliveries())
        if url.path in CAPTURE_PATHS:
            raise CaptureError(405, "method_not_allowed", f"{url.path} takes POST")
        raise CaptureError(404, "not_found", f"no endpoint {url.path}")

    def _post(self, url: SplitResult) -> _Reply:
        if url.path in CAPTURE_PATHS:
            return self._capture()
        if url.path == "/_emulator/faults":
            return self._add_faults()
        if url.path == "/_emulator/reset":
            self._read_body(self.emulator.max_body_bytes)
            self.emulator.reset()
            return _Reply(200, _OK)
        raise CaptureError(404, "not_found", f"no endpoint {url.path}")

    def _capture(self) -> _Reply:
        fault = self.emulator._faults.take()
        body = self._read_body(self.emulator.max_body_bytes)
        if fault and fault.get("delay"):
            time.sleep(fault["delay"])
        if fault and fault.get("status"):
            return _fault_reply(fault)
        if fault and fault.get("drop"):
            raise _Drop
        reply = self.emulator._process(body, self.headers.get("Content-Encoding"))
        if fault and fault.get("accept_then_drop"):
            raise _Drop
        return reply

    def _add_faults(self) -> _Reply:
        body = self._read_body(self.emulator.max_body_bytes)
        try:
            faults = json.loads(body or b"null")
            # Check them all first, so a bad list queues nothing.
            checked = [check_fault(fault) for fault in (faults if isinstance(faults, list) else [faults])]
        except ValueError as exc:
            raise CaptureError(400, "invalid_fault", str(exc)) from None
        for fault in checked:
            self.emulator.add_fault(**fault)
        return _Reply(200, _OK)

    def _read_body(self, limit: int) -> bytes:
        """Read the whole body; an over-limit body is drained first so the client can read the 413."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise CaptureError(411, "length_required", "send the body with a Content-Length, not chunked")
        try:
            # Without Content-Length (and not chunked) an HTTP request has no body.
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise CaptureError(400, "invalid_content_length", "Content-Length is not a number") from None
        if length < 0:
            raise CaptureError(400, "invalid_content_length", "Content-Length is negative")
        if length > limit:
            self._drain(length)
            raise CaptureError(413, "payload_too_large", f"request body of {length} bytes is over {limit} bytes")
        return self.rfile.read(length)

    def _drain(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(length, _READ_CHUNK))
            if not chunk:
                return
            length -= len(chunk)

    def _send(self, reply: _Reply) -> None:
        data = json.dumps(reply.body).encode("utf-8")
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        # Request lines carry no secrets (the key travels in the body), but stderr noise helps nobody.
        log.debug("%s " + format, self.address_string(), *args)


def _fault_reply(fault: dict[str, Any]) -> _Reply:
    status = fault["status"]
    headers = {}
    if fault.get("retry_after") is not None:
        seconds = fault["retry_after"]
        headers["Retry-After"] = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
    error = CaptureError(status, f"fault_{status}", f"injected fault: HTTP {status}")
    return _Reply(status, error.body(), headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: PostHogEmulator):
        self.emulator = emulator
        super().__init__(address, _Handler)


class PostHogEmulator:
    """A PostHog capture emulator on 127.0.0.1, for tests (in-process) and for demos (see ``posthog_cli``).

    ``PostHogEmulator(api_key)`` accepts batches sent with that project key. Use it as a context manager, or
    call ``start()`` and ``stop()``. ``events()``, ``summary()`` and ``deliveries()`` read the store directly.
    """

    def __init__(
        self,
        api_key: str,
        db_path: str = ":memory:",
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        if not api_key:
            raise ValueError("the emulator needs the project API key it should accept")
        self.api_key = api_key
        self.db_path = db_path
        self.max_event_bytes = max_event_bytes
        self.max_body_bytes = max_body_bytes
        self.host = require_loopback(host)
        self.port = port
        self._faults = _FaultQueue()
        self._store: _Store | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> PostHogEmulator:
        """Open the store and serve in a daemon thread; returns self."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._store = _Store(self.db_path)
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        # A short poll interval keeps stop() quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="posthog-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and the store."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._store.close()
        self._server = self._thread = None

    def __enter__(self) -> PostHogEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, the host to give the posthog SDK."""
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return f"http://{self.host}:{self.port}"

    def add_fault(self, **fault: Any) -> None:
        """Queue a fault for the next capture request(s), e.g. ``add_fault(status=429, retry_after=3)``."""
        self._faults.add(fault)

    def events(self, event: str | None = None, distinct_id: str | None = None) -> list[dict[str, Any]]:
        """Deduplicated events, oldest first: ``{"uuid", "event", "distinct_id", "timestamp", "properties"}``."""
        return self._running_store().events(event, distinct_id)

    def summary(self) -> dict[str, Any]:
        """Counts over stored events and deliveries (see the module docstring)."""
        return self._running_store().summary()

    def deliveries(self) -> dict[str, int]:
        """``{uuid: number of accepted deliveries}``."""
        return self._running_store().deliveries()

    def reset(self) -> None:
        """Forget all events, deliveries and queued faults."""
        self._faults.clear()
        self._running_store().reset()

    def _running_store(self) -> _Store:
        if self._store is None or self._server is None:
            raise RuntimeError("the emulator is not running")
        return self._store

    def _process(self, raw: bytes, content_encoding: str | None) -> _Reply:
        """Answer one capture request body, storing what PostHog would store."""
        now = datetime.now(timezone.utc)
        try:
            payload = _decode_body(raw, content_encoding, self.max_body_bytes)
            _check_api_key(payload, self.api_key)
            events = _batch_events(payload)
            _validate_batch(events)
        except CaptureError as error:
            return _Reply(error.status, error.body())
        sent_at = parse_timestamp(payload["sent_at"]) if isinstance(payload.get("sent_at"), str) else None
        rows, error = self._rows_within_size(events, sent_at, now)
        if rows:
            self._running_store().insert_batch(rows, bool(payload.get("historical_migration")))
        return _Reply(error.status, error.body()) if error else _Reply(200, _OK)

    def _rows_within_size(
        self, events: list[dict[str, Any]], sent_at: datetime | None, now: datetime
    ) -> tuple[list[dict[str, Any]], CaptureError | None]:
        """Rows for the events before the first oversized one, and the 413 for that one if any."""
        rows = []
        for index, event in enumerate(events):
            size = event_size(event)
            if size > self.max_event_bytes:
                message = f"{_describe(index, event)} is {size} bytes, over the {self.max_event_bytes}-byte limit"
                return rows, CaptureError(413, "event_too_big", f"maximum event size exceeded: {message}")
            rows.append(_delivery_row(event, sent_at, now))
        return rows, None
