"""Who may use the control plane (``/_mock/...``): whoever holds its token, else loopback only.

The control plane resets the mock, reads the journal and moves the clock: on a mock bound to a
public interface, anyone who can reach the port could wipe a colleague's test run or read what
clients sent. So:

- with a control token (``--control-token`` / ``FAL_MOCK_CONTROL_TOKEN``), every control request
  must carry it, as ``Authorization: Bearer <token>`` or ``X-Mock-Control-Token: <token>`` (the
  second lets a client that sends its fal key in ``Authorization`` carry both), compared in
  constant time; anything else is a 401;
- without one, only loopback clients are served (403 otherwise). A request with no peer address
  (a unix socket) counts as local. The in-process bridge presents ``127.0.0.1``.

A browser on the developer's machine is a loopback client too: a web page could send it to the
control plane (CSRF), or reach it under its own name once that name resolves to 127.0.0.1 (DNS
rebinding). Without a token, a request that shows a browser's marks (``Origin`` or
``Sec-Fetch-Site``) is therefore served only when its ``Host`` and ``Origin`` name the loopback
(``localhost``, ``127.0.0.1``, ``[::1]``): the mock's own /docs page still works; another site
does not.

Installed outermost, before the body is read or the host dispatched: a refused request costs
nothing and never reaches a route.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
from typing import Final
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "CONTROL_PREFIX",
    "CONTROL_TOKEN_ENV",
    "CONTROL_TOKEN_HEADER",
    "ControlGuard",
    "control_token_headers",
]

CONTROL_PREFIX: Final = "/_mock"
CONTROL_TOKEN_ENV: Final = "FAL_MOCK_CONTROL_TOKEN"
CONTROL_TOKEN_HEADER: Final = "X-Mock-Control-Token"

_TOKEN_HEADER: Final = CONTROL_TOKEN_HEADER.lower().encode()
_BROWSER_MARKS: Final = (b"origin", b"sec-fetch-site")


class ControlGuard:
    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self._token = None if token is None else token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _is_control(scope["path"]):
            refusal = self._refusal(scope)
            if refusal is not None:
                status, detail, headers = refusal
                await _reply(send, status, detail, headers)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name, value)  # the first of a repeated header counts
        if self._token is not None:
            if _carries(headers, self._token):
                return None
            detail = (
                "The control plane needs its token: send 'Authorization: Bearer <token>' or "
                f"'{CONTROL_TOKEN_HEADER}: <token>' (the mock's --control-token / "
                f"{CONTROL_TOKEN_ENV})"
            )
            return 401, detail, [(b"www-authenticate", b'Bearer realm="fal-mock control plane"')]
        client = scope.get("client")
        peer = None if client is None else str(client[0])
        if peer is not None and not _is_loopback_address(peer):
            detail = (
                f"The control plane answers loopback clients only (this request came from "
                f"{peer}). Start the mock with --control-token (or {CONTROL_TOKEN_ENV}) and send "
                "'Authorization: Bearer <token>' to use it from another machine."
            )
            return 403, detail, []
        if any(mark in headers for mark in _BROWSER_MARKS):
            host = headers.get(b"host", b"").decode("latin-1")
            origin = headers.get(b"origin", b"").decode("latin-1")
            named = [_hostname(host)] + ([urlsplit(origin).hostname or ""] if origin else [])
            if not all(_is_loopback_name(name) for name in named):
                detail = (
                    "The control plane refuses browser requests from other sites (Host "
                    f"{host!r}, Origin {origin or None!r}): open it as http://127.0.0.1:<port> "
                    "or http://localhost:<port>, or set a control token."
                )
                return 403, detail, []
        return None


def control_token_headers(token: str | None = None) -> dict[str, str]:
    """What a client sends to a control plane: ``token``, else ``$FAL_MOCK_CONTROL_TOKEN``, as
    ``X-Mock-Control-Token``; nothing when there is none. Only for ``/_mock`` requests: the token
    has no business reaching fal or anyone else."""
    token = token or os.environ.get(CONTROL_TOKEN_ENV) or None
    return {} if token is None else {CONTROL_TOKEN_HEADER: token}


def _is_control(path: str) -> bool:
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


def _carries(headers: dict[bytes, bytes], token: bytes) -> bool:
    """Whether either header carries ``token``; both compared in constant time, always."""
    scheme, _, bearer = headers.get(b"authorization", b"").strip().partition(b" ")
    offered_bearer = bearer.strip() if scheme.lower() == b"bearer" else b""
    by_bearer = hmac.compare_digest(offered_bearer, token)
    by_header = hmac.compare_digest(headers.get(_TOKEN_HEADER, b"").strip(), token)
    return by_bearer or by_header


def _is_loopback_address(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _is_loopback_name(name: str) -> bool:
    name = name.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost") or _is_loopback_address(name)


def _hostname(host_header: str) -> str:
    if host_header.startswith("["):  # [::1]:8000
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if ":" in host_header else host_header


async def _reply(send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]]) -> None:
    payload = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
