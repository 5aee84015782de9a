"""Which PostHog event each Matomo action becomes: one table, keyed by Matomo's action ``type``."""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from matomo_posthog.transform import properties as p
from matomo_posthog.transform.mapping import Mapping, template_fields
from matomo_posthog.transform.values import integer, text

# PostHog keeps the first 200 characters of an event name; cutting here keeps what is sent and what is counted
# the same. The full texts stay in the properties.
MAX_EVENT_NAME_LENGTH = 200


@dataclass(frozen=True)
class ActionType:
    """How one Matomo action type becomes a PostHog event."""

    kind: str  # key of Mapping.event_names
    event: str  # default PostHog event name
    build: p.Builder  # the properties of the action itself
    url_property: str = "$current_url"  # where the action's own URL goes
    interaction: tuple[str, str, str] | None = None  # (field, kind, event) used instead when the field is set
    enabled_by: str | None = None  # Mapping option that must be true, else the action is skipped as ``kind``


ACTION_TYPES: dict[str, ActionType] = {
    "action": ActionType("action", "$pageview", p.no_fields),  # + $pageleave, Product (List) Viewed
    "event": ActionType("event", "Matomo Event", p.fields(p.CUSTOM_EVENT_FIELDS)),  # named by the template
    "search": ActionType("search", "Site Search", p.fields(p.SITE_SEARCH_FIELDS)),
    "download": ActionType("download", "Download", p.no_fields),
    "outlink": ActionType("outlink", "Outlink Clicked", p.no_fields, url_property="$external_click_url"),
    "13": ActionType(
        "content_impression", "Content Impression", p.fields(p.CONTENT_FIELDS),
        interaction=("contentInteraction", "content_interaction", "Content Interaction"),
    ),
    "goal": ActionType("goal", "Goal Converted", p.with_currency(p.fields(p.GOAL_FIELDS)), enabled_by="emit_goals"),
    "ecommerceOrder": ActionType("ecommerceOrder", "Order Completed", p.with_currency(p.fields(p.ORDER_FIELDS))),
    "ecommerceAbandonedCart": ActionType(
        "ecommerceAbandonedCart", "Cart Abandoned", p.with_currency(p.fields(p.CART_FIELDS))
    ),
}

# Events that are not one Matomo action each, by kind.
EXTRA_EVENTS = {
    "pageleave": "$pageleave",  # pageview time + timeSpent
    "product_view": "Product Viewed",  # a pageview with productViewSku / productViewName
    "product_list_view": "Product List Viewed",  # a pageview with only productViewCategories
    "identify": "$identify",  # once per visit with both userId and visitorId
}


def type_key(value: Any) -> str | None:
    """Matomo's action ``type`` as a table key: ``13``, ``"13"`` and ``13.0`` are all ``"13"``."""
    if isinstance(value, str):
        return value.strip() or None
    number = integer(value)
    return None if number is None else str(number)


def action_type(key: str) -> ActionType:
    """The table row of a type; a type this package does not know becomes an event named after it."""
    return ACTION_TYPES.get(key) or ActionType(key, key, p.unknown_type_fields)


def event_name(kind: str, default: str, mapping: Mapping) -> str:
    """The event name of a kind after the mapping's overrides, cut to PostHog's length."""
    return _clean(mapping.event_names.get(kind) or default) or default[:MAX_EVENT_NAME_LENGTH]


def custom_event_name(action: dict, mapping: Mapping, default: str) -> str:
    """A Matomo event's name from the template.

    A value the action lacks is left empty and the separators left dangling are trimmed, so
    ``"{category}: {action}"`` without an action gives the category alone.
    """
    values = {
        "category": text(action.get("eventCategory")) or "",
        "action": text(action.get("eventAction")) or "",
        "name": text(action.get("eventName")) or "",
    }
    rendered = string.Formatter().vformat(mapping.event_name_template, (), values)
    if not all(values[field] for field in template_fields(mapping.event_name_template)):
        rendered = rendered.strip(" \t:;,-–—|/")
    return _clean(rendered) or event_name("event", default, mapping)


def _clean(name: str) -> str:
    # PostHog replaces NUL in event names; doing it here keeps the counted name the sent name.
    return name.replace("\0", "\ufffd").strip()[:MAX_EVENT_NAME_LENGTH]
