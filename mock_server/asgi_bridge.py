"""httpx requests answered by an ASGI app on a private event loop, for sync and async callers.

``httpx.ASGITransport`` serves async clients only, on the caller's own loop, and buffers each
answer whole. The pytest plugin needs more: fal-client's sync client (``httpx.Client``) and its
async client must both reach the same app, the app must always run on one loop (whatever loop
each test has), and answers must stream as the app writes them (server-sent events). So the app
runs on an event loop in a daemon thread; a caller in any thread hands a request over and gets
back an ``httpx.Response`` whose body arrives chunk by chunk. What a real server would do is
kept: the client's read timeout applies, closing a response early tells the app the client went
away (``http.disconnect``), and an app that ends without answering looks like a dropped
connection (``httpx.RemoteProtocolError``). An exception raised by the app is re-raised to the
caller, as ``ASGITransport`` does: a bug in the app should be loud in a test.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, Final, TypeVar

import httpx
from starlette.types import ASGIApp, Message

__all__ = ["AppThread", "AsgiBridge"]

T = TypeVar("T")

_END: Final = object()


class AppThread:
    """An event loop in a daemon thread; coroutines are handed to it from any thread."""

    def __init__(self, name: str = "fal-mock-app") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call_soon(self, callback: Any, *args: Any) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(callback, *args)

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel what is still running (answers never read, streams left open), then stop."""
        if self.loop.is_closed():
            return
        if self._thread.is_alive():
            self.submit(self._cancel_all()).result(timeout)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
        self.loop.close()

    async def _cancel_all(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _Exchange:
    """One request in flight: the response head as a thread-safe future, the body as a queue
    that lives on the app's loop."""

    def __init__(self, request: httpx.Request) -> None:
        self.request = request
        self.head: concurrent.futures.Future[tuple[int, list[tuple[bytes, bytes]]]]
        self.head = concurrent.futures.Future()
        self.chunks: asyncio.Queue[object] = asyncio.Queue()
        self.gone = asyncio.Event()  # the client closed the response

    async def next_chunk(self) -> object:
        return await self.chunks.get()

    def disconnect(self) -> None:
        self.gone.set()


def _read_timeout(request: httpx.Request) -> float | None:
    timeout: dict[str, float | None] = request.extensions.get("timeout", {})
    return timeout.get("read")


class AsgiBridge:
    def __init__(self, app: ASGIApp, thread: AppThread) -> None:
        self.app = app
        self.thread = thread

    # -- the two ways in -------------------------------------------------------------------

    def send(self, request: httpx.Request) -> httpx.Response:
        exchange = self._start(request)
        try:
            status, headers = exchange.head.result(_read_timeout(request))
        except concurrent.futures.TimeoutError:
            self.thread.call_soon(exchange.disconnect)
            raise httpx.ReadTimeout("the mock did not answer in time", request=request) from None
        return httpx.Response(status, headers=headers, stream=_SyncBody(self, exchange))

    async def send_async(self, request: httpx.Request) -> httpx.Response:
        exchange = self._start(request)
        try:
            status, headers = await asyncio.wait_for(
                asyncio.wrap_future(exchange.head), _read_timeout(request)
            )
        except TimeoutError:
            self.thread.call_soon(exchange.disconnect)
            raise httpx.ReadTimeout("the mock did not answer in time", request=request) from None
        return httpx.Response(status, headers=headers, stream=_AsyncBody(self, exchange))

    # -- the app's side, on its loop ------------------------------------------------------

    def _start(self, request: httpx.Request) -> _Exchange:
        exchange = _Exchange(request)
        self.thread.submit(self._serve(exchange))
        return exchange

    async def _serve(self, exchange: _Exchange) -> None:
        request = exchange.request
        body = request.content  # read in full by respx before the route was resolved
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await exchange.gone.wait()
            return {"type": "http.disconnect"}

        complete = False

        async def send(message: Message) -> None:
            nonlocal complete
            if message["type"] == "http.response.start":
                headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
                exchange.head.set_result((message["status"], headers))
            elif message["type"] == "http.response.body" and not complete:
                chunk = message.get("body", b"")
                if chunk and request.method != "HEAD":
                    exchange.chunks.put_nowait(chunk)
                complete = not message.get("more_body", False)

        try:
            await self.app(_scope(request), receive, send)
        except BaseException as exc:
            # The end of the body waits for the app to return, so an exception raised after
            # the answer was sent (Starlette's 500 handler re-raises) still reaches the caller.
            if not exchange.head.done():
                exchange.head.set_exception(exc)
            else:
                exchange.chunks.put_nowait(exc)
            if not isinstance(exc, Exception):
                raise
            return
        if complete:
            exchange.chunks.put_nowait(_END)
        elif not exchange.head.done():
            exchange.head.set_exception(
                httpx.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=request
                )
            )
        else:
            exchange.chunks.put_nowait(
                httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body",
                    request=request,
                )
            )


def _scope(request: httpx.Request) -> dict[str, Any]:
    url = request.url
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "headers": [(k.lower(), v) for k, v in request.headers.raw],  # Host included
        "scheme": url.scheme,
        "path": url.path,
        "raw_path": url.raw_path.split(b"?")[0],
        "query_string": url.query,
        "server": (url.host, url.port or (443 if url.scheme == "https" else 80)),
        "client": ("127.0.0.1", 123),
        "root_path": "",
    }


def _unwrap(item: object) -> bytes | None:
    if item is _END:
        return None
    if isinstance(item, BaseException):
        raise item
    assert isinstance(item, bytes)
    return item


class _SyncBody(httpx.SyncByteStream):
    def __init__(self, bridge: AsgiBridge, exchange: _Exchange) -> None:
        self.bridge, self.exchange = bridge, exchange

    def __iter__(self) -> Iterator[bytes]:
        timeout = _read_timeout(self.exchange.request)
        while True:
            future = self.bridge.thread.submit(self.exchange.next_chunk())
            try:
                item = future.result(timeout)
            except concurrent.futures.TimeoutError:
                future.cancel()
                raise httpx.ReadTimeout(
                    "the mock sent nothing in time", request=self.exchange.request
                ) from None
            chunk = _unwrap(item)
            if chunk is None:
                return
            yield chunk

    def close(self) -> None:
        self.bridge.thread.call_soon(self.exchange.disconnect)


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, bridge: AsgiBridge, exchange: _Exchange) -> None:
        self.bridge, self.exchange = bridge, exchange

    async def __aiter__(self) -> AsyncIterator[bytes]:
        timeout = _read_timeout(self.exchange.request)
        while True:
            future = self.bridge.thread.submit(self.exchange.next_chunk())
            try:
                item = await asyncio.wait_for(asyncio.wrap_future(future), timeout)
            except TimeoutError:
                raise httpx.ReadTimeout(
                    "the mock sent nothing in time", request=self.exchange.request
                ) from None
            chunk = _unwrap(item)
            if chunk is None:
                return
            yield chunk

    async def aclose(self) -> None:
        self.bridge.thread.call_soon(self.exchange.disconnect)
