"""PostHogHook over real HTTP against the PostHog emulator, through the real posthog SDK."""

import logging

import pytest

from matomo_posthog.emulators.posthog import PostHogEmulator
from matomo_posthog.hooks.posthog import PostHogBatchError, PostHogConnectionError, PostHogHook, base_url

KEY = "phc_test_project_key_1234567890"


@pytest.fixture
def posthog(connection):
    with PostHogEmulator(api_key=KEY) as emulator:
        connection("posthog_default", emulator.url, KEY)
        yield emulator


def event(n, **properties):
    return {
        "uuid": f"00000000-0000-7000-8000-{n:012d}",
        "event": "$pageview",
        "distinct_id": "visitor-1",
        "timestamp": "2024-03-31T10:00:00.000+00:00",
        "properties": {"$os": "Mac OS X", "$os_version": "14.1", "$ignore_sent_at": True, **properties},
    }


def test_accepted_batch_arrives_as_one_historical_batch_with_properties_untouched(posthog):
    PostHogHook(timeout=5).send_batch([event(1), event(2, title="Ünïcode")])
    stored = posthog.events()
    assert [e["uuid"] for e in stored] == [event(1)["uuid"], event(2)["uuid"]]
    assert stored[1]["properties"]["$os"] == "Mac OS X" and stored[1]["properties"]["title"] == "Ünïcode"
    assert stored[0]["timestamp"].startswith("2024-03-31T10:00:00")
    summary = posthog.summary()
    assert summary["batches"] == 1 and summary["non_historical_batches"] == 0


def test_rate_limit_is_retryable_and_carries_retry_after(posthog):
    posthog.add_fault(status=429, retry_after=7)
    with pytest.raises(PostHogBatchError) as caught:
        PostHogHook(timeout=5).send_batch([event(1)])
    assert caught.value.status == 429 and caught.value.retry_after == 7 and caught.value.retryable


def test_dropped_connection_is_a_retryable_network_error(posthog):
    posthog.add_fault(drop=True)
    with pytest.raises(PostHogBatchError, match="could not reach PostHog") as caught:
        PostHogHook(timeout=5).send_batch([event(1)])
    assert caught.value.status is None and caught.value.retryable


def test_bad_event_fails_the_batch_and_is_not_retryable(posthog):
    with pytest.raises(PostHogBatchError) as caught:
        PostHogHook(timeout=5).send_batch([event(1), {**event(2), "event": ""}])
    assert caught.value.status == 400 and not caught.value.retryable
    assert posthog.events() == []


def test_wrong_key_is_not_retryable_and_never_shown(posthog, connection, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "phc_wrong_key_abcdefghijklmnop"
    connection("posthog_default", posthog.url, wrong)
    with pytest.raises(PostHogBatchError) as caught:
        PostHogHook(timeout=5).send_batch([event(1)])
    assert caught.value.status == 401 and not caught.value.retryable
    assert wrong not in str(caught.value) and wrong not in caplog.text


def test_connection_without_key_names_the_connection(connection):
    connection("posthog_eu", "http://127.0.0.1:9")
    with pytest.raises(PostHogConnectionError, match="'posthog_eu' needs host"):
        PostHogHook("posthog_eu").send_batch([event(1)])


@pytest.mark.parametrize(
    "host, schema, port, url",
    [
        ("http://127.0.0.1:8000/", None, None, "http://127.0.0.1:8000"),
        ("eu.example.org", None, None, "https://eu.example.org"),
        ("127.0.0.1", "http", 8000, "http://127.0.0.1:8000"),
    ],
)
def test_base_url_from_connection_fields(host, schema, port, url):
    assert base_url(host, schema, port) == url
