"""Resolve a request's ``video_url`` / ``audio_url`` into local media files the pipeline can open.

Sources, in this order: (1) fal's documented example URLs map to the media bundled in
:mod:`mock_server.lipsync.examples`, so the example request works offline; (2) ``data:`` URIs,
base64 or percent-encoded, sized before decoding; (3) the mock's own storage, by internal ref
``fal-mock-file://<id>/<name>`` or any mock file URL ``.../files/<id>/<name>``; (4) ``file://``
URLs under :attr:`InputConfig.file_root` only (none by default), symlinks and ``..`` resolved
before the check; (5) ``http(s)://`` only with :attr:`InputConfig.allow_remote` (off by default:
a test tool must not fetch whatever a request names), streamed with a deadline and a size limit,
and only to public addresses unless :attr:`InputConfig.allow_private` or
:attr:`InputConfig.allowed_hosts` say otherwise: every redirect hop is checked where its
connection is opened (:mod:`mock_server.netguard`), so neither a redirect nor a DNS answer that
changes can lead the mock to a private, loopback, link-local or cloud metadata address.

What a file is comes from its content, never from its name or MIME type: once the bytes are
local, :func:`mock_server.lipsync.input_checks.check_media` probes them. Every problem with an
input is an :class:`InputError`, rendered as fal's 422 body with fal's own ``type`` strings.
Synchronous: it runs in a worker process.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
import tempfile
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final, Protocol

import httpx

from contracts.schemas.lipsync import EXAMPLE_AUDIO_URL, EXAMPLE_VIDEO_URL
from mock_server.lipsync.examples import EXAMPLE_AUDIO_PATH, EXAMPLE_VIDEO_PATH
from mock_server.lipsync.input_checks import (
    MEDIA_KINDS,
    InputConfig,
    InputError,
    InputErrorType,
    InputField,
    MediaKind,
    check_media,
    unsupported_format,
)
from mock_server.netguard import DestinationRefused, guarded_client
from mock_server.storage import FILE_REF_SCHEME, StoredFile

# InputConfig, InputError and the field types are defined in input_checks, which needs them and
# must not import this module (a cycle); re-exported here, where callers import them from.
__all__ = [
    "EXAMPLE_AUDIO_PATH",
    "EXAMPLE_MEDIA",
    "EXAMPLE_VIDEO_PATH",
    "InputConfig",
    "InputError",
    "InputErrorType",
    "InputField",
    "ResolvedMedia",
    "StoredFiles",
    "resolve_input",
    "resolve_inputs",
]

EXAMPLE_MEDIA: Final[Mapping[str, Path]] = MappingProxyType(
    {EXAMPLE_VIDEO_URL: EXAMPLE_VIDEO_PATH, EXAMPLE_AUDIO_URL: EXAMPLE_AUDIO_PATH}
)
"""fal's documented example URLs and the bundled files that stand in for them."""

_CHUNK: Final = 1 << 20
_B64_CHUNK: Final = 4 * _CHUNK  # base64 characters per decoded piece (a multiple of 4)
_USER_AGENT: Final = "fal-lipsync-mock input resolver"


@dataclass(frozen=True, slots=True)
class ResolvedMedia:
    """A checked input: a local file PyAV can open, and what was found in it."""

    path: Path
    """In the work dir (written atomically), or the bundled example / ``file://`` file itself."""
    kind: MediaKind
    size: int
    duration_s: float
    source: str
    """Where it came from, for logs (a data URI is summarised, never copied in full)."""


class StoredFiles(Protocol):
    """The part of :class:`mock_server.storage.FileStore` the resolver reads."""

    def lookup_ref(self, url: str) -> StoredFile | None: ...

    def get(self, file_id: str) -> tuple[StoredFile, bytes] | None: ...


def resolve_inputs(
    video_url: str,
    audio_url: str,
    *,
    work_dir: Path,
    store: StoredFiles | None = None,
    config: InputConfig | None = None,
    http_client: httpx.Client | None = None,
) -> tuple[ResolvedMedia, ResolvedMedia]:
    """Resolve and check both inputs of a request, video first; see :func:`resolve_input`."""
    resolve = functools.partial(
        resolve_input, work_dir=work_dir, store=store, config=config, http_client=http_client
    )
    return resolve("video_url", video_url), resolve("audio_url", audio_url)


def resolve_input(
    field: InputField,
    url: str,
    *,
    work_dir: Path,
    store: StoredFiles | None = None,
    config: InputConfig | None = None,
    http_client: httpx.Client | None = None,
) -> ResolvedMedia:
    """Fetch ``url`` into ``work_dir`` (as ``<field>.media``) when it is not a local file already,
    then check by content that it holds what ``field`` needs. Raises :class:`InputError` only.

    ``http_client`` is used for remote URLs when given (tests inject a transport this way: its
    transport decides where requests go); otherwise a client is made per download that connects
    only where ``config`` allows (:meth:`InputConfig.destinations`), each redirect hop included.
    """
    config = config or InputConfig()
    path, size, source = _fetch(field, url, work_dir, store, config, http_client)
    if size == 0:
        raise InputError(field, "the file is empty (0 bytes)", unsupported_format(field))
    return ResolvedMedia(path, MEDIA_KINDS[field], size, check_media(field, path, config), source)


# -- getting the bytes -----------------------------------------------------------------------


def _fetch(
    field: InputField,
    url: str,
    work_dir: Path,
    store: StoredFiles | None,
    config: InputConfig,
    client: httpx.Client | None,
) -> tuple[Path, int, str]:
    example = EXAMPLE_MEDIA.get(url)
    if example is not None:
        return example, _limit(field, example.stat().st_size, config), f"example {example.name}"
    scheme = url.partition(":")[0].lower() if ":" in url else ""
    if scheme == "data":
        return _from_data_uri(field, url, work_dir, config)
    stored = store.lookup_ref(url) if store is not None else None
    found = store.get(stored.file_id) if store is not None and stored is not None else None
    if found is not None:
        stored, data = found
        _limit(field, len(data), config)
        path, size = _write(field, [data], work_dir, config)
        return path, size, f"mock storage {stored.file_id}/{stored.file_name}"
    if url.startswith(FILE_REF_SCHEME):
        raise _download_error(field, f"{url} is not in the mock's storage (was it reset?)")
    if scheme == "file":
        return _from_file_url(field, url, config)
    if scheme in ("http", "https"):
        if not config.allow_remote:
            raise _download_error(
                field,
                f"{_shown(url)}: fetching remote URLs is disabled in the mock. Upload the file to "
                "the mock's storage, send a data: URI, or enable remote fetching.",
            )
        return _download(field, url, work_dir, config, client)
    raise _download_error(
        field, f"{_shown(url)}: unsupported URL scheme {scheme!r} (use http(s):// or data:)"
    )


def _from_data_uri(
    field: InputField, url: str, work_dir: Path, config: InputConfig
) -> tuple[Path, int, str]:
    header, comma, payload = url[len("data:") :].partition(",")
    if not comma:
        raise _download_error(field, "malformed data: URI (no comma before the data)")
    params = [part.strip().lower() for part in header.split(";")]
    is_base64 = len(params) > 1 and params[-1] == "base64"
    source = f"data: URI ({params[0] or 'text/plain'}{', base64' if is_base64 else ''})"
    if is_base64:
        if "%" in payload:
            # Sized before the escapes are undone too: each %XX stands for one character.
            unpadded = _strip_padding(payload)
            _limit(field, (len(unpadded) - 2 * unpadded.count("%")) * 3 // 4, config)
            payload = urllib.parse.unquote(payload)
        payload = payload.rstrip("=")
        _limit(field, len(payload) * 3 // 4, config)  # before decoding a single byte
        if len(payload) % 4 == 1:
            raise _download_error(field, "the data: URI is not valid base64 (bad length)")
        chunks: Iterable[bytes] = _b64_chunks(field, payload)
    else:
        # Every %XX escape is three characters for one byte: the exact size, before decoding.
        _limit(field, len(payload) - 2 * payload.count("%"), config)
        chunks = [urllib.parse.unquote_to_bytes(payload)]
    path, size = _write(field, chunks, work_dir, config)
    return path, size, source


def _strip_padding(payload: str) -> str:
    """Base64 text without its trailing ``=`` padding, plain or percent-escaped."""
    while True:
        if payload.endswith("="):
            payload = payload[:-1]
        elif payload[-3:].upper() == "%3D":
            payload = payload[:-3]
        else:
            return payload


def _b64_chunks(field: InputField, payload: str) -> Iterator[bytes]:
    for start in range(0, len(payload), _B64_CHUNK):
        piece = payload[start : start + _B64_CHUNK]
        try:
            yield base64.b64decode(piece + "=" * (-len(piece) % 4), validate=True)
        except (binascii.Error, ValueError) as error:
            raise _download_error(field, f"the data: URI is not valid base64 ({error})") from error


def _from_file_url(field: InputField, url: str, config: InputConfig) -> tuple[Path, int, str]:
    if config.file_root is None:
        raise _download_error(field, "file:// URLs are disabled: the mock has no file root set")
    parts = urllib.parse.urlsplit(url)
    raw = urllib.parse.unquote(parts.path)
    if parts.netloc not in ("", "localhost") or not raw.startswith("/") or "\x00" in raw:
        raise _download_error(field, f"{_shown(url)}: not a local absolute file:// URL")
    root = config.file_root.resolve()
    target = Path(raw).resolve()  # symlinks and ".." resolved before the root check
    if not target.is_relative_to(root):
        raise _download_error(field, f"{_shown(url)} is outside the allowed file root {root}")
    if not target.is_file():
        problem = "not a regular file" if target.exists() else "no such file"
        raise _download_error(field, f"{_shown(url)}: {problem}")
    size = target.stat().st_size
    return target, _limit(field, size, config), f"file {target}"


def _download(
    field: InputField, url: str, work_dir: Path, config: InputConfig, client: httpx.Client | None
) -> tuple[Path, int, str]:
    own = client is None
    http = client or guarded_client(config.destinations(), headers={"User-Agent": _USER_AGENT})
    deadline = time.monotonic() + config.fetch_timeout_s
    try:
        stream = http.stream("GET", url, timeout=config.fetch_timeout_s, follow_redirects=True)
        with stream as response:
            if not response.is_success:
                raise _download_error(
                    field, f"{_shown(url)}: the server answered HTTP {response.status_code}"
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit():
                _limit(field, int(declared), config)

            def chunks() -> Iterator[bytes]:
                for chunk in response.iter_bytes(_CHUNK):
                    if time.monotonic() > deadline:
                        raise _download_error(
                            field,
                            f"{_shown(url)}: the download took over {config.fetch_timeout_s:g} s",
                        )
                    yield chunk

            path, size = _write(field, chunks(), work_dir, config)
    except DestinationRefused as error:
        raise _download_error(
            field,
            f"{_shown(url)}: {error}. Inputs may come from public addresses only unless the mock "
            "is started with --allow-private-inputs (private and loopback) or "
            "--allowed-input-hosts.",
        ) from error
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise _download_error(field, f"{_shown(url)}: {type(error).__name__}: {error}") from error
    finally:
        if own:
            http.close()
    return path, size, f"download {_shown(url)}"


def _write(
    field: InputField, chunks: Iterable[bytes], work_dir: Path, config: InputConfig
) -> tuple[Path, int]:
    """Write to ``work_dir/<field>.media`` through a temporary file, stopping at the size limit."""
    work_dir.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=work_dir, prefix=f".{field}.", suffix=".part")
    try:
        size = 0
        with os.fdopen(descriptor, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                _limit(field, size, config, more=True)
                out.write(chunk)
        # A neutral suffix: FFmpeg then finds the format from the content alone.
        final = work_dir / f"{field}.media"
        os.replace(temporary, final)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return final, size


def _limit(field: InputField, size: int, config: InputConfig, more: bool = False) -> int:
    """``size`` if within the limit; ``more``: only a part of the file has been counted."""
    if size > config.max_bytes:
        limit = config.max_bytes
        msg = f"the file is {size} bytes; the limit is {limit}"
        raise InputError(
            field,
            f"the file is larger than the limit of {limit} bytes" if more else msg,
            "file_too_large",
            {"max_size": limit},
        )
    return size


def _download_error(field: InputField, msg: str) -> InputError:
    return InputError(field, msg, "file_download_error")


def _shown(url: str) -> str:
    """A URL for a message: data: URIs and very long URLs are cut short."""
    if url[:5].lower() == "data:":
        return url.partition(",")[0] + ",..."
    return url if len(url) <= 200 else f"{url[:150]}... ({len(url)} characters)"
