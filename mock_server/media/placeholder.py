"""The placeholder engine's output: a small, deterministic mp4 made without reading any input.

Clients that only care about the protocol still get a real, playable file (H.264 + AAC in a
fast-start mp4), so their download and probing code runs for real. The bytes depend only on the
seed and on the FFmpeg/x264 build bundled in the PyAV wheel (the version range is pinned in
pyproject). Everything else that could vary is fixed:

- frames and samples are generated directly in the encoders' own formats (planar YUV 4:2:0,
  planar float), so no pixel or sample-format conversion (whose SIMD paths can depend on the
  CPU) touches them;
- x264 runs single-threaded with fixed parameters (thread scheduling changes x264's decisions);
- ``+bitexact`` on the muxer and the codecs keeps the "Lavf..." version tag out of the file; the
  mp4 creation time is left at its default of zero.

x264's own SEI (its version and options) stays in the first frame: it is constant for one wheel,
exactly like the encoded pictures. Byte identity is checked across processes on one machine; x264
is bit-exact across CPUs by design, while FFmpeg's float AAC encoder is the part most likely to
differ on another CPU family.
"""

from __future__ import annotations

import functools
import hashlib
import io
from fractions import Fraction
from typing import Final

import av
import numpy as np
from av.codec.context import Flags

WIDTH: Final = 160
HEIGHT: Final = 120
FPS: Final = 25
FRAMES: Final = 25
DURATION_S: Final = FRAMES / FPS
SAMPLE_RATE: Final = 48_000
CONTENT_TYPE: Final = "video/mp4"

_AAC_FRAME: Final = 1024  # samples per AAC frame: feeding whole frames avoids re-chunking
_BARS: Final = 4

_X264_OPTIONS: Final = {
    "preset": "veryfast",
    "crf": "30",
    # No B-frames keeps decode order = display order (no edit-list shift for the video).
    # Do not add "scenecut=0": with this x264 build it makes the output vary from run to run.
    # no-asm: x264's hand-written SIMD (AVX-512 here) was seen to vary the bytes of natural
    # images between processes; for 25 tiny frames the plain-C path costs nothing.
    "x264-params": "keyint=25:bframes=0:threads=1:lookahead-threads=1:sliced-threads=0:no-asm=1",
}


def _rng(seed: int) -> np.random.Generator:
    # Hashing accepts any int (numpy refuses negative seeds) and spreads nearby seeds apart.
    digest = hashlib.sha256(f"fal-lipsync-mock/placeholder/{seed}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest, "big"))


def _video_planes(rng: np.random.Generator) -> list[np.ndarray]:
    """Vertical colour bars scrolling sideways; colours, width and speed come from the seed.

    Each frame is a (HEIGHT * 3 // 2, WIDTH) uint8 array: PyAV's layout for ``yuv420p``.
    """
    luma = rng.integers(40, 216, size=_BARS, dtype=np.uint8)
    chroma = rng.integers(64, 192, size=(_BARS, 2), dtype=np.uint8)
    bar_width = int(rng.integers(16, 48))
    speed = int(rng.integers(2, 7)) * (1 if rng.integers(2) else -1)
    frames = []
    for index in range(FRAMES):
        bar_y = ((np.arange(WIDTH) + index * speed) // bar_width) % _BARS
        bar_c = ((np.arange(WIDTH // 2) * 2 + index * speed) // bar_width) % _BARS
        y = np.broadcast_to(luma[bar_y], (HEIGHT, WIDTH))
        # In PyAV's yuv420p ndarray, the U plane then the V plane follow Y, each reshaped to
        # HEIGHT // 4 rows of full WIDTH: two chroma rows per row.
        u = np.broadcast_to(np.tile(chroma[bar_c, 0], 2), (HEIGHT // 4, WIDTH))
        v = np.broadcast_to(np.tile(chroma[bar_c, 1], 2), (HEIGHT // 4, WIDTH))
        frames.append(np.ascontiguousarray(np.concatenate([y, u, v])))
    return frames


def _tone(rng: np.random.Generator) -> np.ndarray:
    """A quiet sine (about -26 dBFS) at a seeded pitch, with 10 ms fades so it does not click."""
    frequency = float(rng.uniform(220.0, 880.0))
    samples = SAMPLE_RATE * FRAMES // FPS
    t = np.arange(samples, dtype=np.float64) / SAMPLE_RATE
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.010)
    return (0.05 * ramp * np.sin(2.0 * np.pi * frequency * t)).astype(np.float32)


@functools.lru_cache(maxsize=8)
def make_placeholder_mp4(seed: int) -> bytes:
    """Return the placeholder mp4 for ``seed``: same seed, same bytes (in any process).

    H.264 ``yuv420p`` ``WIDTH``x``HEIGHT`` at ``FPS`` fps, exactly ``FRAMES`` frames, plus a mono
    AAC tone of the same duration, with the index (moov) before the media data (fast start).
    Cached, because every completed job asks for it.
    """
    rng = _rng(seed)
    planes = _video_planes(rng)
    tone = _tone(rng)

    buffer = io.BytesIO()

    def reopen_for_faststart(url: str, flags: int, options: dict[str, str]) -> io.BytesIO:
        # +faststart rewrites the file by reading it back through a second handle on the same
        # output; an in-memory output has no name to reopen, so hand it a copy to read from.
        return io.BytesIO(buffer.getvalue())

    with av.open(
        buffer,
        "w",
        format="mp4",
        container_options={"movflags": "+faststart", "fflags": "+bitexact"},
        io_open=reopen_for_faststart,
    ) as container:
        video = container.add_stream("libx264", rate=FPS, options=dict(_X264_OPTIONS))
        video.width = WIDTH
        video.height = HEIGHT
        video.pix_fmt = "yuv420p"
        video.codec_context.thread_count = 1
        video.codec_context.thread_type = "SLICE"
        video.codec_context.flags |= Flags.bitexact

        audio = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        audio.bit_rate = 64_000
        audio.codec_context.flags |= Flags.bitexact

        video_time_base = Fraction(1, FPS)
        for index, plane in enumerate(planes):
            frame = av.VideoFrame.from_ndarray(plane, format="yuv420p")
            frame.pts = index
            frame.time_base = video_time_base
            container.mux(video.encode(frame))
        container.mux(video.encode(None))

        audio_time_base = Fraction(1, SAMPLE_RATE)
        for start in range(0, len(tone), _AAC_FRAME):
            chunk = tone[start : start + _AAC_FRAME].reshape(1, -1)
            samples = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            samples.sample_rate = SAMPLE_RATE
            samples.pts = start
            samples.time_base = audio_time_base
            container.mux(audio.encode(samples))
        container.mux(audio.encode(None))

    return buffer.getvalue()
