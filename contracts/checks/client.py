"""Properties of the client's behaviour: it waits for COMPLETED before fetching a result, and
does not poll status faster than it should. These judge the code under test, not the server."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from contracts import operations as ops
from contracts.checks.observations import (
    describe_seen,
    operation_of,
    statuses_seen,
    submitted_with,
)
from contracts.checks.violations import ContractViolation, PolledTooFast, ResultFetchedEarly
from contracts.transcript import Exchange, Transcript

POLL_TOLERANCE_S = 0.005
"""Slack for the clocks that time the exchanges: a client that sleeps exactly the interval
between polls must pass."""


def result_fetched_only_after_completed(transcript: Transcript) -> None:
    """No result fetch (GET the response_url) before a status answer (a poll, or an event of a
    status stream) told the client the request was COMPLETED.

    A request submitted with ``fal_webhook`` is exempt once the server had completed it (the
    webhook is how the client learnt it), when the transcript has the server's clock. A sync
    run (``fal.run``) fetches nothing and is never concerned."""
    for violation in find_early_result_fetches(transcript):
        raise violation


def find_early_result_fetches(transcript: Transcript) -> Iterator[ContractViolation]:
    seen_by_request = statuses_seen(transcript)
    completed_at: dict[str, int] = {}
    for seen_id, seen in seen_by_request.items():
        done = [s.exchange.seq for s in seen if s.status == "COMPLETED"]
        if done:
            completed_at[seen_id] = min(done)
    reported: set[str] = set()
    for exchange in transcript.exchanges:
        request_id = exchange.request_id
        if request_id is None or request_id in reported:
            continue
        if operation_of(exchange) is not ops.RESULT:
            continue
        told = completed_at.get(request_id)
        if told is not None and told < exchange.seq:
            continue
        if _learnt_from_webhook(transcript, request_id, exchange):
            continue
        reported.add(request_id)
        statuses = seen_by_request.get(request_id, [])
        before = [s for s in statuses if s.exchange.seq < exchange.seq]
        last = f"the last status it was sent was {before[-1].status}" if before else ""
        detail = (
            f"The client fetched the result (#{exchange.seq}) before any status answer said "
            f"COMPLETED{'; ' + last if last else ': it had been sent no status at all'}. "
            "Poll the status_url (or stream it) until COMPLETED, then GET the response_url."
        )
        yield ResultFetchedEarly(
            detail,
            request_id=request_id,
            history=transcript.history(request_id),
            exchanges=[exchange],
            seen=describe_seen(statuses),
        )


def _learnt_from_webhook(transcript: Transcript, request_id: str, fetch: Exchange) -> bool:
    submit = submitted_with(transcript, request_id)
    if submit is None or ops.WEBHOOK_QUERY not in submit.query_params():
        return False
    completed = [p.time for p in transcript.history(request_id) if p.status == "COMPLETED"]
    return bool(completed) and fetch.clock_time is not None and fetch.clock_time >= completed[0]


def polling_not_faster_than(transcript: Transcript, interval_s: float) -> None:
    """Between a status answer that was not COMPLETED and the next status poll of the same
    request, at least ``interval_s`` seconds pass (by ``Exchange.wall_time``).

    Not counted: the poll after a COMPLETED answer (fal-client polls once more before it fetches
    the result), retries after a failed poll (their pace is the client's backoff), status
    streams, and pairs without wall times."""
    for violation in find_fast_polls(transcript, interval_s):
        raise violation


def find_fast_polls(transcript: Transcript, interval_s: float) -> Iterator[ContractViolation]:
    polls: dict[str, list[Exchange]] = {}
    for exchange in transcript.exchanges:
        if exchange.request_id is not None and operation_of(exchange) is ops.STATUS:
            polls.setdefault(exchange.request_id, []).append(exchange)
    seen = statuses_seen(transcript)
    for request_id, exchanges in polls.items():
        fast: list[tuple[float, Exchange, Exchange]] = []
        for before, after in itertools.pairwise(exchanges):
            if before.wall_time is None or after.wall_time is None or not _still_waiting(before):
                continue
            gap = after.wall_time - before.wall_time
            if gap < interval_s - POLL_TOLERANCE_S:
                fast.append((gap, before, after))
        if not fast:
            continue
        gap, before, after = fast[0]
        shortest = min(g for g, _, _ in fast)
        yield PolledTooFast(
            f"{len(fast)} of {len(exchanges) - 1} gaps between status polls were shorter than "
            f"{interval_s:g} s (shortest {shortest * 1000:.1f} ms); the first: #{before.seq} then "
            f"#{after.seq}, {gap * 1000:.1f} ms apart. "
            "Sleep between polls (fal-client: interval=, @fal-ai/client: pollInterval).",
            request_id=request_id,
            history=transcript.history(request_id),
            exchanges=[before, after],
            seen=describe_seen(seen.get(request_id, [])),
        )


def _still_waiting(exchange: Exchange) -> bool:
    if not 200 <= exchange.status_code < 300:
        return False
    body = exchange.response_json()
    return isinstance(body, dict) and body.get("status") in ("IN_QUEUE", "IN_PROGRESS")
