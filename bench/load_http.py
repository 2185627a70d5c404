"""A lean HTTP/1.1 client for the load test: one keep-alive connection per simulated client.

Why not httpx: at 200 concurrent lifecycles httpx's ``AsyncClient`` kept the client's core at
100 % while the server it loaded used 40 % of its own (first full run), so the latencies
measured were the client's queue, not the server's. This client is ``asyncio`` streams and
just enough HTTP/1.1 for the mock's answers: a request line and headers out, then the status
line, headers, and a ``Content-Length`` or chunked body in (server-sent events are read as the
chunks come). Loopback and plain HTTP only. The answers look like httpx's where the driver
reads them (``status_code``, ``content``, ``text``, ``json()``), and so do its streams
(``aread()``, ``aiter_lines()``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

__all__ = ["Answer", "Connection", "TransportError"]

READ_TIMEOUT: Final = 60.0
"""Longest wait for any bytes of an answer (a held stream gets a keep-alive every 15 s)."""
LIMIT: Final = 1 << 20
"""Longest header line or chunk-size line accepted."""


class TransportError(Exception):
    """The connection failed, closed mid-answer, or sent something that is not HTTP/1.1."""


_BROKEN: Final = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)
"""What reading a broken or non-HTTP answer raises (timeouts are OSError's TimeoutError)."""


@dataclass(slots=True)
class Answer:
    status_code: int
    headers: dict[str, str]
    """Lower-cased names."""
    content: bytes = b""

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class Stream(Answer):
    """An answer whose body is read as it comes (``aiter_lines``) or whole (``aread``)."""

    def __init__(self, answer: Answer, body: AsyncIterator[bytes]) -> None:
        super().__init__(answer.status_code, answer.headers)
        self._body = body

    async def aread(self) -> bytes:
        self.content = b"".join([chunk async for chunk in self._body])
        return self.content

    async def aiter_lines(self) -> AsyncIterator[str]:
        pending = b""
        async for chunk in self._body:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.rstrip(b"\r").decode()
        if pending:
            yield pending.rstrip(b"\r").decode()


class Connection:
    """One client's keep-alive connection to ``base_url``: requests go one after another, and
    a closed connection is opened again before the next one."""

    def __init__(self, base_url: str, headers: Mapping[str, str]) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"expected http://host:port, got {base_url!r}")
        self.host, self.port = parts.hostname, parts.port
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Answer:
        async with self._exchange(method, url, body, headers) as (answer, chunks):
            answer.content = b"".join([chunk async for chunk in chunks])
        return answer

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Awaitable[Answer]:
        return self.request("GET", url, headers=headers)

    def post_json(
        self, url: str, data: Any, headers: Mapping[str, str] | None = None
    ) -> Awaitable[Answer]:
        body = json.dumps(data).encode()
        return self.request(
            "POST", url, body, {"Content-Type": "application/json", **(headers or {})}
        )

    def put(self, url: str) -> Awaitable[Answer]:
        return self.request("PUT", url)

    @asynccontextmanager
    async def stream(
        self, url: str, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[Stream]:
        async with self._exchange("GET", url, b"", headers) as (answer, chunks):
            yield Stream(answer, chunks)

    @asynccontextmanager
    async def _exchange(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str] | None
    ) -> AsyncIterator[tuple[Answer, AsyncIterator[bytes]]]:
        parts = urlsplit(url)
        if parts.netloc and (parts.hostname, parts.port) != (self.host, self.port):
            # The mock's URLs point back the way the request came in: one origin.
            raise ValueError(f"{url} is not on {self.host}:{self.port}")
        reader, writer = await self._open()
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        length = f"Content-Length: {len(body)}\r\n" if body or method in ("POST", "PUT") else ""
        head = f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        writer.write(f"{head}{self.headers}{extra}{length}\r\n".encode() + body)
        try:
            answer = await self._read_head(reader)
        except _BROKEN as exc:
            await self.close()
            raise TransportError(f"{method} {target}: {exc!r}") from exc
        chunks = self._read_body(reader, answer, f"{method} {target}")
        complete = False
        try:
            yield answer, chunks
            async for _ in chunks:  # a stream left early: its rest read before the next request
                pass
            complete = answer.headers.get("connection", "").lower() != "close"
        finally:
            if not complete:  # mid-answer, or the server said close: never reused
                await self.close()

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is not None and self._writer is not None and not self._reader.at_eof():
            return self._reader, self._writer
        await self.close()
        try:
            connecting = asyncio.open_connection(self.host, self.port, limit=LIMIT)
            reader, writer = await asyncio.wait_for(connecting, READ_TIMEOUT)
        except OSError as exc:
            raise TransportError(f"connect to {self.host}:{self.port}: {exc!r}") from exc
        self._reader, self._writer = reader, writer
        return reader, writer

    async def _read_head(self, reader: asyncio.StreamReader) -> Answer:
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
        status_line, *lines = raw[:-4].decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1.1 answer: {status_line!r}")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return Answer(int(rest[:3]), headers)

    async def _read_body(
        self, reader: asyncio.StreamReader, answer: Answer, what: str
    ) -> AsyncIterator[bytes]:
        try:
            if "chunked" in answer.headers.get("transfer-encoding", "").lower():
                while True:
                    size_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), READ_TIMEOUT)
                    size = int(size_line.split(b";")[0], 16)
                    data = await asyncio.wait_for(reader.readexactly(size + 2), READ_TIMEOUT)
                    if size == 0:
                        return  # no trailers from this server: the empty line was read above
                    yield data[:-2]
            elif length := int(answer.headers.get("content-length", "0")):
                yield await asyncio.wait_for(reader.readexactly(length), READ_TIMEOUT)
        except _BROKEN as exc:
            raise TransportError(f"{what}: {exc!r}") from exc

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()
