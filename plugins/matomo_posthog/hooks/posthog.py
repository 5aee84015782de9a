"""PostHogHook: sends one batch of events to PostHog's ``/batch/`` endpoint and says whether it was accepted.

It uses ``posthog.request.batch_post``, the SDK's one synchronous call: any non-200 raises, so nothing is
dropped silently (the SDK's ``capture()`` queue drops events and rewrites ``$os``; see the project's notes).
"""

from __future__ import annotations

from typing import Any

import requests
from airflow.sdk import BaseHook
from posthog.request import APIError, batch_post

from matomo_posthog.load import BatchRejected


class PostHogBatchError(BatchRejected):
    """PostHog did not accept a batch. ``status`` is None for network errors and timeouts."""


class PostHogConnectionError(ValueError):
    """The Airflow connection lacks the PostHog host or the project API key."""


def base_url(host: str, schema: str | None, port: int | None) -> str:
    """The PostHog base URL from a connection's host, schema and port."""
    url = host if "://" in host else f"{schema or 'https'}://{host}"
    return f"{url.rstrip('/')}:{port}" if port else url.rstrip("/")


class PostHogHook(BaseHook):
    """Sends events through an Airflow connection (host = PostHog host, password = project API key).

    The connection is read on the first batch, not when the hook is built.
    """

    conn_name_attr = "posthog_conn_id"
    default_conn_name = "posthog_default"
    conn_type = "http"
    hook_name = "PostHog"

    def __init__(self, posthog_conn_id: str = default_conn_name, timeout: float = 60.0) -> None:
        super().__init__()
        self.posthog_conn_id = posthog_conn_id
        self.timeout = timeout
        self._api_key: str | None = None
        self._host: str | None = None
        # A session of our own: the SDK's shared one retries by itself on https, which would hide attempts.
        self._session = requests.Session()

    def get_conn(self) -> tuple[str, str]:
        """The PostHog base URL and project API key of the connection."""
        if self._api_key is None:
            connection = self.get_connection(self.posthog_conn_id)
            if not connection.host or not connection.password:
                raise PostHogConnectionError(
                    f"connection {self.posthog_conn_id!r} needs host = the PostHog host and "
                    "password = the project API key"
                )
            self._host = base_url(connection.host, connection.schema, connection.port)
            self._api_key = connection.password
        return self._host, self._api_key

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def send_batch(self, events: list[dict[str, Any]]) -> None:
        """Send one ``historical_migration`` batch; return when PostHog accepted it, raise otherwise."""
        host, api_key = self.get_conn()
        try:
            batch_post(
                api_key,
                host=host,
                gzip=True,
                timeout=self.timeout,
                session=self._session,
                batch=events,
                historical_migration=True,
            )
        except APIError as exc:
            status = exc.status if isinstance(exc.status, int) else None
            message = self._redact(" ".join(str(exc.message).split())[:300])
            raise PostHogBatchError(f"PostHog answered HTTP {exc.status}: {message}", status, exc.retry_after) from None
        except requests.Timeout:
            raise PostHogBatchError(f"PostHog gave no answer within {self.timeout:g}s") from None
        except requests.ConnectionError as exc:
            raise PostHogBatchError(f"could not reach PostHog ({type(exc).__name__})") from None
