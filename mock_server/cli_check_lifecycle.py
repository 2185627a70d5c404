"""The lifecycle half of ``fal-mock check``: requests driven over HTTP against any target that
serves fal's queue in the mock's single-origin form, recorded, then judged offline.

Three requests, each with the documented example input: ``A`` is polled (with logs) until
COMPLETED after an early result fetch, then its result and output files are fetched and it is
cancelled; ``B`` is followed through the status stream; ``C`` is cancelled at once and polled to
its end. An unknown id is cancelled too. Every exchange is recorded (:class:`Exchange`); when
the target is a fal-mock, each request's status history is read from its control plane.
:func:`to_transcript` turns the record into the ``contracts.transcript`` form the contract
checks read.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from contracts import operations as ops
from contracts.schemas import EXAMPLE_AUDIO_URL, EXAMPLE_VIDEO_URL
from contracts.transcript import Exchange as WireExchange
from contracts.transcript import StatusPoint, Transcript
from mock_server.http.control_guard import control_token_headers

EXAMPLE_INPUT = {"video_url": EXAMPLE_VIDEO_URL, "audio_url": EXAMPLE_AUDIO_URL}
POLLED, STREAMED, CANCELLED, UNKNOWN = "A (polled)", "B (streamed)", "C (cancelled)", "unknown id"
BODY_LIMIT = 64 * 1024
"""Characters of a body kept in the record (a download's bytes are kept whole, apart)."""
_REQUEST_ID = re.compile(r"/requests/([^/?]+)")
_LOGICAL_HOSTS = {host.value for host in ops.LogicalHost}


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and what came back. ``status_code`` is None when nothing did."""

    subject: str
    """Which of the run's requests it concerns (``POLLED``, ``STREAMED``, ...)."""
    role: str
    """``submit``, ``status``, ``stream``, ``result``, ``cancel`` or ``download``."""
    method: str
    url: str
    status_code: int | None
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""
    """The response body as text (a stream's whole event stream), up to ``BODY_LIMIT``."""
    body: Any = None
    """Parsed JSON; a stream's list of event payloads; else None."""
    request_body: str | None = None
    closed: bool = True
    """A stream: whether the server closed it (rather than the run's deadline)."""
    error: str = ""
    at: float = 0.0
    """Seconds since the run started, when the answer was complete."""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def describe(self) -> str:
        answer = "no response" if self.status_code is None else f"{self.status_code}"
        shown = self.text if self.role != "stream" else f"{len(self.body or [])} event(s)"
        shown = shown if len(shown) <= 300 else shown[:300] + "..."
        extra = f" ({self.error})" if self.error else ""
        return f"{self.method} {self.url} -> {answer}{extra}: {shown}"


@dataclass(slots=True)
class Record:
    """What a lifecycle run saw."""

    exchanges: list[Exchange] = field(default_factory=list)
    downloads: dict[str, bytes] = field(default_factory=dict)
    """Each output file's bytes, by URL, when its download answered 200."""
    histories: dict[str, list[StatusPoint]] = field(default_factory=dict)
    """Each request's status history from a fal-mock's control plane (else empty)."""


class Recorder:
    """Drives the requests and records every exchange, within one deadline for the whole run."""

    def __init__(
        self, client: httpx.Client, base_url: str, *, timeout: float, poll_interval: float
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.record = Record()
        self._start = time.monotonic()

    def _add(self, subject: str, role: str, method: str, url: str, **kw: Any) -> Exchange:
        exchange = Exchange(subject, role, method, url, at=time.monotonic() - self._start, **kw)
        self.record.exchanges.append(exchange)
        return exchange

    def call(
        self, subject: str, role: str, method: str, url: str, *, auth: bool = True, **kw: Any
    ) -> Exchange:
        request = self.client.build_request(method, url, **kw)
        if not auth:  # a file URL is public: fal's CDN needs no key
            request.headers.pop("Authorization", None)
        sent = request.content.decode("utf-8", "replace") if request.content else None
        try:
            response = self.client.send(request)
        except httpx.HTTPError as exc:
            return self._add(subject, role, method, str(request.url), status_code=None,
                             request_body=sent, error=repr(exc))  # fmt: skip
        if role == "download" and response.status_code == 200:
            self.record.downloads[url] = response.content
        text = response.text[:BODY_LIMIT] if role != "download" else ""
        return self._add(
            subject,
            role,
            method,
            str(request.url),
            status_code=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            text=text,
            body=_json_or_none(text),
            request_body=sent,
        )

    def submit(self, subject: str) -> dict[str, Any] | None:
        url = self.base_url + ops.SUBMIT.prefixed_path
        exchange = self.call(subject, "submit", "POST", url, json=EXAMPLE_INPUT)
        body = exchange.body
        wanted = ("request_id", "status_url", "response_url", "cancel_url")
        ok = exchange.status_code is not None and 200 <= exchange.status_code < 300
        if ok and isinstance(body, dict) and all(isinstance(body.get(k), str) for k in wanted):
            return body
        return None

    def poll(self, subject: str, status_url: str) -> None:
        """Poll with logs until COMPLETED, an answer that is not a status, or the deadline."""
        while True:
            exchange = self.call(subject, "status", "GET", status_url, params={"logs": "1"})
            body = exchange.body
            if not isinstance(body, dict) or body.get("status") not in ops.QUEUE_STATUS_ORDER:
                return
            if body["status"] == "COMPLETED" or time.monotonic() > self.deadline:
                return
            time.sleep(self.poll_interval)

    def stream(self, subject: str, status_url: str) -> None:
        """Follow the status stream until the server closes it, or the deadline."""
        url = httpx.URL(status_url + "/stream", params={"logs": "1"})
        lines: list[str] = []
        status: int | None = None
        headers: dict[str, str] = {}
        closed, error = False, ""
        limits = httpx.Timeout(30.0, read=min(30.0, max(1.0, self.timeout)))
        try:
            with self.client.stream("GET", url, timeout=limits) as response:
                status = response.status_code
                headers = {k.lower(): v for k, v in response.headers.items()}
                for line in response.iter_lines():
                    lines.append(line)
                    if time.monotonic() > self.deadline:
                        break
                else:
                    closed = True
        except httpx.HTTPError as exc:
            error = repr(exc)
        events = [_json_or_text(x[len("data:") :].strip()) for x in lines if x.startswith("data:")]
        text = "\n".join(lines)[:BODY_LIMIT]
        self._add(subject, "stream", "GET", str(url), status_code=status, headers=headers,
                  text=text, body=events, closed=closed, error=error)  # fmt: skip

    def files(self, subject: str, output: Any) -> None:
        for file in files_in(output):
            self.call(subject, "download", "GET", file["url"], auth=False)

    def histories(self, request_ids: Mapping[str, str]) -> None:
        """Each request's status history from a fal-mock's ``/_mock/requests/{id}``."""
        for request_id in request_ids.values():
            try:
                answer = self.client.get(
                    f"{self.base_url}/_mock/requests/{request_id}", headers=control_token_headers()
                )
                points = answer.json()["history"] if answer.status_code == 200 else []
                self.record.histories[request_id] = [
                    StatusPoint(p["status"], p.get("queue_position"), float(p["time"]))
                    for p in points
                ]
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                continue  # no history: the checks that need one find nothing to check


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def files_in(value: Any) -> list[dict[str, Any]]:
    """Every File object (a dict with a string ``url``) anywhere in an output."""
    if isinstance(value, dict):
        if isinstance(value.get("url"), str):
            return [value]
        return [f for child in value.values() for f in files_in(child)]
    if isinstance(value, list):
        return [f for child in value for f in files_in(child)]
    return []


def drive(
    client: httpx.Client,
    base_url: str,
    *,
    timeout: float = 120.0,
    poll_interval: float = 0.1,
    control_plane: bool = False,
) -> Record:
    """Run the lifecycle scenario against ``base_url``: the record, however far it got.
    ``control_plane``: the target is a fal-mock, whose status histories are read too."""
    rec = Recorder(client, base_url, timeout=timeout, poll_interval=poll_interval)
    ids: dict[str, str] = {}
    polled = rec.submit(POLLED)
    if polled is not None:
        ids[POLLED] = polled["request_id"]
        rec.call(POLLED, "result", "GET", polled["response_url"])  # early: before COMPLETED
        rec.poll(POLLED, polled["status_url"])
        result = rec.call(POLLED, "result", "GET", polled["response_url"])
        if result.status_code == 200:
            rec.files(POLLED, result.body)
        rec.call(POLLED, "cancel", "PUT", polled["cancel_url"])
    streamed = rec.submit(STREAMED)
    if streamed is not None:
        ids[STREAMED] = streamed["request_id"]
        rec.stream(STREAMED, streamed["status_url"])
    cancelled = rec.submit(CANCELLED)
    if cancelled is not None:
        ids[CANCELLED] = cancelled["request_id"]
        rec.call(CANCELLED, "cancel", "PUT", cancelled["cancel_url"])
        rec.poll(CANCELLED, cancelled["status_url"])
        result = rec.call(CANCELLED, "result", "GET", cancelled["response_url"])
        if result.status_code == 200:  # it completed before the cancel (e.g. immediate policy)
            rec.files(CANCELLED, result.body)
    unknown = ops.CANCEL.prefixed_path.format(request_id=uuid.UUID(int=0))
    rec.call(UNKNOWN, "cancel", "PUT", rec.base_url + unknown)
    if control_plane:
        rec.histories(ids)
    return rec.record


def to_transcript(record: Record, base_url: str) -> Transcript:
    """The record as the contract checks read it: host-relative paths beside their logical host
    (``/queue/fal-ai/...`` on the target is host ``queue``, path ``/fal-ai/...``)."""
    base_path = urlsplit(base_url).path.rstrip("/")
    wire = []
    for seq, e in enumerate(record.exchanges):
        parts = urlsplit(e.url)
        path = parts.path[len(base_path) :] if parts.path.startswith(base_path) else parts.path
        host, _, rest = path.lstrip("/").partition("/")
        if host not in _LOGICAL_HOSTS:
            host, rest = "", path.lstrip("/")
        found = _REQUEST_ID.search(path)
        request_id = found.group(1) if found else None
        if e.role == "submit" and isinstance(e.body, dict):
            request_id = e.body.get("request_id")
        wire.append(
            WireExchange(
                seq=seq,
                wall_time=e.at,
                host=host,
                method=e.method,
                path="/" + rest,
                query=parts.query,
                request_headers={},
                request_body=e.request_body,
                status_code=e.status_code if e.status_code is not None else 0,
                response_headers=dict(e.headers),
                response_body=e.text,
                request_id=request_id if isinstance(request_id, str) else None,
            )
        )
    histories = {rid: tuple(points) for rid, points in record.histories.items()}
    return Transcript(tuple(wire), histories)
