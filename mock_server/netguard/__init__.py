"""Where the mock may open a connection: a destination guard against SSRF.

The mock fetches URLs that requests name (input media with remote fetching on, ``fal_webhook``
targets). A request must not be able to point it at the machine's own services, the local network
or a cloud metadata endpoint. This module decides by address range, after resolving the host:

- always refused (unless an address or network in :attr:`DestinationPolicy.allowed_hosts` names
  it): link-local (``169.254.0.0/16``, ``fe80::/10``; cloud metadata lives there), multicast,
  unspecified (``0.0.0.0``, ``::``: connecting to them reaches the local host on Linux),
  reserved and broadcast, and the known cloud metadata addresses outside link-local;
- loopback (``127.0.0.0/8``, ``::1``) unless :attr:`DestinationPolicy.allow_loopback`;
- every other address that is not globally routable (RFC 1918, ``fc00::/7``, ``100.64.0.0/10``,
  documentation ranges, ...) unless :attr:`DestinationPolicy.allow_private`.

IPv6 forms that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``,
6to4 ``2002::/16``) are judged by that IPv4 address. A host is refused when *any* of its addresses
is: a DNS answer mixing a public and a private address must not be a coin toss.

**Pinning.** :func:`check_url` answers early with a clear error, but a DNS answer can change
between that check and the connection (DNS rebinding). The httpx clients made here
(:func:`guarded_client`, :func:`guarded_async_client`) therefore check again *at connect time*, in
the transport's network backend: one resolution, every address checked, and the socket opened to
exactly those addresses, never to a name resolved again. TLS still verifies the certificate
against the URL's host name (httpcore passes the origin host as ``server_hostname``). Each redirect
hop opens its own connection, so each hop is checked. The clients ignore proxy environment
variables (``trust_env=False``): through a proxy, the guard would only ever see the proxy.
"""

from __future__ import annotations

from mock_server.netguard.clients import guarded_async_client, guarded_client
from mock_server.netguard.policy import (
    DEFAULT_POLICY,
    CheckedDestination,
    DestinationPolicy,
    DestinationRefused,
    IPAddress,
    Resolver,
    check_address,
    check_url,
    refusal_reason,
    resolve_host,
)

__all__ = [
    "DEFAULT_POLICY",
    "CheckedDestination",
    "DestinationPolicy",
    "DestinationRefused",
    "IPAddress",
    "Resolver",
    "check_address",
    "check_url",
    "guarded_async_client",
    "guarded_client",
    "refusal_reason",
    "resolve_host",
]
