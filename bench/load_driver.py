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

httpx's ``AsyncClient``: the lifecycles are what a real client does, and at 200 clients it costs
the client's core less than the server's (the session prints both CPU shares).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

__all__ = ["CATEGORIES", "Plan", "RoundReport", "percentile", "run_round"]

QUEUE_PATH: Final = "/queue/fal-ai/lipsync"
AUTH: Final = {"Authorization": "Key load-test"}
SUBMIT_BODY: Final = {
    "video_url": "https://example.com/face.mp4",
    "audio_url": "https://example.com/speech.mp3",
}
HELD_POLICY: Final = "polls:999999"
"""Each stream tick counts as a poll: 999,999 ticks of 50 ms are 14 hours, far beyond a round."""
ORDER: Final = {"IN_QUEUE": 0, "IN_PROGRESS": 1, "COMPLETED": 2}
CATEGORIES: Final = ("lost", "5xx", "incomplete", "wrong answer", "held stream", "deadline")
"""Failure kinds (the session adds ``deadline`` to a round the deadline cut short)."""
EXAMPLES: Final = 5
CANCEL_CONCURRENCY: Final = 8
"""Cancels in flight at once: few, so that they reach the server in the order sent."""


@dataclass(frozen=True, slots=True)
class Plan:
    clients: int = 200
    lifecycles: int = 2_000
    held_streams: int = 500
    sse_share: float = 0.25
    """Share of lifecycles that stream their status instead of polling it."""
    poll_interval: float = 0.1
    lifecycle_timeout: float = 60.0
    """A lifecycle not done in this long is reported incomplete (and given up)."""
    open_timeout: float = 120.0
    """Longest wait for every held stream's first event, and for them all to close after
    their cancel."""

    def streams(self, number: int) -> bool:
        """Whether lifecycle ``number`` streams: spread evenly, the same ones every run."""
        return math.floor((number + 1) * self.sse_share) > math.floor(number * self.sse_share)


@dataclass(slots=True)
class Failure:
    count: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass(slots=True)
class RoundReport:
    plan: Plan
    submitted: dict[str, str] = field(default_factory=dict)
    """Every request id a submit answered, and what it was for: poll, stream or held."""
    completed: dict[str, float] = field(default_factory=dict)
    """Ids the server answered COMPLETED (status, stream event), and when (perf_counter)."""
    lifecycles_done: int = 0
    held_opened: int = 0
    held_completed: int = 0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    codes: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    failures: dict[str, Failure] = field(default_factory=dict)
    lost: set[str] = field(default_factory=set)
    """Ids a submit gave out that the server then did not know (404, or not in its list)."""
    pending_at: dict[str, float] = field(default_factory=dict)
    """For each id, when the client last sent a request whose answer showed it not yet
    COMPLETED (perf_counter): it completed on the server after that, so its retention cannot
    have passed before this plus the retention."""
    queue_positions: dict[str, int] = field(default_factory=dict)
    """Held requests' queue positions at submit: they are cancelled from the back."""
    seconds: float = 0.0
    """The lifecycles' wall time (held streams open before, cancelled after)."""
    requests_in_lifecycles: int = 0

    def fail(self, category: str, message: str) -> None:
        failure = self.failures.setdefault(category, Failure())
        failure.count += 1
        if len(failure.examples) < EXAMPLES:
            failure.examples.append(message)

    def failed(self, category: str) -> int:
        return self.failures[category].count if category in self.failures else 0

    @property
    def passed(self) -> bool:
        return not self.failures and self.lifecycles_done == self.plan.lifecycles

    def answers(self) -> int:
        return sum(sum(counter.values()) for counter in self.codes.values())

    def server_errors(self) -> int:
        return sum(n for c in self.codes.values() for code, n in c.items() if code >= 500)


class LifecycleError(Exception):
    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category = category


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)), 1) - 1]


class _Round:
    def __init__(self, base_url: str, plan: Plan, report: RoundReport) -> None:
        self.base_url, self.plan, self.report = base_url, plan, report
        self.cancelling = asyncio.Event()

    # -- one HTTP exchange, timed and checked ----------------------------------------------

    async def call(
        self, op: str, sent: Awaitable[httpx.Response], request_id: str | None = None
    ) -> httpx.Response:
        started = time.perf_counter()
        response = await sent
        self.report.latencies[op].append(time.perf_counter() - started)
        self.report.codes[op][response.status_code] += 1
        self.check_code(op, response, request_id)
        return response

    def check_code(self, op: str, response: httpx.Response, request_id: str | None) -> None:
        code = response.status_code
        if code >= 500:
            raise LifecycleError("5xx", f"{op} answered {code}: {response.text[:200]}")
        if code == 404 and request_id is not None:
            self.report.lost.add(request_id)
            raise LifecycleError("lost", f"{op} of {request_id} answered 404: {response.text}")

    # -- lifecycles -------------------------------------------------------------------------

    async def submit(self, client: httpx.AsyncClient, kind: str) -> dict[str, Any]:
        headers = {"x-mock-policy": HELD_POLICY} if kind == "held" else {}
        sent = client.post(f"{self.base_url}{QUEUE_PATH}", json=SUBMIT_BODY, headers=headers)
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

    async def lifecycle(self, client: httpx.AsyncClient, number: int) -> None:
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
        self, client: httpx.AsyncClient, status_url: str, request_id: str
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
        self, client: httpx.AsyncClient, status_url: str, request_id: str
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
        self, client: httpx.AsyncClient, url: str, request_id: str
    ) -> AsyncIterator[dict[str, Any]]:
        """The stream's events in order (checked never to go backwards), until it closes."""
        started, last = time.perf_counter(), -1
        async with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as answer:
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

    async def worker(self, client: httpx.AsyncClient, numbers: list[int]) -> None:
        while numbers:
            number = numbers.pop()
            try:
                await asyncio.wait_for(self.lifecycle(client, number), self.plan.lifecycle_timeout)
            except LifecycleError as error:
                self.report.fail(error.category, str(error))
            except TimeoutError:
                limit = self.plan.lifecycle_timeout
                self.report.fail("incomplete", f"lifecycle {number}: not done in {limit:g} s")
            except httpx.HTTPError as error:
                self.report.fail("incomplete", f"lifecycle {number}: {error!r}")
            except Exception as error:  # an answer not shaped as fal's: reported, never a crash
                self.report.fail("wrong answer", f"lifecycle {number}: {error!r}")
            else:
                self.report.lifecycles_done += 1

    # -- held streams -----------------------------------------------------------------------

    async def held(self, client: httpx.AsyncClient, opened: asyncio.Queue[str | None]) -> None:
        """Submit, open the stream, hold it until the cancel, then see it end COMPLETED."""
        request_id: str | None = None
        announced = False
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

    def held_completed(self, request_id: str, event: dict[str, Any]) -> None:
        if not self.cancelling.is_set() or event.get("error_type") != "request_cancelled":
            raise LifecycleError("held stream", f"{request_id} completed on its own: {event}")
        self.report.completed[request_id] = time.perf_counter()
        self.report.held_completed += 1

    async def cancel_held(self, client: httpx.AsyncClient) -> None:
        """Cancel every held request, from the back of the queue: a cancel then moves no other
        held request's queue position, so the streams see one event each, their last (from the
        front, each cancel would move all those behind: 125,000 events for 500 streams)."""
        self.cancelling.set()
        slots = asyncio.Semaphore(CANCEL_CONCURRENCY)

        async def cancel(request_id: str) -> None:
            url = f"{self.base_url}{QUEUE_PATH}/requests/{request_id}/cancel"
            async with slots:
                try:
                    response = await self.call("cancel", client.put(url), request_id)
                except LifecycleError as error:
                    self.report.fail(error.category, str(error))
                    return
                except httpx.HTTPError as error:
                    self.report.fail("held stream", f"cancel {request_id}: {error!r}")
                    return
            if response.status_code != 202:
                self.report.fail("held stream", f"cancel {request_id}: {response.status_code}")

        held = [rid for rid, kind in self.report.submitted.items() if kind == "held"]
        held.sort(key=lambda rid: self.report.queue_positions.get(rid, 0), reverse=True)
        await asyncio.gather(*(cancel(request_id) for request_id in held))


def _json(response: httpx.Response) -> dict[str, Any]:
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
    timeout = httpx.Timeout(30.0, read=60.0)  # held streams are quiet: keep-alives every 15 s
    lifecycle_limits = httpx.Limits(max_connections=plan.clients + 8)
    held_limits = httpx.Limits(max_connections=plan.held_streams + 8)
    async with (
        httpx.AsyncClient(headers=AUTH, timeout=timeout, limits=lifecycle_limits) as client,
        httpx.AsyncClient(headers=AUTH, timeout=timeout, limits=held_limits) as held_client,
    ):
        opened: asyncio.Queue[str | None] = asyncio.Queue()
        held = [
            asyncio.create_task(state.held(held_client, opened)) for _ in range(plan.held_streams)
        ]
        try:
            await _wait_opened(opened, plan, report)
            on_phase("lifecycles")
            numbers = list(range(plan.lifecycles))[::-1]  # popped from the end: 0 first
            started, answers = time.perf_counter(), report.answers()
            await asyncio.gather(*(state.worker(client, numbers) for _ in range(plan.clients)))
            report.seconds = time.perf_counter() - started
            report.requests_in_lifecycles = report.answers() - answers
            on_phase("cancelling")
            await state.cancel_held(client)
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
