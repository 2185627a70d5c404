"""Which fal host a request was meant for, and the URLs that lead back the way it came.

One ASGI app serves fal's four logical hosts. A request reaches one of them in three ways:

* by ``Host`` header (in-process routing: httpx requests to ``https://queue.fal.run/...``),
* by path prefix on one port (the live server: ``http://127.0.0.1:8000/queue/...``),
* through the proxy route with ``x-fal-target-url`` (@fal-ai/client's ``proxyUrl``).

This middleware rewrites each to the internal form ``/<host>/<path>`` that the routers serve,
and records the public base URL of every logical host for this request, so that status, result
and file URLs in answers point back the way the request came in.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from contracts.operations import (
    ENDPOINT_ID,
    FAL_HOSTS,
    HOST_TO_LOGICAL,
    PROXY_PATH,
    PROXY_TARGET_HEADER,
    LogicalHost,
)
from mock_server.storage import FILE_REF_SCHEME

URLS_KEY: Final = "fal_mock.urls"
HOST_KEY: Final = "fal_mock.host"
PUBLIC_PATH_KEY: Final = "fal_mock.public_path"

_PASS_THROUGH: Final = ("/_mock", "/docs", "/redoc", "/openapi.json")
_PREFIXES: Final = {f"/{h.value}": h for h in LogicalHost}


@dataclass(frozen=True, slots=True)
class PublicUrls:
    """Base URL of each logical host, as seen by the client of this request."""

    queue: str
    run: str
    rest: str
    cdn: str

    @classmethod
    def prefixed(cls, origin: str) -> PublicUrls:
        """One origin, logical hosts as path prefixes (the live server)."""
        return cls(*(f"{origin}/{host.value}" for host in LogicalHost))

    @classmethod
    def fal_hosts(cls, scheme: str, arrived_on: LogicalHost, host_header: str) -> PublicUrls:
        """fal's own host names; the host the request came in on keeps its exact spelling
        (a backup domain stays the backup domain)."""
        bases = {
            host: f"{scheme}://{host_header if host is arrived_on else FAL_HOSTS[host][0]}"
            for host in LogicalHost
        }
        return cls(*(bases[host] for host in LogicalHost))

    def request_urls(self, request_id: str, app_id: str = ENDPOINT_ID) -> dict[str, str]:
        base = f"{self.queue}/{app_id}/requests/{request_id}"
        return {
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }

    def file_url(self, file_id: str, file_name: str) -> str:
        return f"{self.cdn}/files/{file_id}/{file_name}"

    def render_refs(self, text: str) -> str:
        """Stored-file references inside an output, made into URLs for this client."""
        return text.replace(FILE_REF_SCHEME, f"{self.cdn}/files/")


class HostDispatch:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = Headers(scope=scope)
        host_header = headers.get("host", "")
        hostname = _hostname(host_header)
        scheme: str = scope.get("scheme", "http")
        origin = f"{scheme}://{host_header}"

        if path.startswith(_PASS_THROUGH):
            await self.app(scope, receive, send)
            return
        if hostname in HOST_TO_LOGICAL:
            logical = HOST_TO_LOGICAL[hostname]
            urls = _fal_host_urls(scheme, logical, host_header)
            public_path, query = path, scope.get("query_string", b"")
        elif path == PROXY_PATH:
            target = headers.get(PROXY_TARGET_HEADER)
            problem, parsed = _parse_target(target)
            if parsed is None:
                await _reply(send, problem[0], {"detail": problem[1]})
                return
            logical, public_path, query = parsed
            urls = _prefixed_urls(origin)
        elif (prefix := "/" + path.split("/", 2)[1]) in _PREFIXES:
            logical = _PREFIXES[prefix]
            urls = _prefixed_urls(origin)
            public_path, query = path[len(prefix) :] or "/", scope.get("query_string", b"")
        else:
            await self.app(scope, receive, send)
            return

        internal = f"/{logical.value}{public_path}"
        scope = {
            **scope,
            "path": internal,
            "raw_path": internal.encode(),
            "query_string": query,
            URLS_KEY: urls,
            HOST_KEY: logical,
            PUBLIC_PATH_KEY: public_path,
        }
        await self.app(scope, receive, send)


# Built once per origin clients use, not per request; bounded, so that odd Host headers cannot
# grow them without limit.
_prefixed_urls = functools.lru_cache(maxsize=256)(PublicUrls.prefixed)
_fal_host_urls = functools.lru_cache(maxsize=256)(PublicUrls.fal_hosts)


def _hostname(host_header: str) -> str:
    if host_header.startswith("["):  # [::1]:8000
        return host_header[1:].split("]", 1)[0].lower()
    return host_header.rsplit(":", 1)[0].lower() if ":" in host_header else host_header.lower()


def _parse_target(
    target: str | None,
) -> tuple[tuple[int, str], tuple[LogicalHost, str, bytes] | None]:
    """fal's server proxy answers 400 without the header and 412 for a non-fal target."""
    if not target:
        return (400, f"Missing the {PROXY_TARGET_HEADER} header"), None
    parts = urlsplit(target)
    logical = HOST_TO_LOGICAL.get((parts.hostname or "").lower())
    if parts.scheme not in ("http", "https") or logical is None:
        return (412, f"Invalid {PROXY_TARGET_HEADER} header: {target!r} is not a fal URL"), None
    return (200, ""), (logical, parts.path or "/", parts.query.encode())


async def _reply(send: Send, status: int, body: dict[str, str]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
