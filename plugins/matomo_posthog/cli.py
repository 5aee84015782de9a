"""The ``matomo-posthog`` command: transform an export file, run the emulators, run the demo."""

from __future__ import annotations

import argparse
import sys

from matomo_posthog.emulators import matomo_cli, posthog_cli
from matomo_posthog.transform import cli as transform_cli


def build_parser() -> argparse.ArgumentParser:
    """The command's parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="matomo-posthog", description="Migrate Matomo history into PostHog (tools beside the Airflow DAGs)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    transform_cli.register(commands)
    emulate = commands.add_parser("emulate", help="run a local Matomo or PostHog emulator on 127.0.0.1")
    emulators = emulate.add_subparsers(dest="emulator", required=True)
    matomo_cli.register(emulators)
    posthog_cli.register(emulators)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
