"""The verdicts of ``fal-mock check``'s lifecycle run, one per property, each named for what it
asserts (PROTOCOL.md §3-7).

Two sources: the contract checks of ``contracts.checks`` over the run as a transcript (status
order and queue position on the wire and in a fal-mock's own history, logs, output files as
decoded H.264 + AAC mp4s), and the properties here of the server's answers to the run's own
deliberate moves (an early result fetch, a stream, cancels) that a client-side check cannot
judge. Each failure names the request and the offending exchange."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from contracts import checks
from contracts import operations as ops
from contracts.checks import CHECK_NAMES, CheckOptions, MediaFacts, OutputFileTools, find_violations
from contracts.schemas import CancelResponse, LipsyncOutput, QueueStatus, SubmitResponse
from mock_server.cli_check_lifecycle import (
    CANCELLED,
    POLLED,
    STREAMED,
    UNKNOWN,
    Exchange,
    Record,
    to_transcript,
)

_STATUS: TypeAdapter[Any] = TypeAdapter(QueueStatus)
_RANK = {name: rank for rank, name in enumerate(ops.QUEUE_STATUS_ORDER)}
_RELAYED_STATUSES = {code for code in ops.RESULT.responses if code >= 500}


@dataclass(slots=True)
class Verdict:
    name: str
    doc: str
    failures: list[str] = field(default_factory=list)
    skipped: str = ""
    seconds: float = 0.0
    """The share of the lifecycle run's time (the properties are judged together)."""

    @property
    def passed(self) -> bool:
        return not self.failures


Property = Callable[[Sequence[Exchange]], list[str]]


class NotApplicable(Exception):
    """The transcript holds nothing this property can judge (an earlier step failed)."""


def _of(exchanges: Sequence[Exchange], role: str, subject: str | None = None) -> list[Exchange]:
    return [e for e in exchanges if e.role == role and subject in (None, e.subject)]


def _invalid(model: type[BaseModel] | TypeAdapter[Any], body: Any) -> str:
    try:
        if isinstance(model, TypeAdapter):
            model.validate_python(body)
        else:
            model.model_validate(body)
    except ValidationError as exc:
        return "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()
        )
    return ""


def _history(exchanges: Sequence[Exchange], subject: str) -> str:
    seen = [str(body["status"]) for _, body in _statuses(exchanges, subject)]
    return " -> ".join(seen) or "(no status seen)"


def _statuses(exchanges: Sequence[Exchange], subject: str) -> Iterator[tuple[Exchange, Any]]:
    for e in _of(exchanges, "status", subject):
        if isinstance(e.body, dict) and e.body.get("status") in _RANK:
            yield e, e.body


def not_a_server_error(exchanges: Sequence[Exchange]) -> list[str]:
    """No 5xx and no dropped exchange, except a failed request's outcome relayed by the result
    fetch with its ``X-Fal-Error-Type``."""
    failures = []
    for e in exchanges:
        if e.status_code is None:
            failures.append(f"[{e.subject}] no response: {e.describe()}")
        elif e.status_code >= 500:
            relayed = e.role == "result" and e.status_code in _RELAYED_STATUSES
            if not (relayed and e.headers.get("x-fal-error-type")):
                failures.append(f"[{e.subject}] server error: {e.describe()}")
    return failures


def submit_answers_the_queued_request(exchanges: Sequence[Exchange]) -> list[str]:
    """Submit answers 200 with the queued request's id, URLs and ``x-fal-request-id``."""
    failures = []
    for e in _of(exchanges, "submit"):
        if e.status_code != 200:
            failures.append(f"[{e.subject}] submit not accepted: {e.describe()}")
        elif problem := _invalid(SubmitResponse, e.body):
            failures.append(f"[{e.subject}] submit body violates SubmitResponse ({problem})")
        elif e.headers.get("x-fal-request-id") != e.body["request_id"]:
            failures.append(f"[{e.subject}] x-fal-request-id header is not the request_id")
    return failures


def status_bodies_conform(exchanges: Sequence[Exchange]) -> list[str]:
    """Each status is a QueueStatus for the right request: 202 while IN_QUEUE or IN_PROGRESS,
    200 once COMPLETED (never FAILED or CANCELLED: clients would choke)."""
    failures = []
    submitted = {
        e.subject: e.body.get("request_id")
        for e in _of(exchanges, "submit")
        if isinstance(e.body, dict)
    }
    for e in _of(exchanges, "status"):
        if problem := _invalid(_STATUS, e.body):
            failures.append(
                f"[{e.subject}] status violates QueueStatus ({problem}): {e.describe()}"
            )
            continue
        if e.body["request_id"] != submitted.get(e.subject):
            failures.append(f"[{e.subject}] another request's status: {e.describe()}")
        expected = 200 if e.body["status"] == "COMPLETED" else 202
        if e.status_code != expected:
            failures.append(
                f"[{e.subject}] {e.body['status']} answered {e.status_code}, "
                f"expected {expected}: {e.describe()}"
            )
    return failures


def requests_complete(exchanges: Sequence[Exchange]) -> list[str]:
    """Every request reaches COMPLETED within the run's time bound, cancelled ones too."""
    failures = []
    for subject in (POLLED, CANCELLED):
        if not _of(exchanges, "submit", subject) or not _of(exchanges, "status", subject):
            continue
        last = _of(exchanges, "status", subject)[-1]
        if not (isinstance(last.body, dict) and last.body.get("status") == "COMPLETED"):
            failures.append(
                f"[{subject}] never COMPLETED: {_history(exchanges, subject)}; "
                f"last {last.describe()}"
            )
    return failures


def result_only_after_completed(exchanges: Sequence[Exchange]) -> list[str]:
    """The result answers 200 only once the request is COMPLETED, and does then."""
    results = _of(exchanges, "result", POLLED)
    if not results:
        raise NotApplicable("request A was never submitted")
    failures = []
    early, statuses = results[0], list(_statuses(exchanges, POLLED))
    after = [body["status"] for e, body in statuses if e.at > early.at]
    if early.status_code == 200 and after and after[0] != "COMPLETED":
        failures.append(f"[{POLLED}] result answered 200 while {after[0]}: {early.describe()}")
    last = statuses[-1][1] if statuses else {}
    completed = last.get("status") == "COMPLETED" and not last.get("error")
    if len(results) > 1 and completed and results[-1].status_code != 200:
        failures.append(f"[{POLLED}] COMPLETED without error, but {results[-1].describe()}")
    return failures


def result_is_the_output(exchanges: Sequence[Exchange]) -> list[str]:
    """A successful result is the model's output, unwrapped: a LipsyncOutput."""
    done = [e for e in _of(exchanges, "result") if e.status_code == 200]
    if not done:
        raise NotApplicable("no result answered 200")
    return [
        f"[{e.subject}] result violates LipsyncOutput ({problem}): {e.describe()}"
        for e in done
        if (problem := _invalid(LipsyncOutput, e.body))
    ]


def status_stream_conforms(exchanges: Sequence[Exchange]) -> list[str]:
    """The status stream is ``text/event-stream`` of QueueStatus events that ends with
    COMPLETED, and the server closes it then."""
    streams = _of(exchanges, "stream", STREAMED)
    if not streams:
        raise NotApplicable("request B was never submitted")
    e = streams[0]
    if e.status_code != 200 or e.content_type != "text/event-stream":
        return [
            f"[{STREAMED}] not an event stream ({e.content_type or 'no type'}): " + e.describe()
        ]
    failures = [
        f"[{STREAMED}] event {i} violates QueueStatus ({problem}): {event!r}"[:400]
        for i, event in enumerate(e.body)
        if (problem := _invalid(_STATUS, event))
    ]
    last = e.body[-1] if e.body else None
    if not (isinstance(last, dict) and last.get("status") == "COMPLETED"):
        failures.append(f"[{STREAMED}] the last event is not COMPLETED: {last!r}")
    if not e.closed:
        failures.append(f"[{STREAMED}] the stream stayed open ({e.error or 'deadline'})")
    return failures


def cancel_answers_by_state(exchanges: Sequence[Exchange]) -> list[str]:
    """Cancel: 400 ALREADY_COMPLETED once the request is seen COMPLETED, else 202 (or 400 if
    it finished meanwhile), 404 NOT_FOUND for an unknown id; always a CancelResponse body."""
    named = {400: "ALREADY_COMPLETED", 404: "NOT_FOUND"}
    failures = []
    for e in _of(exchanges, "cancel"):
        seen = [body["status"] for s, body in _statuses(exchanges, e.subject) if s.at < e.at]
        expected = {404} if e.subject == UNKNOWN else {202, 400}
        if seen and seen[-1] == "COMPLETED":
            expected = {400}
        if e.status_code not in expected:
            failures.append(
                f"[{e.subject}] expected {sorted(expected)} after {' -> '.join(seen) or 'submit'}"
                f": {e.describe()}"
            )
        elif problem := _invalid(CancelResponse, e.body):
            failures.append(f"[{e.subject}] cancel body violates CancelResponse ({problem})")
        elif e.status_code in named and e.body["status"] != named[e.status_code]:
            failures.append(
                f"[{e.subject}] {e.status_code} without {named[e.status_code]}: " + e.describe()
            )
    return failures


PROPERTIES: tuple[Property, ...] = (
    not_a_server_error,
    submit_answers_the_queued_request,
    status_bodies_conform,
    requests_complete,
    result_only_after_completed,
    result_is_the_output,
    status_stream_conforms,
    cancel_answers_by_state,
)

CLIENT_SIDE = frozenset(
    {
        "requests_conform_to_openapi",
        "result_fetched_only_after_completed",
        "polling_not_faster_than",
    }
)
"""Contract checks that judge the client: here the client is this run, and it fetches a result
early on purpose (``result_only_after_completed`` judges the server's answer instead)."""
CONTRACT_CHECKS = tuple(name for name in CHECK_NAMES if name not in CLIENT_SIDE)


def judge(
    record: Record,
    base_url: str,
    *,
    seconds: float = 0.0,
    probe: Callable[[bytes], MediaFacts] | None = None,
) -> list[Verdict]:
    """Every verdict on one run that took ``seconds``; ``probe`` decodes output files."""
    exchanges = record.exchanges
    verdicts = []
    for prop in PROPERTIES:
        verdict = Verdict(prop.__name__, " ".join((prop.__doc__ or "").split()))
        try:
            verdict.failures = prop(exchanges)
        except NotApplicable as reason:
            verdict.skipped = str(reason)
        verdicts.append(verdict)
    tools = OutputFileTools(fetch=lambda url: _downloaded(record, url), probe=probe)
    found = find_violations(
        to_transcript(record, base_url),
        CheckOptions(skip=CLIENT_SIDE & set(CHECK_NAMES)),
        files=tools,
    )
    for name in CONTRACT_CHECKS:
        doc = " ".join((getattr(getattr(checks, name, None), "__doc__", None) or name).split())
        verdict = Verdict(name, doc, [str(v) for v in found if v.check == name])
        if name == "output_files_are_valid" and not (verdict.failures or record.downloads):
            verdict.skipped = "no output file was fetched"
        verdicts.append(verdict)
    for verdict in verdicts:
        verdict.seconds = seconds / len(verdicts)
    return verdicts


def _downloaded(record: Record, url: str) -> bytes:
    if url in record.downloads:
        return record.downloads[url]
    answers = [e.describe() for e in record.exchanges if e.role == "download" and e.url == url]
    raise LookupError(answers[-1] if answers else "never downloaded")
