"""The bridge that answers in-process requests from an app on a private event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mock_server.asgi_bridge import AppThread, AsgiBridge

Scope = dict[str, Any]


@pytest.fixture
def thread() -> Iterator[AppThread]:
    app_thread = AppThread()
    yield app_thread
    app_thread.stop()


def request(read_timeout: float | None = 5.0) -> httpx.Request:
    timeout = {"connect": None, "read": read_timeout, "write": None, "pool": None}
    return httpx.Request("GET", "https://queue.fal.run/x", extensions={"timeout": timeout})


async def start(send: Any, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"x-a", b"1")]})


def test_the_app_sees_the_original_url_and_host(thread: AppThread) -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(scope)
        body = await receive()
        await start(send)
        await send({"type": "http.response.body", "body": body["body"][::-1]})

    sent = httpx.Request("POST", "https://fal.run/fal-ai/lipsync?a=1", content=b"abc")
    answer = AsgiBridge(app, thread).send(sent)
    assert (answer.status_code, answer.headers["x-a"], answer.read()) == (200, "1", b"cba")
    (scope,) = seen
    assert (scope["scheme"], scope["path"], scope["query_string"]) == (
        "https",
        "/fal-ai/lipsync",
        b"a=1",
    )
    assert dict(scope["headers"])[b"host"] == b"fal.run"
    assert scope["server"] == ("fal.run", 443)


def test_the_body_streams_as_the_app_writes_it(thread: AppThread) -> None:
    second = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await start(send)
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        await asyncio.to_thread(second.wait, 5)
        await send({"type": "http.response.body", "body": b"two"})

    chunks = AsgiBridge(app, thread).send(request()).iter_raw()
    assert next(chunks) == b"one"  # before the app has written the rest
    second.set()
    assert list(chunks) == [b"two"]


def test_closing_early_tells_the_app_the_client_left(thread: AppThread) -> None:
    messages: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await start(send)
        await send({"type": "http.response.body", "body": b"event", "more_body": True})
        messages.append((await receive())["type"])

    answer = AsgiBridge(app, thread).send(request())
    assert next(answer.iter_raw()) == b"event"
    answer.close()
    thread.submit(asyncio.sleep(0.05)).result()
    assert messages == ["http.disconnect"]


def test_the_read_timeout_applies(thread: AppThread) -> None:
    async def silent(scope: Scope, receive: Any, send: Any) -> None:
        await asyncio.sleep(10)

    with pytest.raises(httpx.ReadTimeout):
        AsgiBridge(silent, thread).send(request(read_timeout=0.05))

    async def stalls(scope: Scope, receive: Any, send: Any) -> None:
        await start(send)
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await asyncio.sleep(10)

    answer = AsgiBridge(stalls, thread).send(request(read_timeout=0.05))
    with pytest.raises(httpx.ReadTimeout):
        answer.read()


def test_an_app_that_does_not_answer_looks_like_a_dropped_connection(thread: AppThread) -> None:
    async def nothing(scope: Scope, receive: Any, send: Any) -> None:
        return

    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        AsgiBridge(nothing, thread).send(request())

    async def half(scope: Scope, receive: Any, send: Any) -> None:
        await start(send)
        await send({"type": "http.response.body", "body": b"a", "more_body": True})

    answer = AsgiBridge(half, thread).send(request())
    with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
        answer.read()


def test_app_exceptions_reach_the_caller(thread: AppThread) -> None:
    async def broken(scope: Scope, receive: Any, send: Any) -> None:
        raise LookupError("a bug in the app")

    with pytest.raises(LookupError, match="a bug in the app"):
        AsgiBridge(broken, thread).send(request())

    async def broken_after_500(scope: Scope, receive: Any, send: Any) -> None:
        await start(send, 500)
        await send({"type": "http.response.body", "body": b"Internal Server Error"})
        raise LookupError("re-raised after the 500")

    answer = AsgiBridge(broken_after_500, thread).send(request())
    assert answer.status_code == 500
    with pytest.raises(LookupError, match="re-raised"):
        answer.read()


async def test_async_callers_await_without_blocking_their_loop(thread: AppThread) -> None:
    test_loop = asyncio.get_running_loop()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        assert asyncio.get_running_loop() is not test_loop  # the app has its own loop
        await start(send)
        await send({"type": "http.response.body", "body": b"ok"})

    bridge = AsgiBridge(app, thread)
    answers = await asyncio.gather(*(bridge.send_async(request()) for _ in range(3)))
    assert [await a.aread() for a in answers] == [b"ok"] * 3


def test_stop_cancels_what_still_runs() -> None:
    app_thread = AppThread()
    cancelled = threading.Event()

    async def forever(scope: Scope, receive: Any, send: Any) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    AsgiBridge(forever, app_thread)._start(request())
    app_thread.stop()
    assert cancelled.wait(1) and app_thread.loop.is_closed()
