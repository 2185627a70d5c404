"""Where the pytest plugin sends fal traffic: the in-process mock, or a server named by URL.

Plain standard library, because the plugin parses ``--fal-target`` at start-up and loading the
plugin must stay cheap. The kinds:

* ``inprocess`` (no ``--fal-target``): fal's hosts are routed into the mock's app.
* ``fal``: ``--fal-target=fal``; requests go to fal itself (needs a real ``FAL_KEY``).
* ``proxy``: a URL whose path ends in ``/api/fal/proxy``; every request is sent there with the
  original URL in ``x-fal-target-url`` (fal's server-proxy convention, as @fal-ai/client does).
* ``mock``: any other ``http(s)`` URL; a server in the live mock's layout, where fal's hosts are
  the path prefixes ``/queue``, ``/run``, ``/rest`` and ``/cdn`` (``fal-mock serve``, or a
  proxy that mirrors it). Its control plane ``/_mock`` is used when it answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlsplit

__all__ = ["PROXY_SUFFIX", "Target", "TargetError"]

TargetKind = Literal["inprocess", "fal", "proxy", "mock"]

PROXY_SUFFIX: Final = "/api/fal/proxy"
"""fal's server-proxy path (``contracts.operations.PROXY_PATH``; a test keeps them equal)."""

_FAL_DOMAINS: Final = ("fal.run", "fal.ai", "fal.media", "falrun.com")


class TargetError(ValueError):
    """A ``--fal-target`` value that names no usable server."""


@dataclass(frozen=True, slots=True)
class Target:
    kind: TargetKind
    url: str = ""

    @classmethod
    def parse(cls, text: str | None) -> Target:
        if not text:
            return cls("inprocess")
        if text.strip().lower() == "fal":
            return cls("fal")
        parts = urlsplit(text.strip())
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            raise TargetError(
                f"--fal-target={text!r}: expected 'fal' or an http(s) URL "
                "(a fal-mock server, or a proxy ending in /api/fal/proxy)"
            )
        if any(host == d or host.endswith("." + d) for d in _FAL_DOMAINS):
            raise TargetError(f"--fal-target={text!r}: to test against fal itself, pass 'fal'")
        url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        kind: TargetKind = "proxy" if url.endswith(PROXY_SUFFIX) else "mock"
        return cls(kind, url)

    @property
    def remote(self) -> bool:
        return self.kind != "inprocess"

    @property
    def origin(self) -> str:
        """``scheme://host:port`` of a URL target."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def control_url(self) -> str | None:
        """Where a fal-mock control plane would be, if the target is (or fronts) a fal-mock."""
        if self.kind == "mock":
            return f"{self.url}/_mock"
        if self.kind == "proxy":
            return f"{self.url[: -len(PROXY_SUFFIX)]}/_mock"
        return None

    def describe(self) -> str:
        if self.kind == "inprocess":
            return "in-process (fal's hosts routed into the mock, no network)"
        if self.kind == "fal":
            return "fal itself (real requests, FAL_KEY from the environment)"
        if self.kind == "proxy":
            return f"proxy {self.url} (x-fal-target-url)"
        return f"server {self.url} (fal-mock layout: /queue, /run, /rest, /cdn)"
