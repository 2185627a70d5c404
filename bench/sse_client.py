"""Many SSE streams on raw sockets, each event timed on arrival (``sse_bench``'s client).

One ``asyncio.Protocol`` per stream parses the answer head, a chunked (or plain) body and the
``data:`` lines of each event, and notes ``time.perf_counter()`` when the bytes came in, before
any parsing. A thousand httpx streams would spend more of the client's core than the events
themselves, and delay the arrival times measured.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Arrival", "StreamSet"]


@dataclass(frozen=True, slots=True)
class Arrival:
    at: float
    status: str


@dataclass(slots=True)
class _Stream:
    arrivals: list[Arrival] = field(default_factory=list)
    closed: bool = False
    error: str | None = None


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: StreamSet, stream: _Stream, request: bytes) -> None:
        self.owner, self.stream, self.request = owner, stream, request
        self.raw = b""  # undecoded bytes (head, chunk framing)
        self.text = b""  # event stream text not yet split into events
        self.head_done = False
        self.chunked = False
        self.ended = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.raw += data
        if not self.head_done and not self._read_head():
            return
        self._decode_body()
        self._split_events(now)
        if self.ended:
            self.transport.close()

    def _read_head(self) -> bool:
        end = self.raw.find(b"\r\n\r\n")
        if end < 0:
            return False
        head, self.raw = self.raw[:end].lower(), self.raw[end + 4 :]
        self.head_done = True
        if not head.startswith(b"http/1.1 200") or b"content-type: text/event-stream" not in head:
            self.stream.error = head.split(b"\r\n", 1)[0].decode(errors="replace")
            self.ended = True
        self.chunked = b"transfer-encoding: chunked" in head
        return True

    def _decode_body(self) -> None:
        if not self.chunked:
            self.text, self.raw = self.text + self.raw, b""
            return
        while True:
            line_end = self.raw.find(b"\r\n")
            if line_end < 0:
                return
            size = int(self.raw[:line_end].split(b";")[0], 16)
            if size == 0:
                self.ended = True  # the last chunk: the server closed the stream
                return
            if len(self.raw) < line_end + 2 + size + 2:
                return
            start = line_end + 2
            self.text += self.raw[start : start + size]
            self.raw = self.raw[start + size + 2 :]

    def _split_events(self, now: float) -> None:
        text = self.text.replace(b"\r\n", b"\n")
        *events, self.text = text.split(b"\n\n")
        for event in events:
            data = [line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")]
            if data:  # comments (keep-alives) carry no data
                status = json.loads(b"\n".join(data)).get("status", "?")
                self.stream.arrivals.append(Arrival(now, status))
                self.owner.arrived(self.stream)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and self.stream.error is None:
            self.stream.error = repr(exc)
        self.stream.closed = True
        self.owner.arrived(self.stream, closing=True)


class StreamSet:
    """``await streams.open(paths)``, then ``await streams.wait_for(events=k, limit_s=s)``."""

    def __init__(self, port: int, headers: tuple[tuple[str, str], ...]) -> None:
        self.port, self.headers = port, headers
        self.streams: list[_Stream] = []
        self._protocols: list[_Protocol] = []
        self._target = 0
        self._done = 0  # streams with ``_target`` events, or closed: kept as events come
        self._all_done: asyncio.Future[None] | None = None

    def arrived(self, stream: _Stream, closing: bool = False) -> None:
        count = len(stream.arrivals)
        # Counted once per stream: when it reaches the target, or closes short of it.
        if (not closing and count == self._target) or (closing and count < self._target):
            self._done += 1
            if self._done >= len(self.streams) and self._all_done and not self._all_done.done():
                self._all_done.set_result(None)

    def _request(self, path: str) -> bytes:
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        lines += ["Accept: text/event-stream", *(f"{k}: {v}" for k, v in self.headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def open(self, paths: list[str], batch: int = 100) -> None:
        """Connect in batches: a thousand SYNs at once could overflow the listen backlog."""
        loop = asyncio.get_running_loop()
        for first in range(0, len(paths), batch):
            connecting = []
            for path in paths[first : first + batch]:
                protocol = _Protocol(self, _Stream(), self._request(path))
                self.streams.append(protocol.stream)
                self._protocols.append(protocol)
                connect = loop.create_connection(_returning(protocol), "127.0.0.1", self.port)
                connecting.append(connect)
            await asyncio.gather(*connecting)

    async def wait_for(self, events: int, limit_s: float) -> bool:
        """True once every stream has ``events`` events (or closed before), False on timeout."""
        self._target = events
        self._done = sum(len(s.arrivals) >= events or s.closed for s in self.streams)
        if self._done >= len(self.streams):
            return True
        self._all_done = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(self._all_done, limit_s)
        except TimeoutError:
            return False
        return True

    def arrivals(self, index: int) -> list[Arrival]:
        """Each stream's ``index``-th event (0: the one sent on opening), where it came."""
        return [s.arrivals[index] for s in self.streams if len(s.arrivals) > index]

    def errors(self) -> list[str]:
        return [s.error for s in self.streams if s.error]

    def close(self) -> None:
        for protocol in self._protocols:
            if not protocol.stream.closed:
                protocol.transport.close()


def _returning(protocol: _Protocol) -> Callable[[], _Protocol]:
    return lambda: protocol
