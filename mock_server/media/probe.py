"""Describe an mp4 (or any media PyAV can open) from its bytes, by decoding it.

Used by tests and by output checks, so the numbers come from decoding where that is cheap
(frame and sample counts) rather than only from what the container claims.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import av
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.video.stream import VideoStream


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What a media file holds. Audio fields are ``None`` when there is no audio stream."""

    format_names: tuple[str, ...]
    """The demuxer's names, e.g. ``("mov", "mp4", "m4a", "3gp", "3g2", "mj2")``."""
    video_codec: str
    pix_fmt: str | None
    width: int
    height: int
    fps: float
    frame_count: int
    """Frames actually decoded."""
    video_duration_s: float
    audio_codec: str | None
    audio_sample_rate: int | None
    audio_samples: int | None
    """Samples actually decoded (per channel); may exceed the duration by the encoder's padding."""
    audio_duration_s: float | None


def probe_mp4(data: bytes) -> MediaInfo:
    """Decode ``data`` fully and describe it.

    Raises ``ValueError`` when the bytes are not media PyAV can open, hold no video stream, or
    fail to decode.
    """
    try:
        with av.open(io.BytesIO(data), "r") as container:
            return _probe(container)
    except av.FFmpegError as error:
        raise ValueError(f"not decodable media ({len(data)} bytes): {error}") from error


def _probe(container: InputContainer) -> MediaInfo:
    if not container.streams.video:
        raise ValueError("media has no video stream")
    video = container.streams.video[0]
    audio = container.streams.audio[0] if container.streams.audio else None

    frame_count = 0
    first_pts: int | None = None
    end_pts: int | None = None
    pix_fmt: str | None = None
    audio_samples = 0
    streams: list[VideoStream | AudioStream] = [video] if audio is None else [video, audio]
    # One pass over the packets decodes both streams, instead of demuxing the file twice.
    for frame in container.decode(*streams):
        if isinstance(frame, av.VideoFrame):
            frame_count += 1
            pix_fmt = frame.format.name
            if frame.pts is not None:
                first_pts = frame.pts if first_pts is None else min(first_pts, frame.pts)
                end = frame.pts + max(frame.duration, 0)
                end_pts = end if end_pts is None else max(end_pts, end)
        elif isinstance(frame, av.AudioFrame):
            audio_samples += frame.samples

    fps = _rate(video)
    video_duration = _stream_duration(video.duration, video.time_base)
    if video_duration is None and first_pts is not None and end_pts is not None:
        video_duration = float((end_pts - first_pts) * (video.time_base or 0))
    if video_duration is None:
        video_duration = frame_count / fps if fps else 0.0

    audio_duration: float | None = None
    sample_rate: int | None = None
    if audio is not None:
        sample_rate = audio.sample_rate or None
        # The container's duration honours the edit list that hides the AAC encoder's priming
        # and padding; the decoded count is the fallback when the container does not say.
        audio_duration = _stream_duration(audio.duration, audio.time_base)
        if audio_duration is None and sample_rate:
            audio_duration = audio_samples / sample_rate

    return MediaInfo(
        format_names=tuple(container.format.name.split(",")),
        video_codec=video.codec_context.name,
        pix_fmt=pix_fmt or video.codec_context.pix_fmt,
        width=video.codec_context.width,
        height=video.codec_context.height,
        fps=fps,
        frame_count=frame_count,
        video_duration_s=video_duration,
        audio_codec=audio.codec_context.name if audio is not None else None,
        audio_sample_rate=sample_rate,
        audio_samples=audio_samples if audio is not None else None,
        audio_duration_s=audio_duration,
    )


def _rate(video: VideoStream) -> float:
    rate = video.average_rate or video.guessed_rate or video.base_rate
    return float(rate) if rate else 0.0


def _stream_duration(duration: int | None, time_base: Fraction | None) -> float | None:
    if duration is None or duration <= 0 or not time_base:
        return None
    return float(duration * time_base)
