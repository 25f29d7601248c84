"""Which address a login came from: the socket's peer, or - only when that peer is a trusted
reverse proxy - the address the proxy put in ``X-Forwarded-For``."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from cleanup_core.accounts import client_address

LOCAL_PROXY = (ip_network("127.0.0.1/32"), ip_network("::1/128"))
PROXY_TIER = (ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "trusted", "expected"),
    [
        # No trusted proxy configured: the header is the client's own claim, ignored.
        ("203.0.113.7", "198.51.100.9", (), "203.0.113.7"),
        ("127.0.0.1", "198.51.100.9", (), "127.0.0.1"),
        # A peer that is not a trusted proxy cannot speak for anyone else.
        ("203.0.113.7", "198.51.100.9", LOCAL_PROXY, "203.0.113.7"),
        # From the trusted proxy: the address it appended (the rightmost).
        ("127.0.0.1", "198.51.100.9", LOCAL_PROXY, "198.51.100.9"),
        ("::1", "2001:db8::5", LOCAL_PROXY, "2001:db8::5"),
        # What the client sent itself stays on the left and is never believed.
        ("127.0.0.1", "6.6.6.6, 198.51.100.9", LOCAL_PROXY, "198.51.100.9"),
        # Through two proxies of a trusted tier: the first address that is not a proxy.
        ("10.0.0.2", "198.51.100.9, 10.0.0.5", PROXY_TIER, "198.51.100.9"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.9, 10.0.0.5", PROXY_TIER, "198.51.100.9"),
        # Only proxies in the chain: the farthest one.
        ("10.0.0.2", "10.0.0.9, 10.0.0.5", PROXY_TIER, "10.0.0.9"),
        # A trusted proxy that sent no header, or rubbish: the proxy itself.
        ("127.0.0.1", None, LOCAL_PROXY, "127.0.0.1"),
        ("127.0.0.1", "", LOCAL_PROXY, "127.0.0.1"),
        ("127.0.0.1", "not-an-address", LOCAL_PROXY, "127.0.0.1"),
        ("127.0.0.1", "198.51.100.9:4431", LOCAL_PROXY, "127.0.0.1"),
        ("10.0.0.2", "198.51.100.9, junk, 10.0.0.5", PROXY_TIER, "10.0.0.5"),
        # Written the same way every time, so one client is one counter and one ban.
        ("::ffff:203.0.113.7", None, (), "203.0.113.7"),
        ("2001:DB8:0:0::7", None, (), "2001:db8::7"),
        ("127.0.0.1", " 198.51.100.9 ", LOCAL_PROXY, "198.51.100.9"),
    ],
)
def test_client_address(
    peer: str, forwarded_for: str | None, trusted: tuple, expected: str
) -> None:
    assert client_address(peer, forwarded_for, trusted) == expected


# "0.0.0.0" is what Reflex reports when the server gave it no peer address.
UNUSABLE_PEERS = ["", "0.0.0.0", "unix:/run/app.sock", "evil\n1.2.3.4"]  # noqa: S104


@pytest.mark.parametrize("peer", UNUSABLE_PEERS)
def test_an_unusable_peer_is_no_address(peer: str) -> None:
    assert client_address(peer, "198.51.100.9", LOCAL_PROXY) is None
