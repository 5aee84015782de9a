"""Who and which: event uuids, session ids and distinct ids, all derived from the visit so every run agrees.

PostHog collapses events whose uuid, name, distinct_id and day match, so a uuid computed from the Matomo action
(never a random one) makes re-running a day safe.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from matomo_posthog.transform.values import text

# Fixed for the life of the project: changing it would give every event already loaded a new uuid, and a re-run
# would then duplicate them all.
EVENT_NAMESPACE = uuid.UUID("5b1e4a1c-3f0d-5e7a-9c2b-6d8f0a4e7c31")

# PostHog cuts distinct ids at 200 characters; longer ones are hashed here instead, so two long ids with the
# same beginning stay two people.
MAX_DISTINCT_ID_LENGTH = 200


def event_uuid(site_id: int, visit_id: int, position: int | str, kind: str) -> str:
    """The uuid of one event: the same site, visit, action position and kind always give the same uuid.

    ``position`` is the action's index in ``actionDetails`` (or ``"visit"`` for per-visit events such as
    ``$identify``); ``kind`` tells apart the events one action yields (the action itself, its ``$pageleave``...).
    """
    return str(uuid.uuid5(EVENT_NAMESPACE, f"matomo:{site_id}:{visit_id}:{position}:{kind}"))


def session_id(site_id: int, visit_id: int, start: datetime) -> str:
    """A UUIDv7 for the visit: 48 bits of its first action's UTC milliseconds, the rest from (site, visit).

    PostHog only puts events into a session when the session id's time is at or before the first event.
    """
    milliseconds = int(start.timestamp() * 1000) & ((1 << 48) - 1)
    digest = int.from_bytes(hashlib.sha256(f"matomo-session:{site_id}:{visit_id}".encode()).digest()[:10], "big")
    rand_a = digest >> 68  # 12 bits
    rand_b = digest & ((1 << 62) - 1)  # 62 bits
    value = (milliseconds << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=value))


def _bounded(identifier: str) -> str:
    if len(identifier) <= MAX_DISTINCT_ID_LENGTH:
        return identifier
    return "sha256:" + hashlib.sha256(identifier.encode("utf-8")).hexdigest()


def distinct_ids(visit: dict, site_id: int, visit_id: int) -> tuple[str, str | None]:
    """The visit's distinct_id, and the anonymous id to merge into it with ``$identify`` (or None).

    All events of a visit use the ``userId`` when Matomo has one, so a logged-in visit lands on the person
    directly; its ``visitorId`` is merged into that person once per visit. Without a ``userId`` the
    ``visitorId`` is used, and without either (exports that hide ids) one id per visit.
    """
    user = text(visit.get("userId"))
    visitor = text(visit.get("visitorId"))
    if user:
        anonymous = _bounded(visitor) if visitor and visitor != user else None
        return _bounded(user), anonymous
    if visitor:
        return _bounded(visitor), None
    return f"matomo-visit-{site_id}-{visit_id}", None
