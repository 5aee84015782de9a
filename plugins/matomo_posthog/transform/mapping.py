"""Site-specific choices on top of the default mapping, read from an optional JSON overrides file.

Example file (every key optional)::

    {
      "event_names": {"download": "File Downloaded", "content_interaction": "Ad Clicked"},
      "event_name_template": "{category} - {action}",
      "emit_goals": true,
      "drop_properties": ["$ip"],
      "rename_properties": {"dimension1": "plan"},
      "custom_dimensions": {"3": "section"},
      "drop_ip": false
    }
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

TEMPLATE_FIELDS = frozenset({"category", "action", "name"})

# Keys of ``event_names`` that would be ambiguous, with what to use instead.
_NOT_RENAMEABLE = {
    "event": "Matomo events are named by event_name_template",
    "13": "use content_impression and content_interaction",
}


@dataclass(frozen=True)
class Mapping:
    """Overrides of the default Matomo to PostHog mapping; ``Mapping()`` is the default.

    ``event_names``: event kind (a Matomo action type such as ``download``, ``content_impression``,
    ``content_interaction``, ``pageleave``, ``product_view``..., or a type unknown to this package such as a
    premium plugin's) to the PostHog event name. ``event_name_template``: the name of Matomo events, from
    ``{category}``, ``{action}`` and ``{name}``. ``emit_goals``: send goal conversions as ``Goal Converted`` (by
    default they are skipped: the pageview or event that converted is already sent). ``drop_properties`` and
    ``rename_properties`` name properties as this package produces them (drops apply first).
    ``custom_dimensions``: Matomo custom dimension id to property name (default ``dimension<id>``).
    ``drop_ip``: leave out ``$ip``.
    """

    event_names: dict[str, str] = field(default_factory=dict)
    event_name_template: str = "{category}: {action}"
    emit_goals: bool = False
    drop_properties: tuple[str, ...] = ()
    rename_properties: dict[str, str] = field(default_factory=dict)
    custom_dimensions: dict[str, str] = field(default_factory=dict)
    drop_ip: bool = False

    def __post_init__(self) -> None:
        _check_names(self.event_names, "event_names")
        for key in self.event_names:
            if key in _NOT_RENAMEABLE:
                raise ValueError(f"event_names key {key!r} is not accepted: {_NOT_RENAMEABLE[key]}")
        _check_template(self.event_name_template)
        for option in ("emit_goals", "drop_ip"):
            if not isinstance(getattr(self, option), bool):
                raise ValueError(f"{option} must be true or false")
        if not isinstance(self.drop_properties, (list, tuple)) or not all(
            isinstance(name, str) and name for name in self.drop_properties
        ):
            raise ValueError("drop_properties must be a list of property names")
        object.__setattr__(self, "drop_properties", tuple(self.drop_properties))
        _check_names(self.rename_properties, "rename_properties")
        _check_names(self.custom_dimensions, "custom_dimensions")
        for key in self.custom_dimensions:
            if not key.isdigit():
                raise ValueError(f"custom_dimensions key {key!r} is not a dimension id such as \"3\"")

    def dimension_property(self, dimension_id: str) -> str:
        """The property name of Matomo custom dimension ``dimension_id``."""
        return self.custom_dimensions.get(dimension_id, f"dimension{dimension_id}")

    def apply(self, properties: dict[str, Any]) -> dict[str, Any]:
        """The properties after the file's drops, then renames."""
        if not (self.drop_properties or self.rename_properties):
            return properties
        dropped = set(self.drop_properties)
        return {
            self.rename_properties.get(key, key): value for key, value in properties.items() if key not in dropped
        }


def _check_names(table: Any, option: str) -> None:
    if not isinstance(table, dict):
        raise ValueError(f"{option} must be an object of names")
    for key, value in table.items():
        if not isinstance(key, str) or not key or not isinstance(value, str) or not value.strip():
            raise ValueError(f"{option} entry {key!r}: {value!r} is not a non-empty name")


def template_fields(template: str) -> set[str]:
    """The placeholders an event name template uses."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def _check_template(template: Any) -> None:
    if not isinstance(template, str) or not template.strip():
        raise ValueError("event_name_template must be a non-empty string")
    try:
        unknown = template_fields(template) - TEMPLATE_FIELDS
        if not unknown:
            template.format(category="c", action="a", name="n")
    except (ValueError, IndexError, KeyError, AttributeError) as exc:
        raise ValueError(f"event_name_template {template!r} is not a valid template: {exc}") from exc
    if unknown:
        raise ValueError(
            f"event_name_template {template!r} uses {sorted(unknown)}; only {{category}}, {{action}}, {{name}} exist"
        )


DEFAULT_MAPPING = Mapping()


def load_mapping(path: str | Path) -> Mapping:
    """Read a JSON overrides file; raises ValueError naming the file and the bad key."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the mapping file ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the mapping file must hold a JSON object")
    known = [option.name for option in fields(Mapping)]
    for key in data:
        if key not in known:
            raise ValueError(f"{path}: unknown key {key!r} (known keys: {', '.join(known)})")
    try:
        return Mapping(**data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
