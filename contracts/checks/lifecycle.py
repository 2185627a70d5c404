"""Properties of each request's lifecycle, on the wire and in the server's own history.

fal's statuses only move forward (IN_QUEUE -> IN_PROGRESS -> COMPLETED, PROTOCOL.md §4), a
queued request only moves up the queue, and a running request's logs only grow. Clients lean
on all three: JS stops at the first COMPLETED, progress bars assume positions fall, and log
viewers append.

Order on the wire is transcript order. Two answers about one request that were in flight at
the same time can be recorded in either order, so a client polling one request from several
tasks at once may see a false report; sequential polling (what both official clients do)
cannot.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

from contracts.checks.observations import (
    STATUS_RANK,
    StatusSeen,
    describe_seen,
    statuses_seen,
    submitted_with,
)
from contracts.checks.violations import (
    ContractViolation,
    LogsShrank,
    QueuePositionIncreased,
    StatusWentBackwards,
    describe_point,
)
from contracts.transcript import Exchange, StatusPoint, Transcript


def status_never_goes_backwards(transcript: Transcript) -> None:
    """Every status the client was sent, and every step of the server's history, is a known
    status at or after the one before it."""
    _raise_first(find_status_going_backwards(transcript))


def queue_position_never_increases(transcript: Transcript) -> None:
    """While a request is IN_QUEUE, each ``queue_position`` is at most the one before.

    Requests submitted with ``X-Fal-Queue-Priority: low`` are exempt: normal-priority requests
    that arrive later are served first, so a low one can legitimately be pushed back."""
    _raise_first(find_queue_position_increasing(transcript))


def logs_only_grow(transcript: Transcript) -> None:
    """Each status answer's logs (when present) start with all the lines of the previous one.

    A status stream sends only the new lines in each event; they are accumulated first."""
    _raise_first(find_logs_shrinking(transcript))


def find_status_going_backwards(transcript: Transcript) -> Iterator[ContractViolation]:
    for request_id, seen in statuses_seen(transcript).items():
        found = _wire_backwards(transcript, request_id, seen)
        if found is not None:
            yield found
    for request_id, history in transcript.histories.items():
        found = _history_backwards(transcript, request_id, history)
        if found is not None:
            yield found


def _wire_backwards(
    transcript: Transcript, request_id: str, seen: Sequence[StatusSeen]
) -> ContractViolation | None:
    furthest: StatusSeen | None = None
    for status in seen:
        rank = STATUS_RANK.get(status.status)
        if rank is None:
            return _report(
                StatusWentBackwards,
                f"The client was sent status {status.status!r}, which fal never sends: the only "
                f"statuses are {', '.join(STATUS_RANK)} (failures end COMPLETED with `error`).",
                transcript,
                request_id,
                seen,
                status,
            )
        if furthest is not None and rank < STATUS_RANK[furthest.status]:
            return _report(
                StatusWentBackwards,
                f"The client was sent {status.status} after it had been sent {furthest.status} "
                f"(exchange #{furthest.exchange.seq}).",
                transcript,
                request_id,
                seen,
                furthest,
                status,
            )
        if furthest is None or rank >= STATUS_RANK[furthest.status]:
            furthest = status
    return None


def _history_backwards(
    transcript: Transcript, request_id: str, history: Sequence[StatusPoint]
) -> ContractViolation | None:
    for before, after in itertools.pairwise(history):
        ranks = STATUS_RANK.get(before.status), STATUS_RANK.get(after.status)
        if ranks[0] is None or ranks[1] is None or ranks[1] < ranks[0]:
            return StatusWentBackwards(
                "The server's own history goes from "
                f"{describe_point(before)!r} to {describe_point(after)!r}.",
                request_id=request_id,
                history=history,
                exchanges=transcript.for_request(request_id)[:1],
            )
    return None


def find_queue_position_increasing(transcript: Transcript) -> Iterator[ContractViolation]:
    for request_id, seen in statuses_seen(transcript).items():
        if _low_priority(transcript, request_id):
            continue
        queued = [s for s in seen if s.status == "IN_QUEUE" and s.queue_position is not None]
        for before, after in itertools.pairwise(queued):
            if (after.queue_position or 0) > (before.queue_position or 0):
                yield _report(
                    QueuePositionIncreased,
                    f"queue_position went from {before.queue_position} "
                    f"(#{before.exchange.seq}) to {after.queue_position} (#{after.exchange.seq}).",
                    transcript,
                    request_id,
                    seen,
                    before,
                    after,
                )
                break
    for request_id, history in transcript.histories.items():
        if _low_priority(transcript, request_id):
            continue
        queued_points = [
            p for p in history if p.status == "IN_QUEUE" and p.queue_position is not None
        ]
        for earlier, later in itertools.pairwise(queued_points):
            if (later.queue_position or 0) > (earlier.queue_position or 0):
                yield QueuePositionIncreased(
                    "The server's own history has queue_position going from "
                    f"{earlier.queue_position} to {later.queue_position}.",
                    request_id=request_id,
                    history=history,
                    exchanges=transcript.for_request(request_id)[:1],
                )
                break


def _low_priority(transcript: Transcript, request_id: str) -> bool:
    submit = submitted_with(transcript, request_id)
    priority = submit.request_header("x-fal-queue-priority") if submit is not None else None
    return (priority or "").strip().lower() == "low"


def find_logs_shrinking(transcript: Transcript) -> Iterator[ContractViolation]:
    for request_id, seen in statuses_seen(transcript).items():
        previous: StatusSeen | None = None
        for status in seen:
            if status.logs is None:
                continue
            if previous is not None and previous.logs is not None:
                known = previous.logs
                if status.logs[: len(known)] != known:
                    yield _report(
                        LogsShrank,
                        f"#{status.exchange.seq} has {len(status.logs)} log line(s) that do not "
                        f"start with the {len(known)} line(s) of #{previous.exchange.seq}: "
                        f"{_first_difference(known, status.logs)}",
                        transcript,
                        request_id,
                        seen,
                        previous,
                        status,
                    )
                    break
            previous = status


def _first_difference(before: Sequence[object], after: Sequence[object]) -> str:
    for index, line in enumerate(before):
        if index >= len(after):
            return f"line {index} ({line!r}) is gone"
        if after[index] != line:
            return f"line {index} was {line!r}, is now {after[index]!r}"
    return "no difference"


def _report(
    kind: type[ContractViolation],
    detail: str,
    transcript: Transcript,
    request_id: str,
    seen: Sequence[StatusSeen],
    *culprits: StatusSeen,
) -> ContractViolation:
    exchanges: list[Exchange] = []
    for status in culprits:
        if status.exchange not in exchanges:
            exchanges.append(status.exchange)
    return kind(
        detail,
        request_id=request_id,
        history=transcript.history(request_id),
        exchanges=exchanges,
        seen=describe_seen(seen),
    )


def _raise_first(violations: Iterator[ContractViolation]) -> None:
    for violation in violations:
        raise violation
