"""The ``matomo`` subcommand: serve the Matomo emulator on a loopback port until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from datetime import date

from matomo_posthog.emulators.loopback import loopback_argument
from matomo_posthog.emulators.matomo import MatomoEmulator

TOKEN_ENV = "MATOMO_EMULATOR_TOKEN"
_GENERATOR_DEFAULTS = {"seed": 1, "start": date(2024, 1, 1), "end": date(2024, 1, 7), "visits_per_day": 20}


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``matomo`` subcommand to ``subparsers``; it runs :func:`run`."""
    parser = subparsers.add_parser(
        "matomo",
        help="serve a Matomo API emulator on a loopback port",
        description="Serve SitesManager.getSiteFromId, Live.getLastVisitsDetails and VisitsSummary.get for one "
                    "site, from a JSON export or from generated visits, until SIGTERM or SIGINT. Clients must "
                    "POST token_auth in the body.",
    )
    parser.add_argument("--host", type=loopback_argument, default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port, 0 for a free one (default 0)")
    parser.add_argument("--token", help=f"token_auth clients must send (default: ${TOKEN_ENV})")
    parser.add_argument("--site-id", type=int, default=1, help="site id (default 1)")
    parser.add_argument("--timezone", default="UTC", help="site timezone, IANA or UTC+5.5 (default UTC)")
    parser.add_argument("--currency", default="EUR", help="site currency (default EUR)")
    parser.add_argument("--max-page-size", type=int, metavar="N",
                        help="answer HTTP 500 (PHP out of memory) to Live pages of more than N visits")
    parser.add_argument("--numbers-as-strings", action="store_true",
                        help="send database integers as strings, as PHP < 8.1 does")
    export = parser.add_argument_group("visits from a file")
    export.add_argument("--export", metavar="FILE", help="JSON array of Live.getLastVisitsDetails rows")
    export.add_argument("--undated-day", type=date.fromisoformat, default=date(2024, 1, 1), metavar="YYYY-MM-DD",
                        help="place rows without lastActionTimestamp at site-local noon of this day "
                             "(default 2024-01-01)")
    generated = parser.add_argument_group("generated visits (the default)")
    generated.add_argument("--seed", type=int, help="generator seed (default 1)")
    generated.add_argument("--start", type=date.fromisoformat, metavar="YYYY-MM-DD",
                           help="first site-local day (default 2024-01-01)")
    generated.add_argument("--end", type=date.fromisoformat, metavar="YYYY-MM-DD",
                           help="last site-local day (default 2024-01-07)")
    generated.add_argument("--visits-per-day", type=int, metavar="N", help="visits per day (default 20)")
    generated.add_argument("--midnight-visits", action="store_true",
                           help="end one visit a day exactly at the next local midnight")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Start the emulator, print its URL on one line, serve until SIGTERM/SIGINT; return the exit code."""
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        print(f"matomo emulator: give --token or set {TOKEN_ENV}", file=sys.stderr)
        return 2
    try:
        emulator = _build(args, token).start()
    except (OSError, ValueError) as error:
        print(f"matomo emulator: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()
    previous = {number: signal.signal(number, lambda *_: stop.set()) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        # Handlers are in place before the line is printed, so whoever waits for it can signal right away.
        print(f"matomo emulator listening on {emulator.url}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0


def _build(args: argparse.Namespace, token: str) -> MatomoEmulator:
    options = {"host": args.host, "port": args.port, "max_page_size": args.max_page_size,
               "numbers_as_strings": args.numbers_as_strings}
    given = [name for name in _GENERATOR_DEFAULTS if getattr(args, name) is not None] + \
        (["midnight_visits"] if args.midnight_visits else [])
    if args.export:
        if given:
            raise ValueError("--export cannot be combined with generator options: " + ", ".join(given))
        return MatomoEmulator.from_export(args.export, args.site_id, args.timezone, token, currency=args.currency,
                                          undated_day=args.undated_day, **options)
    chosen = {name: default if getattr(args, name) is None else getattr(args, name)
              for name, default in _GENERATOR_DEFAULTS.items()}
    return MatomoEmulator.from_generator(args.site_id, args.timezone, chosen["start"], chosen["end"],
                                         chosen["visits_per_day"], chosen["seed"], token, currency=args.currency,
                                         midnight_visits=args.midnight_visits, **options)
