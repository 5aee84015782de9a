"""The pure mapping of Matomo visits to PostHog events: no Airflow, no network, no files but a mapping file.

``transform_visit`` turns one visit of Matomo's ``Live.getLastVisitsDetails`` into PostHog ``/batch/`` events;
``transform_visits`` does a day of them and keeps ``TransformStats``. Every rule lives in one table: event names in
``names.ACTION_TYPES``, properties in the tables of ``properties``; ``docs/mapping.md`` lists them all.
"""

from matomo_posthog.transform.mapping import DEFAULT_MAPPING, Mapping, load_mapping
from matomo_posthog.transform.visit import (
    SiteContext,
    TransformStats,
    VisitResult,
    transform_visit,
    transform_visits,
)

__all__ = [
    "DEFAULT_MAPPING",
    "Mapping",
    "SiteContext",
    "TransformStats",
    "VisitResult",
    "load_mapping",
    "transform_visit",
    "transform_visits",
]
