"""A transcript written by hand, exchange by exchange, for the checks' tests."""

from __future__ import annotations

import json
from typing import Any

from contracts.transcript import Exchange, StatusPoint, Transcript

RID = "11111111-2222-3333-4444-555555555555"
BASE = f"/fal-ai/lipsync/requests/{RID}"
INPUT = {"video_url": "https://example.com/v.mp4", "audio_url": "https://example.com/a.wav"}
AUTH = {"authorization": "<redacted>"}
URLS = {
    "request_id": RID,
    "response_url": f"https://queue.fal.run{BASE}",
    "status_url": f"https://queue.fal.run{BASE}/status",
    "cancel_url": f"https://queue.fal.run{BASE}/cancel",
}


class Script:
    """Builds a transcript one exchange at a time."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self.histories: dict[str, tuple[StatusPoint, ...]] = {}

    def add(
        self,
        method: str,
        path: str,
        status_code: int = 200,
        response: Any = None,
        *,
        host: str = "queue",
        query: str = "",
        body: Any = None,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
        wall_time: float | None = None,
        request_id: str | None = RID,
        raw_response: str | None = None,
        clock_time: float | None = None,
    ) -> Exchange:
        request_headers = dict(AUTH if headers is None else headers)
        if body is not None and "content-type" not in request_headers:
            request_headers["content-type"] = "application/json"
        exchange = Exchange(
            seq=len(self.exchanges) + 1,
            wall_time=wall_time,
            host=host,
            method=method,
            path=path,
            query=query,
            request_headers=request_headers,
            request_body=body if isinstance(body, str) or body is None else json.dumps(body),
            status_code=status_code,
            response_headers={
                "content-type": "application/json",
                **({"x-fal-request-id": request_id} if request_id else {}),
                **(response_headers or {}),
            },
            response_body=raw_response if response is None else json.dumps(response),
            request_id=request_id,
            clock_time=clock_time,
        )
        self.exchanges.append(exchange)
        return exchange

    def submit(self, position: int = 0, **kwargs: Any) -> Exchange:
        body = {**URLS, "status": "IN_QUEUE", "queue_position": position, "gateway_request_id": RID}
        return self.add("POST", "/fal-ai/lipsync", 200, body, body=INPUT, **kwargs)

    def status(
        self, status: str, *, position: int = 0, logs: Any = None, **kwargs: Any
    ) -> Exchange:
        body: dict[str, Any] = {**URLS, "status": status}
        if status == "IN_QUEUE":
            body["queue_position"] = position
        else:
            body["logs"] = logs
        code = 200 if status == "COMPLETED" else 202
        query = "logs=1" if logs is not None else "logs=0"
        return self.add("GET", f"{BASE}/status", code, body, query=query, **kwargs)

    def stream(self, *events: dict[str, Any]) -> Exchange:
        text = "".join(
            f"data: {json.dumps({**URLS, **e})}\r\n\r\n: keepalive\r\n\r\n" for e in events
        )
        return self.add(
            "GET",
            f"{BASE}/status/stream",
            200,
            raw_response=text,
            query="logs=1",
            response_headers={"content-type": "text/event-stream; charset=utf-8"},
        )

    def result(self, code: int = 200) -> Exchange:
        body = {"video": {"url": "https://v3.fal.media/files/x/out.mp4"}}
        return self.add("GET", BASE, code, body if code == 200 else {"detail": "still running"})

    def transcript(self) -> Transcript:
        return Transcript(tuple(self.exchanges), dict(self.histories))


def log(n: int) -> dict[str, str]:
    return {"message": f"line {n}", "level": "INFO", "source": "USER", "timestamp": f"t{n}"}


def a_correct_session() -> Script:
    script = Script()
    script.submit(position=2, wall_time=0.0)
    script.status("IN_QUEUE", position=1, wall_time=0.2)
    script.status("IN_PROGRESS", logs=[log(1)], wall_time=0.4)
    script.status("IN_PROGRESS", logs=[log(1), log(2)], wall_time=0.6)
    script.status("COMPLETED", logs=[log(1), log(2), log(3)], wall_time=0.8)
    script.status("COMPLETED", wall_time=0.81)  # fal-client polls once more before fetching
    script.result()
    script.histories[RID] = (
        StatusPoint("IN_QUEUE", 2, 0.0),
        StatusPoint("IN_QUEUE", 1, 1.0),
        StatusPoint("IN_PROGRESS", None, 2.0),
        StatusPoint("COMPLETED", None, 3.0),
    )
    return script


def vars_of(exchange: Exchange) -> dict[str, Any]:
    return {name: getattr(exchange, name) for name in Exchange.__slots__}
