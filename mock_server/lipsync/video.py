"""Video in and out for the reference lip-sync: probe, decode to constant-rate BGR, encode mp4.

Decoding accepts anything FFmpeg reads (found from the content, never from the file name) and
hands out upright BGR24 frames (OpenCV's order) on a constant frame-rate grid, one at a time, so
memory does not grow with the clip. Encoding writes H.264 ``yuv420p`` + AAC in a fast-start mp4
whose bytes depend only on the input and on the FFmpeg/x264 build bundled in the PyAV wheel:

- x264 runs single-threaded with fixed parameters (thread scheduling changes its decisions);
- x264's SIMD is capped at AVX2 (``asm=``): with AVX-512 enabled, natural images were once seen
  to encode to different bytes in different processes on the same machine. ``"none"`` (plain
  C, ``no-asm``) is the fallback: byte-identical too, about 3.5x slower at 640x480. Note that
  x264 takes a misspelt ``asm=`` list as "no SIMD" without an error (a test guards the list);
- ``+bitexact`` on the muxer and codecs keeps version strings out; creation time stays zero.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Final, Literal

import av
import numpy as np
from av.codec.context import Flags
from av.container import InputContainer, OutputContainer
from numpy.typing import NDArray

from mock_server.lipsync.audio import decode_audio

__all__ = [
    "Mp4Writer",
    "VideoInfo",
    "X264Simd",
    "iter_frames",
    "probe_video",
    "transcode",
    "upright",
]

MediaSource = str | Path | BinaryIO
X264Simd = Literal["avx2", "none"]

MAX_SECONDS: Final = 600.0
"""Longest input accepted by default: ten minutes is far beyond a lip-sync request."""
X264_PRESET: Final = "veryfast"
X264_CRF: Final = "23"
AUDIO_BIT_RATE: Final = 128_000
_AAC_FRAME: Final = 1024  # samples per AAC frame: feeding whole frames avoids re-chunking
_X264_COMMON: Final = "bframes=0:threads=1:lookahead-threads=1:sliced-threads=0"
"""No B-frames keeps decode order = display order; one thread everywhere keeps bytes fixed."""
_X264_SIMD_PARAMS: Final[dict[X264Simd, str]] = {
    # x264's own CPU names (common/cpu.c); each name includes the flags it implies.
    "avx2": "asm=MMX2,SSE2Fast,SSSE3,SSE4.2,AVX,FMA3,BMI2,AVX2",
    "none": "no-asm=1",
}


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What :func:`probe_video` found. Sizes are as displayed, after the rotation is applied."""

    width: int
    height: int
    fps: Fraction
    """The stream's average (else guessed) frame rate: the grid :func:`iter_frames` uses."""
    frame_count: int
    """Estimated from the container (or duration x fps); :func:`iter_frames` gives the truth."""
    duration_s: float
    rotation: int
    """Display rotation in degrees, counter-clockwise, one of 0, 90, 180, 270."""
    has_audio: bool


def _name(source: MediaSource) -> str:
    return str(source) if isinstance(source, str | Path) else "<file object>"


def _open(source: MediaSource) -> InputContainer:
    if not isinstance(source, str | Path) and source.seekable():
        source.seek(0)  # every pass (probe, audio, frames) reads a file object from its start
    try:
        container = av.open(str(source) if isinstance(source, Path) else source, "r")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise  # about the path, not the content: the caller's OSError, not "not media"
    except av.FFmpegError as error:
        raise ValueError(f"{_name(source)}: not decodable media: {error}") from error
    assert isinstance(container, InputContainer)
    if not container.streams.video:
        kinds = ", ".join(stream.type for stream in container.streams) or "none"
        container.close()
        raise ValueError(f"{_name(source)}: no video stream (streams: {kinds})")
    return container


def _quarter_turns(rotation: float) -> int:
    """Counter-clockwise quarter turns for a display-matrix angle (FFmpeg: CCW degrees)."""
    return round(rotation / 90.0) % 4


def upright(bgr: NDArray[np.uint8], rotation: float) -> NDArray[np.uint8]:
    """Apply a display rotation (CCW degrees, as ``VideoFrame.rotation``) to an image."""
    turns = _quarter_turns(rotation)
    # np.rot90 turns counter-clockwise, exactly the display matrix's sense.
    return np.ascontiguousarray(np.rot90(bgr, turns)) if turns else bgr


def probe_video(source: MediaSource, max_seconds: float = MAX_SECONDS) -> VideoInfo:
    """Describe the first video stream of ``source`` (a path or a seekable binary file).

    Decodes at most two frames. Raises ``ValueError`` for non-media, no video stream, a still
    image (one frame), no decodable frame, an unknown frame rate or a duration over
    ``max_seconds``.
    """
    name = _name(source)
    with _open(source) as container:
        stream = container.streams.video[0]
        try:
            decoded = list(itertools.islice(container.decode(stream), 2))
        except av.FFmpegError as error:
            raise ValueError(f"{name}: the video does not decode: {error}") from error
        if not decoded:
            raise ValueError(f"{name}: the video stream has no frames")
        if len(decoded) == 1:
            raise ValueError(f"{name}: a single still image ({container.format.name}), not a video")
        fps = stream.average_rate or stream.guessed_rate
        if not fps or fps <= 0:
            raise ValueError(f"{name}: the video has no usable frame rate")
        fps = Fraction(fps)
        if stream.duration is not None and stream.time_base is not None:
            duration_s = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration_s = container.duration / 1_000_000
        else:
            duration_s = (stream.frames or 0) / float(fps)
        if not duration_s > 0:
            raise ValueError(f"{name}: the video has zero duration")
        if duration_s > max_seconds:
            raise ValueError(
                f"{name}: {duration_s:.1f} s is longer than the {max_seconds:g} s limit"
            )
        rotation = _quarter_turns(decoded[0].rotation) * 90
        width, height = decoded[0].width, decoded[0].height
        if rotation in (90, 270):
            width, height = height, width
        return VideoInfo(
            width=width,
            height=height,
            fps=fps,
            frame_count=stream.frames or max(round(duration_s * fps), 1),
            duration_s=duration_s,
            rotation=rotation,
            has_audio=bool(container.streams.audio),
        )


def iter_frames(source: MediaSource, fps: Fraction | None = None) -> Iterator[NDArray[np.uint8]]:
    """Yield upright BGR24 frames of the first video stream on a constant ``fps`` grid.

    Each decoded frame is placed at grid slot ``round(t * fps)`` (``t`` from its pts, the first
    frame at 0); output frame ``i`` is the last frame placed at a slot ``<= i``. So gaps repeat
    the previous frame, crowded frames are dropped, and millisecond-rounded timestamps of a
    constant-rate clip land on their own slots. ``fps`` defaults to the stream's average rate.
    One frame is held at a time. Decoding errors raise ``ValueError``, also mid-stream.
    """
    name = _name(source)
    with _open(source) as container:
        stream = container.streams.video[0]
        # No frame threading: with it, FFmpeg drops a mid-stream decoding error and the clip
        # silently ends early (seen on a truncated mp4); slice threads report errors.
        stream.thread_type = "SLICE"
        rate = Fraction(fps or stream.average_rate or stream.guessed_rate or 0)
        if rate <= 0:
            raise ValueError(f"{name}: the video has no usable frame rate")
        time_base = stream.time_base or Fraction(1, 1)
        next_slot = 0
        decoded = 0
        first_pts: int | None = None
        held: av.VideoFrame | None = None
        end_time = Fraction(0)

        def emit_until(slot: int) -> Iterator[NDArray[np.uint8]]:
            nonlocal next_slot
            image: NDArray[np.uint8] | None = None
            while held is not None and next_slot < slot:
                # Repeats are copies: a caller that draws on one frame must not change the next.
                image = _to_bgr(held) if image is None else image.copy()
                yield image
                next_slot += 1

        try:
            for frame in container.decode(stream):
                decoded += 1
                if frame.pts is None:  # no timestamps: trust the nominal rate
                    start = Fraction(decoded - 1) / rate
                else:
                    first_pts = frame.pts if first_pts is None else first_pts
                    start = (frame.pts - first_pts) * time_base
                slot = _round_half_up(start * rate)
                yield from emit_until(slot)
                held = frame
                length = frame.duration * time_base if frame.duration else 1 / rate
                end_time = max(end_time, start + length)
        except av.FFmpegError as error:
            raise ValueError(f"{name}: decoding failed after {decoded} frames: {error}") from error
        if held is None:
            raise ValueError(f"{name}: the video stream has no frames")
        yield from emit_until(max(_round_half_up(end_time * rate), next_slot + 1))


def _round_half_up(value: Fraction) -> int:
    return int((value + Fraction(1, 2)) // 1)


def _to_bgr(frame: av.VideoFrame) -> NDArray[np.uint8]:
    image = np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)
    return upright(image, frame.rotation)


class Mp4Writer:
    """Write an H.264 + AAC fast-start mp4, atomically: the file appears only on success.

    Frames must be ``(height, width, 3)`` uint8 BGR. H.264 in 4:2:0 needs even sizes, so an odd
    ``width``/``height`` is cropped by one pixel on the right/bottom (frames too). Audio is mono
    float32 at ``sample_rate``, in one piece or in chunks; at close it is trimmed or padded with
    silence to the video's length (frames / fps), so the two durations match.
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: Fraction,
        sample_rate: int,
        *,
        x264_simd: X264Simd = "avx2",
    ) -> None:
        if width < 2 or height < 2:
            raise ValueError(f"frame size {width}x{height} is too small to encode")
        if fps <= 0 or sample_rate <= 0:
            raise ValueError(f"fps and sample rate must be positive, got {fps}, {sample_rate}")
        self.path = Path(path)
        self.width, self.height = width - width % 2, height - height % 2
        self.fps = Fraction(fps)
        self.sample_rate = sample_rate
        self.frames_written = 0
        self._audio_sent = 0  # samples handed to the AAC encoder
        self._pending_audio: list[NDArray[np.float32]] = []
        # Same directory, so os.replace is an atomic rename on one file system.
        handle, temp_name = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".part"
        )
        os.close(handle)
        self._temp_path = Path(temp_name)
        try:
            self._container = self._open_container(x264_simd)
        except BaseException:
            self._temp_path.unlink(missing_ok=True)
            raise

    def _open_container(self, x264_simd: X264Simd) -> OutputContainer:
        container = av.open(
            str(self._temp_path),
            "w",
            format="mp4",  # the temp name has no .mp4 suffix to guess from
            container_options={"movflags": "+faststart", "fflags": "+bitexact"},
        )
        assert isinstance(container, OutputContainer)
        params = f"{_X264_COMMON}:{_X264_SIMD_PARAMS[x264_simd]}"
        options = {"preset": X264_PRESET, "crf": X264_CRF, "x264-params": params}
        self._video = container.add_stream("libx264", rate=self.fps, options=options)
        self._video.width, self._video.height = self.width, self.height
        self._video.pix_fmt = "yuv420p"
        self._video.codec_context.thread_count = 1
        self._video.codec_context.thread_type = "SLICE"
        self._video.codec_context.flags |= Flags.bitexact
        self._audio = container.add_stream("aac", rate=self.sample_rate, layout="mono")
        self._audio.bit_rate = AUDIO_BIT_RATE
        self._audio.codec_context.flags |= Flags.bitexact
        return container

    def write_frame(self, bgr: NDArray[np.uint8]) -> None:
        image = bgr[: self.height, : self.width]
        if image.shape != (self.height, self.width, 3) or image.dtype != np.uint8:
            raise ValueError(
                f"expected a ({self.height}, {self.width}, 3) uint8 frame, "
                f"got {bgr.shape} {bgr.dtype}"
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = self.frames_written
        frame.time_base = 1 / self.fps
        self._container.mux(self._video.encode(frame.reformat(format="yuv420p")))
        self.frames_written += 1
        self._send_audio(self._samples_for_video())

    def write_audio(self, samples: NDArray[np.float32]) -> None:
        """Queue mono float32 samples; they are encoded as far as the video has got."""
        if samples.ndim != 1:
            raise ValueError(f"expected mono samples (a 1-D array), got shape {samples.shape}")
        self._pending_audio.append(samples.astype(np.float32, copy=False))
        self._send_audio(self._samples_for_video())

    def _samples_for_video(self) -> int:
        return _round_half_up(self.frames_written / self.fps * self.sample_rate)

    def _send_audio(self, up_to: int, final: bool = False) -> None:
        """Encode whole AAC frames of the queued audio up to sample ``up_to`` (all at close)."""
        queued = np.concatenate(self._pending_audio) if self._pending_audio else np.zeros(0)
        wanted = up_to - self._audio_sent
        if final and queued.size < wanted:  # audio shorter than the video: pad with silence
            queued = np.concatenate([queued, np.zeros(wanted - queued.size)])
        usable = min(queued.size, wanted)
        if not final:
            usable -= usable % _AAC_FRAME
        for start in range(0, usable, _AAC_FRAME):
            chunk = queued[start : min(start + _AAC_FRAME, usable)].astype(np.float32)
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp", layout="mono")
            frame.sample_rate = self.sample_rate
            frame.pts = self._audio_sent
            frame.time_base = Fraction(1, self.sample_rate)
            self._container.mux(self._audio.encode(frame))
            self._audio_sent += chunk.size
        self._pending_audio = [] if final else [queued[usable:].astype(np.float32)]

    def close(self) -> None:
        """Flush both encoders and move the finished file into place."""
        try:
            if self.frames_written == 0:
                raise ValueError(f"{self.path}: no video frames were written")
            self._container.mux(self._video.encode(None))
            self._send_audio(self._samples_for_video(), final=True)
            self._container.mux(self._audio.encode(None))
            self._container.close()
            os.replace(self._temp_path, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop the output: close quietly and delete the partial file."""
        with contextlib.suppress(Exception):
            self._container.close()
        self._temp_path.unlink(missing_ok=True)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def transcode(
    source: MediaSource, destination: str | Path, *, x264_simd: X264Simd = "avx2"
) -> VideoInfo:
    """Decode ``source`` and re-encode it with :class:`Mp4Writer` (the round-trip baseline).

    The audio (or silence, when there is none) is resampled to mono 44.1 kHz. Returns the probe.
    """
    info = probe_video(source)
    sample_rate = 44_100
    with Mp4Writer(
        destination, info.width, info.height, info.fps, sample_rate, x264_simd=x264_simd
    ) as writer:
        if info.has_audio:
            if not isinstance(source, str | Path):
                source.seek(0)
            writer.write_audio(decode_audio(source, sample_rate))
        for frame in iter_frames(source, info.fps):
            writer.write_frame(frame)
    return info
