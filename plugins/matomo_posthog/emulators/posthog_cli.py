"""The ``posthog`` emulator subcommand: run a PostHog capture emulator on loopback until stopped."""

from __future__ import annotations

import argparse
import os
import signal
import threading

from matomo_posthog.emulators.loopback import loopback_argument
from matomo_posthog.emulators.posthog import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_EVENT_BYTES,
    PostHogEmulator,
)

API_KEY_ENV = "POSTHOG_EMULATOR_API_KEY"


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``posthog`` subcommand to ``subparsers``; it runs :func:`run`."""
    parser = subparsers.add_parser(
        "posthog",
        help="run a local PostHog capture emulator",
        description="Serve PostHog's /batch/ capture endpoint on 127.0.0.1, with the same validation, "
        "and the read endpoints under /_emulator/. Stops on SIGTERM or Ctrl-C.",
    )
    parser.add_argument("--host", type=loopback_argument, default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=_port, default=0, help="port to bind; 0 picks a free one (default)")
    # No default here: a key taken from the environment must never show up in --help.
    parser.add_argument("--api-key", help=f"project API key to accept (default: ${API_KEY_ENV})")
    parser.add_argument("--db", default=":memory:", help="SQLite file to store events in (default: in memory)")
    parser.add_argument(
        "--max-event-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_EVENT_BYTES,
        help=f"largest event accepted, as compact JSON; larger ones get 413 (default: {DEFAULT_MAX_EVENT_BYTES})",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_BODY_BYTES,
        help=f"largest request body, before and after gzip; larger ones get 413 (default: {DEFAULT_MAX_BODY_BYTES})",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT, after printing one line with the URL; returns the exit status 0."""
    api_key = args.api_key or os.environ.get(API_KEY_ENV)
    if not api_key:
        raise SystemExit(f"posthog emulator: give the project API key with --api-key or ${API_KEY_ENV}")
    stopping = threading.Event()
    # Handlers go in before the URL is printed, so a supervisor may signal as soon as it reads the line.
    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        emulator = PostHogEmulator(
            api_key,
            db_path=args.db,
            max_event_bytes=args.max_event_bytes,
            max_body_bytes=args.max_body_bytes,
            host=args.host,
            port=args.port,
        )
        with emulator:
            print(f"posthog emulator listening on {emulator.url}", flush=True)
            stopping.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is not between 0 and 65535")
    return port


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{number} is not a positive number of bytes")
    return number
