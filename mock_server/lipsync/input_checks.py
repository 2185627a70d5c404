"""Check by content that an input file holds what its field needs, and find how long it lasts.

Apart from :mod:`mock_server.lipsync.inputs`, which gets the bytes, because what a file is comes
from its content, never from its name or MIME type: this is PyAV probing, run on whatever local
file the resolver produced. A video field needs a decodable moving video, not a still image; an
audio field needs an audio stream (a video with sound will do, as on fal). The types both halves
share (:class:`InputError`, :class:`InputConfig`, ...) are defined here so that ``inputs`` can
import this module without a cycle; ``inputs`` re-exports them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Final, Literal

import av
from av.container import InputContainer

from contracts.schemas.errors import ValidationErrorBody, ValidationErrorItem
from mock_server.lipsync.video import MAX_SECONDS, probe_video
from mock_server.netguard import DestinationPolicy

__all__ = [
    "MEDIA_KINDS",
    "InputConfig",
    "InputError",
    "InputErrorType",
    "InputField",
    "MediaKind",
    "check_media",
    "unsupported_format",
]

InputField = Literal["video_url", "audio_url"]
MediaKind = Literal["video", "audio"]
InputErrorType = Literal[
    "file_download_error",  # the bytes could not be had: scheme, root, storage, network, HTTP
    "file_too_large",  # over InputConfig.max_bytes (ctx: max_size)
    "unsupported_video_format",  # not a decodable moving video (or truncated, damaged, empty)
    "unsupported_audio_format",  # no decodable audio stream (or truncated, damaged, empty)
    "video_duration_too_long",  # over InputConfig.max_seconds (ctx: max_duration)
    "audio_duration_too_long",
]

DEFAULT_MAX_BYTES: Final = 256 * 1024 * 1024
DEFAULT_FETCH_TIMEOUT_S: Final = 30.0
ERROR_DOCS_URL: Final = "https://docs.fal.ai/errors/#"
MEDIA_KINDS: Final[dict[InputField, MediaKind]] = {"video_url": "video", "audio_url": "audio"}


class InputError(Exception):
    """An input URL that cannot be used, as one entry of fal's 422 ``detail`` list."""

    def __init__(
        self, field: InputField, msg: str, type: InputErrorType, ctx: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{field}: {msg}")
        self.field: InputField = field
        self.msg = msg
        self.type: InputErrorType = type
        self.ctx = ctx

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised in a worker process, unpickled in the server: keep every attribute.
        return (self.__class__, (self.field, self.msg, self.type, self.ctx))

    def to_model(self) -> ValidationErrorBody:
        item = ValidationErrorItem(
            loc=["body", self.field],
            msg=self.msg,
            type=self.type,
            url=ERROR_DOCS_URL + self.type,
            ctx=self.ctx,
        )
        return ValidationErrorBody(detail=[item])

    def to_body(self) -> dict[str, Any]:
        """fal's 422 body: ``{"detail": [{"loc": ["body", field], "msg", "type", "url"}]}``."""
        return self.to_model().model_dump(mode="json", exclude_none=True)


@dataclass(frozen=True, slots=True)
class InputConfig:
    """What the resolver may fetch and how much. Picklable, so it can travel to a worker."""

    allow_remote: bool = False
    """Fetch ``http(s)://`` URLs. Off by default: no requests to arbitrary hosts from a mock."""
    allow_private: bool = False
    """Remote URLs may lead to private and loopback addresses (every redirect hop checked).
    Link-local and cloud metadata addresses stay refused: see :mod:`mock_server.netguard`."""
    allowed_hosts: frozenset[str] = frozenset()
    """Remote hosts (names, addresses or networks) exempt from the address checks."""
    file_root: Path | None = None
    """Directory ``file://`` URLs may point into; ``None`` refuses every ``file://`` URL."""
    max_bytes: int = DEFAULT_MAX_BYTES
    """Largest input file, for every kind of source."""
    max_seconds: float = MAX_SECONDS
    """Longest input (video or audio) accepted."""
    fetch_timeout_s: float = DEFAULT_FETCH_TIMEOUT_S
    """Deadline for a whole remote download (and for each network operation in it)."""

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or not self.max_seconds > 0 or not self.fetch_timeout_s > 0:
            raise ValueError("max_bytes, max_seconds and fetch_timeout_s must be positive")
        self.destinations()  # an unusable allowed_hosts entry fails here, not at the first fetch

    def destinations(self) -> DestinationPolicy:
        """Where remote fetches may connect."""
        return DestinationPolicy(
            allow_private=self.allow_private,
            allow_loopback=self.allow_private,
            allowed_hosts=frozenset(self.allowed_hosts),
        )


def check_media(field: InputField, path: Path, config: InputConfig) -> float:
    """Check by content that ``path`` holds what ``field`` needs; its duration in seconds."""
    kind = MEDIA_KINDS[field]
    try:
        # probe_video refuses non-media, still images and undecodable first frames.
        info = probe_video(path, max_seconds=math.inf) if kind == "video" else None
        with _open(path) as container:
            streams = container.streams.video if kind == "video" else container.streams.audio
            if not streams:
                kinds = ", ".join(s.type for s in container.streams) or "none"
                raise ValueError(f"the file has no {kind} stream (streams: {kinds})")
            stream = streams[0]
            declared = info.duration_s if info else _seconds(stream.duration, stream.time_base)
            if declared > config.max_seconds:
                raise _too_long(field, declared, config)
            measured = _scan(container, stream)
            if measured > config.max_seconds:  # a header that understates the length
                raise _too_long(field, measured, config)
    except OSError as error:  # about the path (permissions, vanished), not the content
        msg = f"cannot read the file: {error.strerror}"
        raise InputError(field, msg, "file_download_error") from error
    except (ValueError, av.FFmpegError) as error:
        msg = f"not a usable {kind} file: {_explain(error, path)}"
        raise InputError(field, msg, unsupported_format(field)) from error
    return info.duration_s if info else measured


def _scan(container: InputContainer, stream: av.VideoStream | av.AudioStream) -> float:
    """Read every packet of ``stream``; decode it too if audio (cheap; decoding the video is the
    pipeline's job). Finds what opening and a first frame cannot: a file cut short behind an
    intact index (fewer packets than it declares, or a partial one). Returns the seconds the
    packets span (video) or the decoded samples last (audio)."""
    packets = samples = 0
    first: int | None = None
    end = 0
    for packet in container.demux(stream):
        if isinstance(stream, av.AudioStream):
            frames = packet.decode()
            samples += sum(f.samples for f in frames if isinstance(f, av.AudioFrame))
        if packet.size == 0:
            continue  # the demuxer's end-of-stream marker
        packets += 1
        if packet.is_corrupt:
            raise ValueError("the file is truncated or damaged (an incomplete packet)")
        if packet.pts is not None:
            first = packet.pts if first is None else min(first, packet.pts)
            end = max(end, packet.pts + (packet.duration or 0))
    if stream.frames and packets < stream.frames:
        raise ValueError(
            f"the file is truncated: it declares {stream.frames} packets, holds {packets}"
        )
    if isinstance(stream, av.AudioStream):
        rate = stream.codec_context.sample_rate or stream.rate
        if not samples or not rate:
            raise ValueError("the audio stream decodes to no samples")
        return samples / rate
    return _seconds(end - first, stream.time_base) if first is not None else 0.0


def _seconds(duration: int | None, time_base: Fraction | None) -> float:
    return float(duration * time_base) if duration is not None and time_base else 0.0


def _open(path: Path) -> InputContainer:
    container = av.open(str(path), "r")
    assert isinstance(container, InputContainer)
    return container


def unsupported_format(field: InputField) -> InputErrorType:
    """The ``type`` for content that is not usable media for ``field``; public because the
    resolver gives it to an empty file too, which it refuses before probing."""
    return "unsupported_video_format" if field == "video_url" else "unsupported_audio_format"


def _too_long(field: InputField, seconds: float, config: InputConfig) -> InputError:
    kind = MEDIA_KINDS[field]
    return InputError(
        field,
        f"the {kind} is {seconds:.1f} s long; the limit is {config.max_seconds:g} s",
        "video_duration_too_long" if kind == "video" else "audio_duration_too_long",
        {"max_duration": config.max_seconds},
    )


def _explain(error: Exception, path: Path) -> str:
    """The reason, without the work file's path (meaningless to the client)."""
    text = str(error).removeprefix(f"{path}: ")
    cause = error if isinstance(error, av.FFmpegError) else error.__cause__
    if isinstance(cause, av.FFmpegError) and cause.strerror:
        head = text.split(": ", 1)[0] if cause is not error else "not decodable media"
        text = f"{head}: {cause.strerror}"
    return text.replace(str(path), "the file")
