"""A real HTTP server on a free loopback port, for tests of code that fetches URLs (the input
resolver, the destination guard): it serves fixed bytes, redirects ``/redirect?to=URL``, and
records each request it got."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class LoopbackServer:
    def __init__(self, body: bytes = b"ok") -> None:
        self.hits: list[tuple[str, str]] = []
        """(path, Host header) of each request, in order."""
        self.user_agents: list[str | None] = []
        """The User-Agent of each request, in order."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits.append((self.path, self.headers.get("Host", "")))
                owner.user_agents.append(self.headers.get("User-Agent"))
                if self.path.startswith("/redirect?to="):
                    self.send_response(302)
                    self.send_header("Location", self.path.partition("?to=")[2])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.hits]

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()
