"""``fal-mock lipsync VIDEO AUDIO -o OUT``: the reference lip-sync on local files, no server.

Inputs go through the same resolver as the server's (content checks, size and duration limits),
so a file the server would refuse is refused here with the same message. Progress goes to
stderr (a bar on a terminal, a line per tenth otherwise); the summary, including the sync score
of the output, goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

from contracts.schemas import SYNC_MODES

_BAR_WIDTH = 30


def add_parser(commands: Any) -> None:
    lipsync = commands.add_parser(
        "lipsync",
        help="lip-sync a face video to a speech track with the CPU reference engine",
        description="Exit 0 on success, 1 if the output fails its sync score, 2 on bad input.",
    )
    lipsync.add_argument("video", help="face video: a path, file:// or data: URL")
    lipsync.add_argument("audio", help="speech track: a path, file:// or data: URL")
    lipsync.add_argument("-o", "--output", type=Path, required=True, help="mp4 to write")
    lipsync.add_argument(
        "--sync-mode", choices=SYNC_MODES, default="cut_off", help="length mismatch policy"
    )
    lipsync.add_argument(
        "--backend", default="haar", help="mouth tracker: haar (default) or landmarks"
    )
    lipsync.add_argument("--no-score", action="store_true", help="skip the sync score")
    lipsync.add_argument("--json", action="store_true", help="print the summary as JSON")
    lipsync.add_argument(
        "--allow-remote", action="store_true", help="allow http(s) input URLs (off by default)"
    )


def run(args: argparse.Namespace) -> int:
    # Lazy: PyAV and OpenCV load only for this command.
    from mock_server.lipsync.inputs import InputError, resolve_input
    from mock_server.lipsync.pipeline import run_lipsync

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fal-mock-lipsync-") as work:
        try:
            video = resolve_input(
                "video_url", _as_url(args.video), work_dir=Path(work), config=_config(args)
            )
            audio = resolve_input(
                "audio_url", _as_url(args.audio), work_dir=Path(work), config=_config(args)
            )
            bar = _Progress(sys.stderr)
            summary = run_lipsync(
                video.path,
                audio.path,
                args.output,
                sync_mode=args.sync_mode,
                backend=args.backend,
                progress=bar.update,
            )
            bar.close()
        except InputError as error:
            print(f"fal-mock lipsync: {error}", file=sys.stderr)
            return 2
        except ValueError as error:  # a backend that is not installed, a stream that breaks
            print(f"fal-mock lipsync: {error}", file=sys.stderr)
            return 2

    result: dict[str, Any] = summary.to_dict()
    result["seconds"] = round(time.perf_counter() - started, 3)
    passed = True
    if not args.no_score:
        from mock_server.lipsync.syncscore import score_file

        report = score_file(args.output)
        passed = report.passed
        result["sync_score"] = {
            "passed": report.passed,
            "score": round(report.score, 3),
            "best_lag": report.best_lag,
        }
    print(json.dumps(result, indent=2) if args.json else _summary_text(result))
    return 0 if passed else 1


def _config(args: argparse.Namespace) -> Any:
    from mock_server.lipsync.inputs import InputConfig

    # Local files are the point of this command: any path the user names is allowed, and so is
    # any local server (the URLs come from the user's own command line, not from a request).
    return InputConfig(allow_remote=args.allow_remote, allow_private=True, file_root=Path("/"))


def _as_url(argument: str) -> str:
    if "://" in argument or argument.startswith("data:"):
        return argument
    return Path(argument).resolve().as_uri()


def _summary_text(result: dict[str, Any]) -> str:
    lines = [
        f"wrote {result['output']}",
        f"  {result['frames']} frames ({result['face_frames']} with a face), "
        f"{result['width']}x{result['height']} at {result['fps']} fps, "
        f"{result['duration_s']:.2f} s, sync_mode={result['sync_mode']}, "
        f"backend={result['backend']}",
        f"  {result['frames'] / max(result['seconds'], 1e-9):.1f} frames/s "
        f"({result['seconds']:.2f} s in all)",
    ]
    score = result.get("sync_score")
    if score is not None:
        verdict = "passed" if score["passed"] else "FAILED"
        lines.append(f"  sync score {score['score']:.3f} at lag {score['best_lag']}: {verdict}")
    return "\n".join(lines)


class _Progress:
    """A bar on a terminal; otherwise one line per tenth of each pass (for logs and CI)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._last: tuple[str, int] = ("", -1)

    def update(self, stage: str, done: int, total: int) -> None:
        name = {"track": "tracking", "render": "rendering"}.get(stage, stage)
        tenth = done * 10 // max(total, 1)
        if self._tty:
            filled = done * _BAR_WIDTH // max(total, 1)
            bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
            self._stream.write(f"\r{name:>9} [{bar}] {done}/{total}")
            if done == total:
                self._stream.write("\n")
        elif (stage, tenth) != self._last:
            self._last = (stage, tenth)
            self._stream.write(f"{name}: {done}/{total} frames\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()
