"""Reference lip-sync benchmarks: throughput, per-stage cost and peak memory.

``python -m bench.lipsync_bench [--quick] [--json OUT] [--repeat N] [--jobs N] [--media-dir DIR]``

Every figure is set against a baseline measured in the same run on the same clip, because on a
shared 2-core machine absolute numbers drift from run to run while ratios hold:

- throughput: ``run_lipsync`` fps over the PyAV decode -> encode round trip (``transcode``, same
  encoder settings); times are best of N, the two interleaved so drift hits both alike;
- stages: ms/frame for decode, haar tracking, rendering (per face frame) and encoding, best of N;
- memory: peak RSS of a fresh child process per run, which reports its own high-water mark (a
  parent's RUSAGE_CHILDREN keeps the largest child ever seen, which would hide smaller ones),
  10 s against 60 s, over a child that only imports the pipeline. ``cut_off``/``silence``/
  ``remap`` stream, so they should stay flat; ``loop``/``bounce`` may hold up to the frame budget.

The prototype's figures from LIPSYNC.md are printed beside ours as a reference, not a target.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Final

import av
import cv2

from bench.media import FACE_SHARE, MediaCache
from contracts.schemas import SYNC_MODES, SyncMode
from mock_server.lipsync.backends import available_backends, make_tracker
from mock_server.lipsync.frame_source import DEFAULT_MEMORY_BUDGET
from mock_server.lipsync.pipeline import AUDIO_RATE, run_lipsync
from mock_server.lipsync.render import render_mouth
from mock_server.lipsync.video import Mp4Writer, iter_frames, probe_video, transcode

__all__ = ["FULL", "QUICK", "Config", "figure_keys", "main", "run"]

Size = tuple[int, int]
MB: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Config:
    name: str
    sizes: tuple[Size, ...]
    """Throughput and stage sizes."""
    seconds: float
    """Length of the throughput clips."""
    stage_frames: int
    """Frames timed per stage: 100 is one cycle of the example (75 face, 25 without)."""
    memory_size: Size
    memory_seconds: tuple[float, float]
    """Short and long clip for the memory runs."""
    repeats: int
    audio_ratio: float = 1.25
    """Audio this much longer than the video, so loop/bounce/remap really revisit frames."""


FULL: Final = Config(
    "full", ((640, 480), (1280, 720)), 10.0, 100, (640, 480), (10.0, 60.0), repeats=3
)
QUICK: Final = Config("quick", ((160, 120), (320, 240)), 1.0, 10, (160, 120), (0.5, 1.0), 1)

# Streaming modes first, then the two that revisit frames and may hold the frame budget.
MODES: Final[tuple[SyncMode, ...]] = ("cut_off", "silence", "remap", "loop", "bounce")
assert set(MODES) == set(SYNC_MODES), "a new sync mode needs a memory row"

STAGES: Final = ("decode", "track", "render", "encode")
# LIPSYNC.md "Measured" (prototype, 10 s clips, 2 cores under load, best of 3), at 640x480 and
# 1280x720. The prototype rendered and tracked differently: a reference, not a target.
PROTOTYPE: Final = {
    "fps, dlib landmarks": "49.5 / 30.2",
    "fps, mediapipe mesh": "61 / 37",
    "decode": "~0.83 / ~1.7 (1200 / 600 fps)",
    "track": "22-30 (Haar)",
    "render": "2.4 / 4.8",
    "encode": "~3.8 / ~8-11 (260 / 90-120 fps)",
}


def _size_name(size: Size) -> str:
    return f"{size[0]}x{size[1]}"


def _length_name(seconds: float) -> str:
    return f"{seconds:g}s"


def figure_keys(config: Config) -> list[str]:
    """Dotted paths of every figure :func:`run` reports (landmarks, being optional, aside)."""
    keys = []
    for size in map(_size_name, config.sizes):
        keys += [f"throughput.{size}.{k}" for k in ("reference_fps", "round_trip_fps", "ratio")]
        keys += [f"stages.{size}.{stage}_ms" for stage in STAGES]
        keys += [f"stages.{size}.model_fps"]
    short, long = map(_length_name, config.memory_seconds)
    keys += ["memory.baseline.import_mb"]
    keys += [f"memory.baseline.transcode_{length}_mb" for length in (short, long)]
    for mode in MODES:
        keys += [f"memory.{mode}.{short}_mb", f"memory.{mode}.{long}_mb", f"memory.{mode}.ratio"]
    return keys


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _throughput(config: Config, media: MediaCache, scratch: Path) -> dict[str, Any]:
    audio = media.speech(config.seconds)  # as long as the video: cut_off renders every frame
    results: dict[str, Any] = {}
    for size in config.sizes:
        video = media.video(*size, config.seconds)
        frames = probe_video(video).frame_count
        reference, round_trip = [], []
        for _ in range(config.repeats):  # interleaved: slow spells on the machine hit both
            round_trip.append(_timed(partial(transcode, video, scratch / "round_trip.mp4")))
            reference.append(_timed(partial(run_lipsync, video, audio, scratch / "ref.mp4")))
        # Best of N: noise on a shared machine only ever adds time.
        reference_fps, round_trip_fps = frames / min(reference), frames / min(round_trip)
        results[_size_name(size)] = {
            "frames": frames,
            "reference_fps": reference_fps,
            "round_trip_fps": round_trip_fps,
            "ratio": reference_fps / round_trip_fps,
        }
    return results


def _stage_pass(video: Path, frames: int, scratch: Path) -> dict[str, float]:
    """One timed pass per stage over the first ``frames`` frames; seconds per stage."""
    cv2.setNumThreads(1)  # as run_lipsync does
    spent = dict.fromkeys(STAGES, 0.0)
    tracker = make_tracker("haar")
    started = time.perf_counter()
    # The decoder is timed from the end of one update to the frame's arrival, then dropped
    # (and closed) with the islice when the loop ends.
    for frame in itertools.islice(iter_frames(video), frames):
        middle = time.perf_counter()
        tracker.update(frame)
        spent["decode"] += middle - started
        started = time.perf_counter()
        spent["track"] += started - middle
    track = tracker.finish()
    info = probe_video(video)
    rendered = 0
    writer = Mp4Writer(scratch / "stages.mp4", info.width, info.height, info.fps, AUDIO_RATE)
    try:
        # zip draws from the track first, so it stops without decoding a frame too many.
        for mouth, frame in zip(track, iter_frames(video), strict=False):
            started = time.perf_counter()
            out = render_mouth(frame, mouth, 1.0)
            middle = time.perf_counter()
            writer.write_frame(out)
            spent["render"] += middle - started
            spent["encode"] += time.perf_counter() - middle
            rendered += mouth is not None
    except BaseException:
        writer.abort()
        raise
    started = time.perf_counter()
    writer.close()  # the encoder's lookahead flushes here: part of the encode cost
    spent["encode"] += time.perf_counter() - started
    spent["render"] *= frames / max(rendered, 1)  # report per face frame, as LIPSYNC.md does
    return spent


def _stages(config: Config, media: MediaCache, scratch: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for size in config.sizes:
        video = media.video(*size, config.seconds)
        frames = min(config.stage_frames, probe_video(video).frame_count)
        runs = [_stage_pass(video, frames, scratch) for _ in range(config.repeats)]
        ms = {f"{stage}_ms": min(r[stage] for r in runs) / frames * 1e3 for stage in STAGES}
        # The video stages as run_lipsync spends them: two decoding passes, renders on face
        # frames only. Audio (decoding, analysis, AAC) is left out, so this runs a little fast.
        model_ms = (
            2 * ms["decode_ms"] + ms["track_ms"] + FACE_SHARE * ms["render_ms"] + ms["encode_ms"]
        )
        results[_size_name(size)] = {"frames": frames, **ms, "model_fps": 1e3 / model_ms}
    return results


# Run in a fresh interpreter, so its peak RSS is this task's alone. Importing the pipeline
# first is deliberate: the "import" task is the floor every other task stands on. On Linux the
# child reads VmHWM, not ru_maxrss: ru_maxrss survives execve, so every child would report at
# least this (large) benchmark process's size.
_CHILD: Final = """
import json, resource, sys
from pathlib import Path
from mock_server.lipsync import pipeline, video
task, *args = sys.argv[1:]
if task == "transcode":
    video.transcode(Path(args[0]), Path(args[1]))
elif task == "lipsync":
    pipeline.run_lipsync(Path(args[0]), Path(args[1]), Path(args[2]), sync_mode=args[3])
try:  # Linux: this process image's own high-water mark
    status = Path("/proc/self/status").read_text()
    peak = int(status.split("VmHWM:")[1].split()[0]) * 1024
except (OSError, IndexError):  # elsewhere ru_maxrss: bytes on macOS, KiB on the BSDs
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak *= 1 if sys.platform == "darwin" else 1024
print(json.dumps({"peak_rss_bytes": peak}))
"""


def _peak_rss_mb(args: Sequence[str]) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory child {args[:1]} failed:\n{done.stderr}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_bytes"]) / MB


def _memory(config: Config, media: MediaCache, scratch: Path, jobs: int) -> dict[str, Any]:
    lengths = {_length_name(s): s for s in config.memory_seconds}
    tasks: dict[tuple[str, str], list[str]] = {("baseline", "import_mb"): ["import"]}
    for name, seconds in lengths.items():
        video = str(media.video(*config.memory_size, seconds))
        audio = str(media.speech(seconds * config.audio_ratio))
        out = scratch / f"memory_{name}"
        tasks["baseline", f"transcode_{name}_mb"] = ["transcode", video, f"{out}_transcode.mp4"]
        for mode in MODES:
            tasks[mode, f"{name}_mb"] = ["lipsync", video, audio, f"{out}_{mode}.mp4", mode]
    # Peak RSS does not depend on the CPU share, so the children may run side by side.
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        peaks = dict(zip(tasks, pool.map(_peak_rss_mb, tasks.values()), strict=True))
    results: dict[str, Any] = {
        "size": _size_name(config.memory_size),
        "audio_ratio": config.audio_ratio,
        "budget_mb": DEFAULT_MEMORY_BUDGET / MB,
    }
    for (group, key), peak in peaks.items():
        results.setdefault(group, {})[key] = peak
    short, long = lengths
    for mode in MODES:
        results[mode]["ratio"] = results[mode][f"{long}_mb"] / results[mode][f"{short}_mb"]
    return results


def _landmarks(config: Config, media: MediaCache, scratch: Path) -> dict[str, Any]:
    if "landmarks" not in available_backends():
        return {"skipped": 'the "landmarks" extra (dlib-bin) is not installed'}
    audio = media.speech(config.seconds)
    results: dict[str, Any] = {}
    for size in config.sizes:
        video = media.video(*size, config.seconds)
        job = partial(run_lipsync, video, audio, scratch / "lm.mp4", backend="landmarks")
        seconds = min(_timed(job) for _ in range(config.repeats))
        results[_size_name(size)] = {"fps": probe_video(video).frame_count / seconds}
    return results


def run(config: Config, media_dir: Path, jobs: int = 2) -> dict[str, Any]:
    """Every figure, as nested dicts (see :func:`figure_keys`)."""
    media = MediaCache(media_dir)
    with tempfile.TemporaryDirectory(prefix="lipsync-bench-") as folder:
        scratch = Path(folder)
        results: dict[str, Any] = {
            "meta": {
                "config": config.name,
                "repeats": config.repeats,
                "seconds": config.seconds,
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "av": av.__version__,
                "opencv": cv2.__version__,
            },
            "throughput": _throughput(config, media, scratch),
            "stages": _stages(config, media, scratch),
            "memory": _memory(config, media, scratch, jobs),
            "landmarks": _landmarks(config, media, scratch),
        }
    return results


def _rows(results: dict[str, Any], config: Config) -> Iterator[str]:
    sizes = [_size_name(size) for size in config.sizes]
    meta = results["meta"]
    yield (
        f"lip-sync benchmarks: best of {meta['repeats']}, {meta['cpus']} CPUs, "
        f"Python {meta['python']}, av {meta['av']}, OpenCV {meta['opencv']}"
    )
    head = "".join(f"{s:>12}" for s in sizes)
    proto = "prototype 640x480 / 720p"
    yield f"\nThroughput, {config.seconds:g} s clips at 25 fps  {head}   {proto}"
    through = results["throughput"]
    for label, key, fmt in (
        ("reference lip-sync (haar), fps", "reference_fps", "{:12.1f}"),
        ("round trip decode->encode, fps", "round_trip_fps", "{:12.1f}"),
        ("ratio reference / round trip", "ratio", "{:12.3f}"),
    ):
        yield f"  {label:<36}" + "".join(fmt.format(through[s][key]) for s in sizes)
    for label in ("fps, dlib landmarks", "fps, mediapipe mesh"):
        yield f"  {'prototype ' + label:<36}" + " " * 12 * len(sizes) + f"   {PROTOTYPE[label]}"
    landmarks = results["landmarks"]
    if "skipped" in landmarks:
        yield f"  {'landmarks backend, fps':<36}  skipped: {landmarks['skipped']}"
    else:
        yield f"  {'landmarks backend, fps':<36}" + "".join(
            f"{landmarks[s]['fps']:12.1f}" for s in sizes
        )

    stages = results["stages"]
    frames = stages[sizes[0]]["frames"]
    yield f"\nStages, ms/frame (first {frames} frames)  {head}   {proto}"
    for stage, label in zip(
        STAGES,
        ("decode (iter_frames)", "track (haar update)", "render (per face frame)", "encode"),
        strict=True,
    ):
        values = "".join(f"{stages[s][f'{stage}_ms']:12.2f}" for s in sizes)
        yield f"  {label:<36}{values}   {PROTOTYPE[stage]}"
    yield f"  {'video stages alone would give, fps':<36}" + "".join(
        f"{stages[s]['model_fps']:12.1f}" for s in sizes
    )

    memory = results["memory"]
    short, long = map(_length_name, config.memory_seconds)
    yield (
        f"\nPeak RSS, MB ({memory['size']}, audio {memory['audio_ratio']:g}x the video; "
        f"loop/bounce frame budget {memory['budget_mb']:g} MB)"
    )
    yield f"  {'':<36}{short:>10}{long:>10}{long + '/' + short:>12}{long + ' - import':>14}"
    floor = memory["baseline"]["import_mb"]
    yield f"  {'baseline: import pipeline':<36}{floor:10.1f}"
    base = memory["baseline"]
    t_short, t_long = base[f"transcode_{short}_mb"], base[f"transcode_{long}_mb"]
    yield f"  {'baseline: transcode':<36}{t_short:10.1f}{t_long:10.1f}{t_long / t_short:12.3f}"
    for mode in MODES:
        row = memory[mode]
        low, high = row[f"{short}_mb"], row[f"{long}_mb"]
        yield f"  {mode:<36}{low:10.1f}{high:10.1f}{row['ratio']:12.3f}{high - floor:14.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lipsync_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny clips: a smoke run")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures here")
    parser.add_argument("--repeat", type=int, metavar="N", help="best of N (default 3; quick 1)")
    parser.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="memory children at once"
    )
    parser.add_argument(
        "--media-dir", type=Path, help="keep generated clips here and reuse them across runs"
    )
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    if args.repeat is not None:
        config = replace(config, repeats=max(args.repeat, 1))
    with contextlib.ExitStack() as stack:
        media_dir = args.media_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="lipsync-media-"))
        )
        media_dir.mkdir(parents=True, exist_ok=True)
        results = run(config, media_dir, jobs=max(args.jobs, 1))
    print("\n".join(_rows(results, config)), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
