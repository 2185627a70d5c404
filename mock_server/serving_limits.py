"""Deadlines for slow and stalled clients, in uvicorn's HTTP/1.1 protocol (h11).

uvicorn times out only idle keep-alive connections. A client that opens a connection and sends
its request head a byte at a time (slowloris), trickles a body forever, or never reads what it
asked for would hold its connection, its task and (for a download) the whole response in memory
for as long as it likes. Nothing wedges (every connection is its own task), but nothing ends
either: a mock left running for days would collect them. :class:`GuardedH11Protocol` adds the
three missing deadlines, one per way a client can stall:

- ``head``: a new connection's request head, or the rest of a head once its first bytes came
  in on a kept-alive one, must arrive within this many seconds;
- ``body``: a request body must arrive whole within this many seconds of its head;
- ``write``: a response that cannot be written (the client stopped reading and every buffer
  is full) may wait this long for the client to read again.

A request that misses its deadline before any answer gets ``408 {"detail": ...}`` (fal's shape)
and the connection is closed; otherwise the connection is just closed, which the app sees as a
disconnect (its streams stop). The protocol is selected explicitly, so the limits hold even where
uvicorn would pick httptools (``uvicorn[standard]``).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ClientTimeouts", "GuardedH11Protocol", "guarded_protocol"]

Phase = Literal["head", "body"]


@dataclass(frozen=True, slots=True)
class ClientTimeouts:
    head: float = 10.0
    body: float = 300.0
    write: float = 60.0


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the deadlines of :class:`ClientTimeouts`."""

    timeouts: ClassVar[ClientTimeouts] = ClientTimeouts()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._phase: Phase | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._write_deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm("head")  # a new connection owes a request head at once

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._cancel_write_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_deadline is None:
            self._write_deadline = self.loop.call_later(self.timeouts.write, self._write_stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel_write_deadline()

    # -- deadlines -----------------------------------------------------------------------

    def _follow(self) -> None:
        """Arm or drop the read deadline for where the client is in its request."""
        if self.transport.is_closing():
            self._disarm()
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            # Between requests an idle connection is uvicorn's keep-alive timer's; once the
            # first bytes of a head are in, the rest of it is due within the head deadline.
            if self._phase != "head" and self.conn.trailing_data[0]:
                self._arm("head")
        elif state is h11.SEND_BODY:
            if self._phase != "body":
                self._arm("body")
        else:  # DONE, MUST_CLOSE, CLOSED, ERROR: nothing more is owed
            self._disarm()

    def _arm(self, phase: Phase) -> None:
        self._disarm()
        self._phase = phase
        delay = self.timeouts.head if phase == "head" else self.timeouts.body
        self._deadline = self.loop.call_later(delay, self._expired, phase)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None
        self._phase = None

    def _expired(self, phase: Phase) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        started_head = phase == "head" and bool(self.conn.trailing_data[0])
        unanswered = phase == "body" and (self.cycle is None or not self.cycle.response_started)
        if started_head or unanswered:
            what = "request head" if phase == "head" else "request body"
            seconds = self.timeouts.head if phase == "head" else self.timeouts.body
            self.transport.write(
                _timeout_response(f"The {what} did not arrive within {seconds:g} s")
            )
        self.transport.close()  # the app sees a disconnect; uvicorn cleans up in connection_lost

    def _write_stalled(self) -> None:
        self._write_deadline = None
        if not self.transport.is_closing():
            # The client has stopped reading: what is buffered can never be delivered. Drop it
            # (ours and the kernel's: a zero linger makes the close a reset) and the connection.
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()

    def _cancel_write_deadline(self) -> None:
        if self._write_deadline is not None:
            self._write_deadline.cancel()
        self._write_deadline = None


def guarded_protocol(timeouts: ClientTimeouts) -> type[GuardedH11Protocol]:
    """The protocol class for uvicorn's ``http=`` setting, with these deadlines."""
    attributes: dict[str, Any] = {"timeouts": timeouts}
    return type("GuardedH11Protocol", (GuardedH11Protocol,), attributes)


def _timeout_response(detail: str) -> bytes:
    body = json.dumps({"detail": detail}).encode()
    head = (
        b"HTTP/1.1 408 Request Timeout\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n"
    )
    return head + body
