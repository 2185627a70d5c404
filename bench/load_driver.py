"""The load test's clients: full lifecycles from many concurrent clients, plus held SSE streams.

One round against any fal-mock (``base_url``): ``held_streams`` requests are submitted with
``x-mock-policy: polls:999999`` (they stay IN_QUEUE however long the round takes) and a status
stream is opened on each and held; then ``clients`` workers run ``lifecycles`` full lifecycles
between them: submit -> poll the status (or, for ``sse_share`` of them, stream it) until
COMPLETED -> fetch the result -> download the output file. Once they are done, every held request
is cancelled (fal's ``PUT .../cancel``), and each held stream must then see COMPLETED and close.

Every answer is checked, not only counted: a 5xx, a 404 for an id the server gave out, an
unexpected status code or body, a lifecycle that does not complete in time, a held stream that
closes early: each is a :class:`Failure` with a category and a few examples. What makes a round
pass is :attr:`RoundReport.passed`; the figures (latencies, counts) are read, never asserted.

Each simulated client is one keep-alive connection of :mod:`bench.load_http` (a lean HTTP/1.1
client: httpx kept the client's core at 100 % with the server at 40 %), and so is each held
stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

from bench.load_http import Answer, Connection, TransportError
from bench.load_model import Plan, RoundReport

__all__ = ["AUTH", "LifecycleError", "run_round"]

QUEUE_PATH: Final = "/queue/fal-ai/lipsync"
AUTH: Final = {"Authorization": "Key load-test"}
SUBMIT_BODY: Final = {
    "video_url": "https://example.com/face.mp4",
    "audio_url": "https://example.com/speech.mp3",
}
HELD_POLICY: Final = "polls:999999"
"""Each stream tick counts as a poll: 999,999 ticks of 50 ms are 14 hours, far beyond a round."""
ORDER: Final = {"IN_QUEUE": 0, "IN_PROGRESS": 1, "COMPLETED": 2}
CANCEL_CONCURRENCY: Final = 8
"""Cancels in flight at once: few, so that they reach the server in the order sent."""


class LifecycleError(Exception):
    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category = category


class _Round:
    def __init__(self, base_url: str, plan: Plan, report: RoundReport) -> None:
        self.base_url, self.plan, self.report = base_url, plan, report
        self.cancelling = asyncio.Event()

    # -- one HTTP exchange, timed and checked ----------------------------------------------

    async def call(self, op: str, sent: Awaitable[Answer], request_id: str | None = None) -> Answer:
        started = time.perf_counter()
        response = await sent
        self.report.latencies[op].append(time.perf_counter() - started)
        self.report.codes[op][response.status_code] += 1
        self.check_code(op, response, request_id)
        return response

    def check_code(self, op: str, response: Answer, request_id: str | None) -> None:
        code = response.status_code
        if code >= 500:
            raise LifecycleError("5xx", f"{op} answered {code}: {response.text[:200]}")
        if code == 404 and request_id is not None:
            self.report.lost.add(request_id)
            raise LifecycleError("lost", f"{op} of {request_id} answered 404: {response.text}")

    # -- lifecycles -------------------------------------------------------------------------

    async def submit(self, client: Connection, kind: str) -> dict[str, Any]:
        headers = {"x-mock-policy": HELD_POLICY} if kind == "held" else {}
        sent = client.post_json(f"{self.base_url}{QUEUE_PATH}", SUBMIT_BODY, headers)
        sent_at = time.perf_counter()
        response = await self.call("submit", sent)
        body = _json(response)
        request_id = body.get("request_id")
        if response.status_code != 200 or not isinstance(request_id, str):
            raise LifecycleError(
                "wrong answer", f"submit answered {response.status_code}: {response.text[:200]}"
            )
        self.report.submitted[request_id] = kind
        self.report.pending_at[request_id] = sent_at
        if isinstance(position := body.get("queue_position"), int):
            self.report.queue_positions[request_id] = position
        return body

    async def lifecycle(self, client: Connection, number: int) -> None:
        stream = self.plan.streams(number)
        queued = await self.submit(client, "stream" if stream else "poll")
        request_id = queued["request_id"]
        if stream:
            final = await self.stream_until_completed(client, queued["status_url"], request_id)
        else:
            final = await self.poll_until_completed(client, queued["status_url"], request_id)
        if final.get("error") is not None:
            raise LifecycleError("wrong answer", f"{request_id} completed with {final}")
        sent = client.get(queued["response_url"])
        response = await self.call("result", sent, request_id)
        video = _json(response).get("video") if response.status_code == 200 else None
        if not isinstance(video, dict) or not isinstance(video.get("url"), str):
            raise LifecycleError(
                "wrong answer", f"result of {request_id}: {response.status_code} {response.text}"
            )
        download = await self.call("file", client.get(video["url"]))
        data = download.content
        if (
            download.status_code != 200
            or len(data) != video.get("file_size")
            or data[4:8] != b"ftyp"
        ):
            raise LifecycleError(
                "wrong answer",
                f"file of {request_id}: {download.status_code}, {len(data)} bytes "
                f"(result said {video.get('file_size')}), starts {data[:12]!r}",
            )

    async def poll_until_completed(
        self, client: Connection, status_url: str, request_id: str
    ) -> dict[str, Any]:
        last = -1
        while True:
            sent_at = time.perf_counter()
            response = await self.call("status", client.get(status_url), request_id)
            body = _json(response)
            status = body.get("status")
            expected = 200 if status == "COMPLETED" else 202
            if status not in ORDER or response.status_code != expected:
                raise LifecycleError(
                    "wrong answer", f"status of {request_id}: {response.status_code} {body}"
                )
            self.check_order(request_id, last, status)
            last = ORDER[status]
            if status == "COMPLETED":
                self.report.completed[request_id] = time.perf_counter()
                return body
            self.report.pending_at[request_id] = sent_at
            await asyncio.sleep(self.plan.poll_interval)

    async def stream_until_completed(
        self, client: Connection, status_url: str, request_id: str
    ) -> dict[str, Any]:
        final: dict[str, Any] | None = None
        async for event in self.events(client, f"{status_url}/stream", request_id):
            if final is not None:
                raise LifecycleError("wrong answer", f"stream of {request_id}: event after end")
            if event.get("status") == "COMPLETED":
                final = event
                self.report.completed[request_id] = time.perf_counter()
        if final is None:
            raise LifecycleError("wrong answer", f"stream of {request_id} ended before COMPLETED")
        return final

    async def events(
        self, client: Connection, url: str, request_id: str
    ) -> AsyncIterator[dict[str, Any]]:
        """The stream's events in order (checked never to go backwards), until it closes."""
        started, last = time.perf_counter(), -1
        async with client.stream(url, {"Accept": "text/event-stream"}) as answer:
            self.report.codes["stream"][answer.status_code] += 1
            if answer.status_code != 200:
                await answer.aread()
                self.check_code("stream", answer, request_id)
                raise LifecycleError(
                    "wrong answer", f"stream of {request_id}: {answer.status_code} {answer.text}"
                )
            async for line in answer.aiter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators and keep-alive comments
                if last < 0:
                    self.report.latencies["stream"].append(time.perf_counter() - started)
                event = json.loads(line[5:])
                if not isinstance(event, dict):
                    raise LifecycleError("wrong answer", f"stream of {request_id}: {line}")
                status = event.get("status")
                if status not in ORDER or event.get("request_id") != request_id:
                    raise LifecycleError("wrong answer", f"stream of {request_id}: {event}")
                self.check_order(request_id, last, status)
                last = ORDER[status]
                if status != "COMPLETED":  # told after the stream was asked for
                    self.report.pending_at[request_id] = started
                yield event

    def check_order(self, request_id: str, last: int, status: str) -> None:
        if ORDER[status] < last:
            raise LifecycleError("wrong answer", f"{request_id} went back to {status}")

    def connect(self) -> Connection:
        return Connection(self.base_url, AUTH)

    async def worker(self, numbers: list[int]) -> None:
        """One client: lifecycles one after another on one keep-alive connection."""
        client = self.connect()
        try:
            while numbers:
                await self.one_lifecycle(client, numbers.pop())
        finally:
            await client.close()

    async def one_lifecycle(self, client: Connection, number: int) -> None:
        try:
            await asyncio.wait_for(self.lifecycle(client, number), self.plan.lifecycle_timeout)
        except LifecycleError as error:
            self.report.fail(error.category, str(error))
        except TimeoutError:
            limit = self.plan.lifecycle_timeout
            self.report.fail("incomplete", f"lifecycle {number}: not done in {limit:g} s")
        except TransportError as error:
            self.report.fail("incomplete", f"lifecycle {number}: {error}")
        except Exception as error:  # an answer not shaped as fal's: reported, never a crash
            self.report.fail("wrong answer", f"lifecycle {number}: {error!r}")
        else:
            self.report.lifecycles_done += 1

    # -- held streams -----------------------------------------------------------------------

    async def held(self, opened: asyncio.Queue[str | None]) -> None:
        """Submit, open the stream, hold it until the cancel, then see it end COMPLETED."""
        request_id: str | None = None
        announced = False
        client = self.connect()
        try:
            queued = await self.submit(client, "held")
            request_id = queued["request_id"]
            async for event in self.events(client, f"{queued['status_url']}/stream", request_id):
                if event.get("status") == "COMPLETED":
                    self.held_completed(request_id, event)
                elif event.get("status") != "IN_QUEUE":
                    raise LifecycleError("held stream", f"{request_id} started: {event}")
                elif not announced:  # later IN_QUEUE events: its queue position moved
                    announced = True
                    self.report.held_opened += 1
                    opened.put_nowait(request_id)
            if not self.cancelling.is_set():
                raise LifecycleError("held stream", f"stream of {request_id} closed before cancel")
            if request_id not in self.report.completed:
                raise LifecycleError("held stream", f"{request_id} ended without COMPLETED")
        except LifecycleError as error:
            self.report.fail(error.category, str(error))
        except Exception as error:  # transport errors, and answers not shaped as fal's
            self.report.fail("held stream", f"held {request_id}: {error!r}")
        finally:
            if not announced:
                opened.put_nowait(None)  # never opened: the round does not wait for it
            await client.close()

    def held_completed(self, request_id: str, event: dict[str, Any]) -> None:
        if not self.cancelling.is_set() or event.get("error_type") != "request_cancelled":
            raise LifecycleError("held stream", f"{request_id} completed on its own: {event}")
        self.report.completed[request_id] = time.perf_counter()
        self.report.held_completed += 1

    async def cancel_held(self) -> None:
        """Cancel every held request, from the back of the queue: a cancel then moves no other
        held request's queue position, so the streams see one event each, their last (from the
        front, each cancel would move all those behind: 125,000 events for 500 streams)."""
        self.cancelling.set()
        held = [rid for rid, kind in self.report.submitted.items() if kind == "held"]
        held.sort(key=lambda rid: self.report.queue_positions.get(rid, 0))  # popped from the end

        async def canceller() -> None:
            client = self.connect()
            try:
                while held:
                    await self.cancel(client, held.pop())
            finally:
                await client.close()

        await asyncio.gather(*(canceller() for _ in range(CANCEL_CONCURRENCY)))

    async def cancel(self, client: Connection, request_id: str) -> None:
        url = f"{self.base_url}{QUEUE_PATH}/requests/{request_id}/cancel"
        try:
            response = await self.call("cancel", client.put(url), request_id)
        except LifecycleError as error:
            self.report.fail(error.category, str(error))
        except TransportError as error:
            self.report.fail("held stream", f"cancel {request_id}: {error}")
        else:
            if response.status_code != 202:
                self.report.fail("held stream", f"cancel {request_id}: {response.status_code}")


def _json(response: Answer) -> dict[str, Any]:
    """The body as a JSON object; {} for anything else (the checks then say what is missing)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


async def run_round(
    base_url: str,
    plan: Plan,
    report: RoundReport | None = None,
    on_phase: Callable[[str], None] = lambda phase: None,
) -> RoundReport:
    """One round; what it found is in the report, which the caller may pass in so that what
    was measured survives a deadline that cancels this coroutine. ``on_phase`` is told of
    each phase as it starts: opening (the held streams), lifecycles, cancelling (the held)."""
    report = report or RoundReport(plan)
    on_phase("opening")
    state = _Round(base_url.rstrip("/"), plan, report)
    opened: asyncio.Queue[str | None] = asyncio.Queue()
    held = [asyncio.create_task(state.held(opened)) for _ in range(plan.held_streams)]
    try:
        await _wait_opened(opened, plan, report)
        on_phase("lifecycles")
        numbers = list(range(plan.lifecycles))[::-1]  # popped from the end: 0 first
        started, answers = time.perf_counter(), report.answers()
        await asyncio.gather(*(state.worker(numbers) for _ in range(plan.clients)))
        report.seconds = time.perf_counter() - started
        report.requests_in_lifecycles = report.answers() - answers
        on_phase("cancelling")
        await state.cancel_held()
        if held:
            _, pending = await asyncio.wait(held, timeout=plan.open_timeout)
            for _ in pending:
                limit = plan.open_timeout
                report.fail("held stream", f"a held stream still open {limit:g} s after cancel")
    finally:
        for task in held:
            task.cancel()
        await asyncio.gather(*held, return_exceptions=True)
    return report


async def _wait_opened(opened: asyncio.Queue[str | None], plan: Plan, report: RoundReport) -> None:
    """Until every held stream has its first event (or gave up): the lifecycles run with all
    of them open."""
    deadline = time.perf_counter() + plan.open_timeout
    for _ in range(plan.held_streams):
        remaining = deadline - time.perf_counter()
        try:
            await asyncio.wait_for(opened.get(), max(remaining, 0.001))
        except TimeoutError:
            report.fail("held stream", f"held streams not open after {plan.open_timeout:g} s")
            return
