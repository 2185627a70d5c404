"""fal's hosts, routed with respx: into the mock's app in-process, or on to a ``--fal-target``.

respx patches httpcore, under every ``httpx.Client`` and ``httpx.AsyncClient`` in the process,
including the ones fal-client made and cached before the test began. Requests to fal's hosts
(queue, run, REST, CDN, their aliases and backup domains, any ``*.fal.media`` file URL) are
answered by the mock's ASGI app through :class:`~mock_server.asgi_bridge.AsgiBridge`, unchanged:
the ``https://`` URL and its Host header arrive as sent, and the app dispatches on the Host, so
every URL it answers with leads back to fal's hosts and so back into the mock. Anything else
raises :class:`UnmockedHostError` where it was sent, naming the host; nothing reaches the
network. A test can still mock other hosts with respx routes on :attr:`FalRouter` (the handle's
``router``).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import re
import ssl
from collections.abc import Awaitable, Callable
from typing import Final

import httpx
import respx
from respx.models import AllMockedAssertionError, ResolvedRoute
from respx.types import RouteResultTypes

from contracts.operations import FAL_HOSTS, HOST_TO_LOGICAL, PROXY_TARGET_HEADER, LogicalHost
from mock_server.asgi_bridge import AsgiBridge
from mock_server.recording import Recorder
from mock_server.targets import PROXY_SUFFIX, Target

__all__ = [
    "FAL_HOSTNAMES",
    "LIVE_ORIGINS",
    "FalRouter",
    "TargetForwarder",
    "UnmockedHostError",
    "route_to_app",
    "route_to_target",
    "ssl_context",
]

FAL_HOSTNAMES: Final = tuple(HOST_TO_LOGICAL)
"""Every fal host name the mock serves, canonical names first."""

FORWARDED: Final = "fal_mock_forwarded"
"""Request extension marking a request that passes to the network: one the plugin already sent
on to a target, a control-plane call, or a webhook the mock sends (its dispatcher marks its
requests so: ``mock_server.webhooks.dispatch.PASS_THROUGH``)."""

_PREFIXES: Final = frozenset(h.value for h in LogicalHost)

LIVE_ORIGINS: Final[set[str]] = set()
"""``scheme://host:port`` of the live mocks this process runs for the plugin
(``fal_mock_server``): requests to them pass, so a test may use both fixtures."""

_OTHER_FAL_MEDIA: Final = re.compile(r"^(?:[a-z0-9-]+\.)*fal\.media$")
"""File URLs on any other ``*.fal.media`` name are served as the CDN (``v3.fal.media``)."""

# True while respx resolves a request for an async client: side effects then answer with a
# coroutine (respx awaits it), and with a response for a sync client.
_ASYNC: contextvars.ContextVar[bool] = contextvars.ContextVar("fal_mock_async", default=False)

Send = Callable[[httpx.Request], httpx.Response]
SendAsync = Callable[[httpx.Request], Awaitable[httpx.Response]]


class UnmockedHostError(AllMockedAssertionError):
    """A request to a host that is not fal's, made while the fal mock was routing.

    An ``AssertionError``, like respx's own: the code under test tried to leave the sandbox.
    """


class FalRouter(respx.MockRouter):
    """A respx router that tells sync callers from async ones and names escaped hosts."""

    def __init__(self, target: Target) -> None:
        super().__init__(assert_all_called=False, assert_all_mocked=True)
        self.target = target
        self.escaped: list[str] = []
        """``METHOD URL`` of each request no route matched, oldest first."""
        self.tripwire: Callable[[httpx.Request], BaseException] | None = None
        """When set, every request raises what it makes (the fuzzer stops a client that does
        not finish: a BaseException gets past the client's ``except Exception``)."""

    def resolve(self, request: httpx.Request) -> ResolvedRoute:
        if self.tripwire is not None:
            raise self.tripwire(request)
        try:
            return super().resolve(request)
        except AllMockedAssertionError:
            raise self._escape(request) from None

    async def aresolve(self, request: httpx.Request) -> ResolvedRoute:
        if self.tripwire is not None:
            raise self.tripwire(request)
        token = _ASYNC.set(True)
        try:
            return await super().aresolve(request)
        except AllMockedAssertionError:
            raise self._escape(request) from None
        finally:
            _ASYNC.reset(token)

    def _escape(self, request: httpx.Request) -> UnmockedHostError:
        # With other respx routers active (a test's own respx_mock), one of them may still
        # answer: only an escape no other router can catch is remembered for teardown.
        mocker = self.Mocker
        if mocker is None or all(router is self for router in mocker.routers):
            self.escaped.append(f"{request.method} {request.url}")
        where = "a fal host nor the target's" if self.target.remote else "one of fal's hosts"
        return UnmockedHostError(
            f"fal_mock: {request.method} {request.url} was stopped: {request.url.host!r} is "
            f"{'neither ' if self.target.remote else 'not '}{where}, and fal_mock lets nothing "
            "else reach the network. Mock that host on fal_mock.router (respx routes), or send "
            f"the request to a fal host. fal hosts served: {', '.join(FAL_HOSTNAMES)}, "
            "*.fal.media."
        )


def _either(send: Send, send_async: SendAsync) -> Callable[[httpx.Request], RouteResultTypes]:
    def side_effect(request: httpx.Request) -> RouteResultTypes:
        return send_async(request) if _ASYNC.get() else send(request)

    return side_effect


def _as_cdn(request: httpx.Request) -> httpx.Request:
    cdn = FAL_HOSTS[LogicalHost.CDN][0]
    headers = request.headers.copy()
    headers["host"] = cdn
    return httpx.Request(
        request.method,
        request.url.copy_with(host=cdn),
        headers=headers,
        content=request.content,
        extensions=request.extensions,
    )


def _to_live_mock(request: httpx.Request) -> httpx.Request | None:
    origin = f"{request.url.scheme}://{request.url.netloc.decode()}"
    return request if origin in LIVE_ORIGINS else None  # the request itself: pass through


def _marked_to_pass(request: httpx.Request) -> httpx.Request | None:
    return request if request.extensions.get(FORWARDED) else None  # the request: pass through


def _marked_or_to_live_mock(request: httpx.Request) -> httpx.Request | None:
    # One route for both: respx keeps one route per pattern, and both match every request.
    return _marked_to_pass(request) or _to_live_mock(request)


def route_to_app(router: FalRouter, bridge: AsgiBridge) -> None:
    """fal's hosts answered by the app on the bridge's loop."""
    router.route(name="marked to pass, and the plugin's live mocks").mock(
        side_effect=_marked_or_to_live_mock
    )
    router.route(name="fal hosts", host__in=FAL_HOSTNAMES).mock(
        side_effect=_either(bridge.send, bridge.send_async)
    )
    router.route(name="other fal.media files", host__regex=_OTHER_FAL_MEDIA).mock(
        side_effect=_either(
            lambda r: bridge.send(_as_cdn(r)), lambda r: bridge.send_async(_as_cdn(r))
        )
    )


def route_to_target(router: FalRouter, forwarder: TargetForwarder) -> None:
    """fal's hosts sent on to a ``--fal-target`` (and recorded); so are requests to the
    target's own URLs, which its answers lead to."""
    effect = forwarder.side_effect
    router.route(name="marked to pass").mock(side_effect=_marked_to_pass)
    router.route(name="fal hosts", host__in=FAL_HOSTNAMES).mock(side_effect=effect)
    if forwarder.target.kind == "fal":
        router.route(name="fal.media files", host__regex=_OTHER_FAL_MEDIA).mock(side_effect=effect)
    else:
        origin = forwarder.target.origin
        router.route(name="the target", url__startswith=origin + "/").mock(side_effect=effect)


class TargetForwarder:
    """Sends a request meant for fal to the target, for real, and records the exchange.

    What is sent goes through the router again, marked, and passes to the network there."""

    def __init__(self, target: Target, recorder: Recorder) -> None:
        self.target = target
        self.recorder = recorder
        self._client = httpx.Client(verify=ssl_context())
        # Where the target serves fal's hosts as path prefixes (a fal-mock, or one behind
        # the proxy): the URLs in its answers point there.
        self._layout_base = (
            target.url[: -len(PROXY_SUFFIX)] if target.kind == "proxy" else target.url
        )

    def side_effect(self, request: httpx.Request) -> RouteResultTypes:
        if request.extensions.get(FORWARDED):
            return request  # respx lets a request that is returned as it came pass through
        plan = self.plan(request)
        if plan is None:
            return request
        if _ASYNC.get():
            return self._send_async(request, *plan)
        return self._send(request, *plan)

    def plan(self, request: httpx.Request) -> tuple[httpx.Request, str, str] | None:
        """What to send, and the logical host and host-relative path to record it under;
        None for a request to the target that is not fal traffic (its control plane)."""
        url = request.url
        headers = request.headers.copy()
        logical = HOST_TO_LOGICAL.get(url.host)
        if logical is None and _OTHER_FAL_MEDIA.match(url.host):
            logical = LogicalHost.CDN
        if logical is not None:
            path = url.raw_path.decode()
            if self.target.kind == "fal":
                outgoing = url
            elif self.target.kind == "proxy":
                headers[PROXY_TARGET_HEADER] = str(url)
                outgoing = httpx.URL(self.target.url)
            else:
                outgoing = httpx.URL(f"{self.target.url}/{logical.value}{path}")
        else:
            if self.target.kind == "fal" or not str(url).startswith(self._layout_base + "/"):
                return None
            prefix, _, tail = str(url)[len(self._layout_base) + 1 :].partition("/")
            if prefix not in _PREFIXES:
                return None
            logical, path, outgoing = LogicalHost(prefix), "/" + tail, url
        if outgoing.host != url.host:
            del headers["host"]
        timeout = _timeout(request)
        sent = httpx.Request(
            request.method,
            outgoing,
            headers=headers,
            content=request.content,
            extensions={"timeout": timeout.as_dict(), FORWARDED: True},
        )
        return sent, logical.value, path

    def _send(
        self, request: httpx.Request, sent: httpx.Request, host: str, path: str
    ) -> httpx.Response:
        answer = self._client.send(sent, stream=True)
        try:
            raw = b"".join(answer.iter_raw())
        finally:
            answer.close()
        return self._answer(request, answer, raw, host, path)

    async def _send_async(
        self, request: httpx.Request, sent: httpx.Request, host: str, path: str
    ) -> httpx.Response:
        # One pooled sync client serves both: an AsyncClient would belong to one event loop.
        return await asyncio.to_thread(self._send, request, sent, host, path)

    def close(self) -> None:
        self._client.close()

    def _answer(
        self, request: httpx.Request, answer: httpx.Response, raw: bytes, host: str, path: str
    ) -> httpx.Response:
        response = httpx.Response(answer.status_code, headers=answer.headers.raw, content=raw)
        query = path.partition("?")[2]
        self.recorder.record(
            request,
            host=host,
            path=path.partition("?")[0],
            query=query,
            response=response,
            body=response.content,  # decoded
        )
        return response


def ssl_context() -> ssl.SSLContext:
    """httpx's default context (certifi, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), made once:
    making one costs tens of milliseconds."""
    return _ssl_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.cache
def _ssl_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    return httpx.create_ssl_context()


def _timeout(request: httpx.Request) -> httpx.Timeout:
    given: dict[str, float | None] = request.extensions.get("timeout", {})
    return httpx.Timeout(**given) if given else httpx.Timeout(30.0)
