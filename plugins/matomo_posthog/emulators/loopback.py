"""The emulators listen on loopback only: they are test doubles, never servers for a network."""

from __future__ import annotations

import argparse
import ipaddress


def require_loopback(host: str) -> str:
    """Return ``host`` as an IPv4 loopback address ("localhost" becomes 127.0.0.1); refuse anything else."""
    address = "127.0.0.1" if host == "localhost" else host
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"host {host!r} is not an IP address; the emulator only listens on loopback") from None
    if ip.version != 4 or not ip.is_loopback:
        raise ValueError(f"host {host!r} is not an IPv4 loopback address; the emulator only listens on loopback")
    return address


def loopback_argument(value: str) -> str:
    """``require_loopback`` as an argparse type, so a bad ``--host`` is a usage error."""
    try:
        return require_loopback(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
