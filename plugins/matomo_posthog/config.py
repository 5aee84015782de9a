"""The sites to migrate and their settings, read from a TOML file (``include/matomo_posthog.toml`` by default).

A ``[defaults]`` table applies to every ``[[sites]]`` entry; a site may override any default. Relative storage
paths are read relative to the config file's folder.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any

from matomo_posthog.timezones import UnknownTimezoneError, parse_timezone


class ConfigError(ValueError):
    """The config file is missing or wrong; the message names the file, the site and the key."""


@dataclass(frozen=True)
class SiteConfig:
    """Everything the DAG of one Matomo site needs to know."""

    site_id: int
    timezone: str
    start_date: date
    end_date: date | None = None
    matomo_conn_id: str = "matomo_default"
    posthog_conn_id: str = "posthog_default"
    storage: str = "data"
    page_size: int = 1000
    min_page_size: int = 10
    request_timeout: float = 120.0
    min_request_interval: float = 0.3
    matomo_pool: str = "matomo_api"
    matomo_pool_slots: int = 4
    batch_size: int = 1000
    batch_max_bytes: int = 5_000_000
    events_per_minute: int = 10_000
    progress_seconds: float = 30.0
    mapping_file: str | None = None
    retries: int = 2
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def dag_id(self) -> str:
        return f"matomo_to_posthog_site_{self.site_id}"


_REQUIRED = ("site_id", "timezone", "start_date")
_KNOWN = {f.name for f in fields(SiteConfig)}


def _site_config(entry: dict[str, Any], where: str, base: Path) -> SiteConfig:
    unknown = sorted(set(entry) - _KNOWN)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known keys are {', '.join(sorted(_KNOWN))}")
    missing = [key for key in _REQUIRED if key not in entry]
    if missing:
        raise ConfigError(f"{where}: {missing[0]!r} is required")
    try:
        parse_timezone(entry["timezone"])
    except UnknownTimezoneError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    values = dict(entry)
    for key in ("start_date", "end_date"):
        if isinstance(values.get(key), str):
            try:
                values[key] = date.fromisoformat(values[key])
            except ValueError:
                raise ConfigError(f"{where}: {key} {values[key]!r} is not a YYYY-MM-DD date") from None
    for key, kind in (("site_id", int), ("page_size", int), ("batch_size", int), ("events_per_minute", int)):
        if key in values and (not isinstance(values[key], kind) or values[key] <= 0):
            raise ConfigError(f"{where}: {key} must be a positive whole number, not {values[key]!r}")
    storage = str(values.get("storage", SiteConfig.storage))
    values["storage"] = storage if "://" in storage else (base / storage).resolve().as_uri()
    if values.get("mapping_file"):
        values["mapping_file"] = str((base / values["mapping_file"]).resolve())
    values["tags"] = tuple(values.get("tags", ()))
    return SiteConfig(**values)


def load_config(path: str | Path) -> list[SiteConfig]:
    """Read the config file and return one ``SiteConfig`` per site, in file order."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found; copy include/matomo_posthog.toml and edit it") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    defaults = document.get("defaults", {})
    sites = document.get("sites", [])
    if not isinstance(sites, list) or not sites:
        raise ConfigError(f"{path}: no [[sites]] entry; add one with site_id, timezone and start_date")
    configs = [
        _site_config({**defaults, **site}, f"{path}: sites[{index}]", path.parent)
        for index, site in enumerate(sites)
    ]
    seen: set[int] = set()
    for config in configs:
        if config.site_id in seen:
            raise ConfigError(f"{path}: site_id {config.site_id} is listed twice")
        seen.add(config.site_id)
    return configs
