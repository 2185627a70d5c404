"""In-process benchmark: a full request lifecycle through httpx into the app, no socket.

``python -m bench.inproc_bench [--quick] [--json OUT] [--repeat N] [--lifecycles N]``

One lifecycle is what a client test does against ``fal-ai/lipsync``: submit, poll the status
until COMPLETED, fetch the result. Under ``polls:1`` each poll moves the job one state on, so
the polls see IN_QUEUE, IN_PROGRESS and COMPLETED: five calls, addressed with fal's own host
names (``https://queue.fal.run/...``; the app dispatches on the Host header). Two ways in:

- ``ASGITransport``: ``httpx.AsyncClient(transport=httpx.ASGITransport(app))``;
- ``respx``: a plain ``httpx.AsyncClient()`` whose requests to fal's hosts respx routes into the
  same kind of app (``respx.ASGIHandler``), as the planned pytest plugin's ``fal_mock`` will;
- ``respx_canned``: the same route answering canned bytes, so what respx itself costs shows.

Baseline, same run: the same five calls, made by the same client code, through a bare
``httpx.MockTransport`` whose handler returns the bytes the mock answered, canned. The ratio is
what the app (routing, engine, models) adds over httpx's own cost per call.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import httpx
import respx

from bench.common import SUBMIT_BODY, meta, ratio, write_json
from contracts.operations import HOST_TO_LOGICAL
from mock_server.app import create_app
from mock_server.settings import MockSettings

__all__ = ["FULL", "QUICK", "Config", "figure_keys", "main", "run"]

SUBMIT_URL: Final = "https://queue.fal.run/fal-ai/lipsync"
HEADERS: Final = {"Authorization": "Key bench", "Content-Type": "application/json"}
STATES: Final = ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
CALLS: Final = 2 + len(STATES)
WAYS: Final = ("asgi", "respx", "respx_canned", "baseline")


@dataclass(frozen=True, slots=True)
class Config:
    name: str
    lifecycles: int
    """Lifecycles per timed pass (each way in has an app of its own, so its store grows by
    ``lifecycles * repeats``, below the default finished_limit)."""
    repeats: int


FULL: Final = Config("full", 500, 5)
QUICK: Final = Config("quick", 30, 1)

Lifecycle = Callable[[httpx.AsyncClient], Awaitable[None]]


def figure_keys(config: Config) -> list[str]:
    keys = [f"{way}.us_per_lifecycle" for way in WAYS]
    keys += [f"{way}.us_per_call" for way in WAYS]
    keys += [f"ratio.{way}" for way in WAYS[:-1]]
    return keys


async def lifecycle(client: httpx.AsyncClient) -> None:
    """The client side of one job; every answer is checked, so a broken way in cannot look
    fast (and the baseline pays for the same checks)."""
    submitted = await client.post(SUBMIT_URL, content=SUBMIT_BODY, headers=HEADERS)
    if submitted.status_code != 200:
        raise RuntimeError(f"submit answered {submitted.status_code}: {submitted.text}")
    urls = submitted.json()
    for state in STATES:
        polled = await client.get(urls["status_url"], headers=HEADERS)
        if polled.json()["status"] != state:
            raise RuntimeError(f"expected {state}, got {polled.status_code}: {polled.text}")
    result = await client.get(urls["response_url"], headers=HEADERS)
    if result.status_code != 200 or "video" not in result.json():
        raise RuntimeError(f"result answered {result.status_code}: {result.text}")


def _app() -> Any:
    return create_app(MockSettings(policy="polls:1", seed=0))


class _Recorder(httpx.AsyncBaseTransport):
    """Passes requests to the app and keeps each answer's status, headers and bytes."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.answers: list[tuple[int, list[tuple[bytes, bytes]], bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.answers.append((response.status_code, response.headers.raw, body))
        return httpx.Response(response.status_code, headers=response.headers.raw, content=body)


async def _canned() -> list[tuple[int, list[tuple[bytes, bytes]], bytes]]:
    recorder = _Recorder(httpx.ASGITransport(app=_app()))
    async with httpx.AsyncClient(transport=recorder) as client:
        await lifecycle(client)
    return recorder.answers


def _canned_handler(
    answers: list[tuple[int, list[tuple[bytes, bytes]], bytes]],
) -> Callable[[httpx.Request], httpx.Response]:
    """Canned answers in lifecycle order: the least a mock can do per call."""
    order = itertools.cycle(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        status, headers, body = next(order)
        return httpx.Response(status, headers=headers, content=body)

    return handler


async def _timed_pass(client: httpx.AsyncClient, lifecycles: int) -> float:
    started = time.perf_counter()
    for _ in range(lifecycles):
        await lifecycle(client)
    return time.perf_counter() - started


async def _run(config: Config) -> dict[str, Any]:
    answers = await _canned()
    asgi = httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()))
    baseline = httpx.AsyncClient(transport=httpx.MockTransport(_canned_handler(answers)))
    # One respx route for fal's hosts, answering from the app, or canned bytes (what respx
    # itself costs) for the "respx_canned" passes.
    to_app, canned, mode = respx.ASGIHandler(_app()), _canned_handler(answers), {"canned": False}

    def route(request: httpx.Request) -> Any:  # a coroutine for the app: respx awaits it
        return canned(request) if mode["canned"] else to_app(request)

    # assert_all_mocked: a request that escaped the routes would go to the network; refuse it.
    router = respx.MockRouter(assert_all_called=False, assert_all_mocked=True)
    router.route(host__in=sorted(HOST_TO_LOGICAL)).mock(side_effect=route)
    plain = httpx.AsyncClient()
    clients = {"asgi": asgi, "respx": plain, "respx_canned": plain, "baseline": baseline}
    seconds: dict[str, list[float]] = {way: [] for way in WAYS}
    async with asgi, baseline, plain:
        with router:
            for passes in (1, *[config.lifecycles] * config.repeats):  # first: warm
                for way, client in clients.items():  # interleaved: slow spells hit all alike
                    mode["canned"] = way == "respx_canned"
                    elapsed = await _timed_pass(client, 3 if passes == 1 else passes)
                    if passes > 1:
                        seconds[way].append(elapsed)
    results: dict[str, Any] = {}
    for way in WAYS:
        per_lifecycle = min(seconds[way]) / config.lifecycles * 1e6  # best of N
        results[way] = {"us_per_lifecycle": per_lifecycle, "us_per_call": per_lifecycle / CALLS}
    base = results["baseline"]["us_per_lifecycle"]
    results["ratio"] = {way: ratio(results[way]["us_per_lifecycle"], base) for way in WAYS[:-1]}
    return results


def run(config: Config) -> dict[str, Any]:
    """Every figure, as nested dicts (see :func:`figure_keys`)."""
    results = {"meta": meta(config.name, lifecycles=config.lifecycles, repeats=config.repeats)}
    results["meta"]["calls_per_lifecycle"] = CALLS
    results["meta"]["respx"] = respx.__version__
    results.update(asyncio.run(_run(config)))
    return results


def _rows(results: dict[str, Any]) -> Iterator[str]:
    meta_ = results["meta"]
    yield (
        f"in-process lifecycle: {meta_['lifecycles']} lifecycles per pass, best of "
        f"{meta_['repeats']}; {meta_['calls_per_lifecycle']} calls each (submit, polls "
        f"{' -> '.join(STATES)}, result); httpx {meta_['versions']['httpx']}, "
        f"respx {meta_['respx']}, Python {meta_['python']}"
    )
    yield f"\n  {'':<52}{'us/lifecycle':>13}{'us/call':>10}{'x baseline':>12}"
    labels = {
        "asgi": "mock via httpx.ASGITransport (fal host names)",
        "respx": "mock via respx -> ASGIHandler (plain AsyncClient)",
        "respx_canned": "respx alone: same route, canned bytes",
        "baseline": "baseline: httpx.MockTransport, canned bytes",
    }
    for way in WAYS:
        figures = results[way]
        times = results["ratio"].get(way, 1.0)
        yield (
            f"  {labels[way]:<52}{figures['us_per_lifecycle']:13.0f}"
            f"{figures['us_per_call']:10.0f}{times:12.2f}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inproc_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few lifecycles: a smoke run")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures here")
    parser.add_argument("--repeat", type=int, metavar="N", help="best of N (default 5; quick 1)")
    parser.add_argument("--lifecycles", type=int, metavar="N", help="lifecycles per pass")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    if args.repeat is not None:
        config = replace(config, repeats=max(args.repeat, 1))
    if args.lifecycles is not None:
        config = replace(config, lifecycles=max(args.lifecycles, 1))
    results = run(config)
    print("\n".join(_rows(results)), flush=True)
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
