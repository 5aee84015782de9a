"""``matomo-posthog transform``: a Matomo JSON export in, PostHog events as NDJSON out.

Events go to stdout, one JSON object a line, ready for PostHog's ``/batch/``; the summary (visits, actions,
events by name, skipped actions by reason, visit errors) goes to stderr. The exit status is 0 whatever the
visits hold, and 2 when the file, the timezone or the mapping file cannot be used.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TextIO

from matomo_posthog.transform.mapping import DEFAULT_MAPPING, load_mapping
from matomo_posthog.transform.visit import SiteContext, TransformStats, transform_visits

USAGE_ERROR = 2


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``transform`` subcommand to a command's subparsers."""
    parser = subparsers.add_parser(
        "transform",
        help="turn a Matomo Live.getLastVisitsDetails JSON export into PostHog events (NDJSON on stdout)",
        description="Events go to stdout as NDJSON, the summary to stderr. Exit status 2 when the file, the "
        "timezone or the mapping file cannot be used, else 0.",
    )
    parser.add_argument("--site-id", type=int, required=True, help="the Matomo site id (idSite)")
    parser.add_argument(
        "--timezone", required=True, help="the site timezone as Matomo gives it: Europe/Berlin, UTC+5.5, UTC-3"
    )
    parser.add_argument("--currency", help="the site currency code for ecommerce events, e.g. EUR")
    parser.add_argument("--mapping", metavar="FILE", help="a JSON file of mapping overrides (see docs/mapping.md)")
    parser.add_argument("file", metavar="FILE", help="a JSON array of visits, as Matomo returns them; - for stdin")
    parser.set_defaults(func=run)
    return parser


def _read_visits(name: str) -> list:
    try:
        if name == "-":
            data = json.load(sys.stdin)
        else:
            with Path(name).open(encoding="utf-8") as handle:
                data = json.load(handle)
    except OSError as exc:
        raise ValueError(f"{name}: cannot read the file ({exc.strerror or exc})") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{name}: not valid JSON ({exc})") from exc
    if isinstance(data, dict) and data.get("result") == "error":
        raise ValueError(f"{name}: Matomo answered with an error: {data.get('message')}")
    if not isinstance(data, list):
        raise ValueError(f"{name}: not a JSON array of visits")
    return data


def write_summary(stats: TransformStats, out: TextIO) -> None:
    """The human-readable totals of a transform."""
    totals = stats.as_dict()
    print(
        f"{totals['visits']} visits, {totals['actions']} actions -> {totals['events']} events "
        f"({totals['events_from_actions']} from actions, {sum(totals['extra_events'].values())} extra)",
        file=out,
    )
    print("events by name:", file=out)
    for name, count in sorted(totals["events_by_name"].items(), key=lambda item: (-item[1], item[0])):
        print(f"  {count:>8}  {name}", file=out)
    print(f"skipped actions: {sum(totals['skipped'].values())}", file=out)
    for reason, count in totals["skipped"].items():
        print(f"  {count:>8}  {reason}", file=out)
    if totals["truncated_actions"]:
        print(f"actions Matomo left out of long visits: {totals['truncated_actions']}", file=out)
    print(f"visits with errors: {totals['error_count']}", file=out)
    for error in totals["errors"]:
        print(f"  {error}", file=out)
    if totals["error_count"] > len(totals["errors"]):
        print(f"  ... and {totals['error_count'] - len(totals['errors'])} more", file=out)


def run(args: argparse.Namespace) -> int:
    """Transform the file named in ``args``; returns the exit status."""
    try:
        site = SiteContext(site_id=args.site_id, timezone=args.timezone, currency=args.currency)
        mapping = load_mapping(args.mapping) if args.mapping else DEFAULT_MAPPING
        visits = _read_visits(args.file)
    except ValueError as exc:
        print(f"matomo-posthog transform: {exc}", file=sys.stderr)
        return USAGE_ERROR
    stats = TransformStats()
    out = sys.stdout
    # Escape non-ASCII text only where stdout could not encode it.
    ascii_only = (getattr(out, "encoding", None) or "").lower().replace("-", "") != "utf8"
    try:
        for event in transform_visits(visits, site, mapping, stats):
            out.write(json.dumps(event, ensure_ascii=ascii_only, allow_nan=False, separators=(",", ":")) + "\n")
        out.flush()
    except BrokenPipeError:
        # The reader (head, a closed pager) stopped early; point stdout at nothing so exiting stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        return 1
    write_summary(stats, sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``transform`` on its own: ``python -m matomo_posthog.transform.cli --site-id 1 ... FILE``."""
    parser = argparse.ArgumentParser(prog="matomo-posthog")
    commands = parser.add_subparsers(dest="command", required=True)
    register(commands)
    args = parser.parse_args(["transform", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
