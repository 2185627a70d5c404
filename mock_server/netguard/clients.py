"""httpx clients that connect only where a :class:`DestinationPolicy` allows: the check runs
again at connect time, in the transport's network backend, and the socket goes only to the
addresses just checked (see the package docstring on pinning)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import anyio
import httpcore
import httpx

from mock_server.netguard.policy import (
    DEFAULT_POLICY,
    DestinationPolicy,
    DestinationRefused,
    Resolver,
    SocketOption,
    checked_addresses,
    resolve_host,
)

# -- connect-time checks: the httpcore network backends ------------------------------------


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves once, checks every address, connects only to checked addresses."""

    def __init__(
        self, inner: httpcore.NetworkBackend, policy: DestinationPolicy, resolve: Resolver
    ) -> None:
        self._inner = inner
        self._policy = policy
        self._resolve = resolve

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = checked_addresses(host, port, self._policy, self._resolve)
        except OSError as failed:  # httpx maps it to httpx.ConnectError, as for any socket
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {failed}") from failed
        error: Exception | None = None
        for ip in addresses:  # the checked addresses, never the name again
            try:
                return self._inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as failed:
                error = failed
        assert error is not None
        raise error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        raise DestinationRefused("unix socket", None, "unix sockets are not destinations")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncGuardedBackend(httpcore.AsyncNetworkBackend):
    """The async twin of :class:`_GuardedBackend`; resolves without blocking the loop."""

    def __init__(
        self,
        inner: httpcore.AsyncNetworkBackend,
        policy: DestinationPolicy,
        resolve: Resolver | None,
    ) -> None:
        self._inner = inner
        self._policy = policy
        self._resolve = resolve

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface names it)
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        resolve = self._resolve or resolve_host
        try:
            addresses = await anyio.to_thread.run_sync(
                checked_addresses, host, port, self._policy, resolve
            )
        except OSError as failed:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {failed}") from failed
        error: Exception | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as failed:
                error = failed
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface names it)
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("unix socket", None, "unix sockets are not destinations")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_client(
    policy: DestinationPolicy = DEFAULT_POLICY,
    *,
    resolve: Resolver = resolve_host,
    verify: Any = True,
    **client_options: Any,
) -> httpx.Client:
    """An :class:`httpx.Client` that connects only where ``policy`` allows, checked at connect
    time for every hop (redirects included). A refusal raises :class:`DestinationRefused` out of
    the request call. ``client_options`` go to :class:`httpx.Client` (not ``transport``)."""
    transport = httpx.HTTPTransport(verify=verify)
    pool = transport._pool  # httpx exposes no network_backend option: wrap the pool's backend
    pool._network_backend = _GuardedBackend(_backend_of(pool), policy, resolve)
    return httpx.Client(transport=transport, trust_env=False, verify=verify, **client_options)


def guarded_async_client(
    policy: DestinationPolicy = DEFAULT_POLICY,
    *,
    resolve: Resolver | None = None,
    verify: Any = True,
    **client_options: Any,
) -> httpx.AsyncClient:
    """The async twin of :func:`guarded_client` (host names resolved in a worker thread)."""
    transport = httpx.AsyncHTTPTransport(verify=verify)
    pool = transport._pool
    pool._network_backend = _AsyncGuardedBackend(_backend_of(pool), policy, resolve)
    return httpx.AsyncClient(transport=transport, trust_env=False, verify=verify, **client_options)


def _backend_of(pool: Any) -> Any:
    backend = getattr(pool, "_network_backend", None)
    if backend is None:  # an httpx/httpcore release that moved it: fail loudly, never unguarded
        raise RuntimeError("cannot install the destination guard: httpcore pool has no backend")
    return backend
