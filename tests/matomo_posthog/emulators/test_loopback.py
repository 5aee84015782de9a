import argparse

import pytest

from matomo_posthog.emulators.loopback import loopback_argument, require_loopback


@pytest.mark.parametrize("host, address", [("127.0.0.1", "127.0.0.1"), ("localhost", "127.0.0.1"),
                                           ("127.0.0.2", "127.0.0.2")])
def test_loopback_hosts_are_accepted(host, address):
    assert require_loopback(host) == address


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "::1", "example.org", ""])
def test_other_hosts_are_refused_with_their_name(host):
    with pytest.raises(ValueError, match="only listens on loopback"):
        require_loopback(host)
    with pytest.raises(argparse.ArgumentTypeError):
        loopback_argument(host)
