"""Where the mock may send webhooks: loopback and the inbox, unless told more.

A ``fal_webhook`` URL makes the mock open a connection where the submitter says, so a mock on a
shared machine must not become a way into the local network. By default only loopback
addresses (a receiver on this machine) and the inbox are allowed. ``FAL_MOCK_WEBHOOK_ALLOW_HOSTS``
(``--webhook-allow-host``) adds host names, addresses or networks (``10.1.0.0/16``), and the word
``public`` allows every globally routable address. Link-local and cloud metadata addresses need
an explicit entry (:mod:`mock_server.netguard`'s rules).

The check runs twice: at submit (a refused URL gets a 422) and at connect time, in the
dispatcher's httpx client (:func:`mock_server.netguard.guarded_client`), so a name that resolves
elsewhere by the time of delivery (DNS rebinding) is still refused.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from mock_server.netguard import (
    DestinationPolicy,
    DestinationRefused,
    IPAddress,
    Resolver,
    check_url,
    guarded_client,
    refusal_reason,
    resolve_host,
)
from mock_server.webhooks.inbox import is_inbox

__all__ = ["PUBLIC", "WebhookTargets"]

PUBLIC: Final = "public"
"""The allow-list word for every globally routable address."""


class WebhookTargets:
    def __init__(self, allow: Iterable[str] = (), *, resolve: Resolver = resolve_host) -> None:
        entries = {entry.strip() for entry in allow if entry.strip()}
        self.allow_public = PUBLIC in entries
        self.allow = frozenset(entries)
        self.policy = DestinationPolicy(
            allow_loopback=True, allowed_hosts=frozenset(entries - {PUBLIC})
        )
        self._resolve = resolve

    def refusal(self, url: str) -> str | None:
        """Why a webhook may not go to ``url``, or None. Resolves the host (blocking)."""
        if is_inbox(url) or self.policy.host_allowed(urlsplit(url).hostname or ""):
            return None  # a name allowed outright need not resolve yet (it may at delivery)
        try:
            destination = check_url(url, self.policy, resolve=self._resolve)
            for address in destination.addresses:
                self._check_beyond_loopback(destination.host, address)
        except DestinationRefused as refused:
            return f"webhook target {refused}. {self._hint()}"
        except OSError as error:
            return f"webhook target {url!r} does not resolve ({error})"
        return None

    def client(self, **options: Any) -> httpx.Client:
        """An httpx client that connects only where webhooks may go (checked at connect time)."""
        return guarded_client(self.policy, resolve=self._strict_resolve, **options)

    def _strict_resolve(self, host: str, port: int) -> Sequence[str]:
        """The resolver of the connect-time check: netguard's policy lets public addresses
        through, webhooks only with ``public`` allowed."""
        addresses = self._resolve(host, port)
        for address in addresses:
            self._check_beyond_loopback(host, ipaddress.ip_address(address.split("%", 1)[0]))
        return addresses

    def _check_beyond_loopback(self, host: str, address: IPAddress) -> None:
        if self.policy.host_allowed(host) or self.policy.address_allowed(address):
            return
        if address.is_loopback:
            return
        if self.allow_public and refusal_reason(address, self.policy) is None:
            return  # netguard's ranges still apply: private, link-local, metadata stay refused
        raise DestinationRefused(host, str(address), "only loopback receivers are allowed")

    def _hint(self) -> str:
        return (
            "Webhooks go to loopback receivers and the mock's inbox (http://inbox.fal-mock.invalid/"
            "); allow more with FAL_MOCK_WEBHOOK_ALLOW_HOSTS or --webhook-allow-host (host names, "
            f"addresses, networks, or {PUBLIC!r} for any public address)."
        )
