"""Output files: downloadable, described truthfully (``content_type``, ``file_name``,
``file_size``), a valid H.264 + AAC mp4 of the expected duration, and in sync when asked.

Decoding media needs PyAV and scoring sync needs the mock's lip-sync code, neither of which
``contracts`` may import: the caller passes them in as ``OutputFileTools`` (the mock's adapter
is ``mock_server.checking``). With no ``probe``, only the bytes and the description are checked.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from contracts import operations as ops
from contracts.checks.observations import operation_of
from contracts.checks.violations import ContractViolation, OutputFileInvalid
from contracts.transcript import NOT_JSON, Exchange, Transcript

DEFAULT_DURATION_TOLERANCE_S = 0.1
EXPECTED_VIDEO_CODEC = "h264"
EXPECTED_AUDIO_CODEC = "aac"


@dataclass(frozen=True, slots=True)
class MediaFacts:
    """What decoding a file found (``mock_server.checking.probe_media`` makes these)."""

    container: tuple[str, ...]
    """The demuxer's names, e.g. ``("mov", "mp4", "m4a", "3gp", "3g2", "mj2")``."""
    video_codec: str | None
    audio_codec: str | None
    duration_s: float | None
    """The video stream's duration."""


@dataclass(frozen=True, slots=True)
class SyncVerdict:
    passed: bool
    summary: str


@dataclass(frozen=True, slots=True)
class OutputFileTools:
    """How to get and inspect an output file. ``probe`` raises ``ValueError`` on bytes that are
    not decodable media."""

    fetch: Callable[[str], bytes]
    probe: Callable[[bytes], MediaFacts] | None = None
    score_sync: Callable[[bytes], SyncVerdict] | None = None


@dataclass(frozen=True, slots=True)
class OutputFile:
    """A File object an output described, and where it was seen."""

    description: Mapping[str, Any]
    request_id: str | None
    exchange: Exchange | None
    """The answer that carried it; None for an output the client never fetched."""
    field: str = "video"

    @property
    def url(self) -> str:
        return str(self.description.get("url", ""))


def output_files(transcript: Transcript) -> list[OutputFile]:
    """Every File in a successful result fetch or sync run answer, once per URL."""
    found: dict[str, OutputFile] = {}
    for exchange in transcript.exchanges:
        if exchange.status_code != 200:
            continue
        operation = operation_of(exchange)
        if operation in (ops.RESULT, ops.RUN):
            bodies = [exchange.response_json()]
        elif operation is ops.RUN_STREAM:
            bodies = exchange.sse_events()
        else:
            continue
        for body in bodies:
            if body is NOT_JSON or not isinstance(body, dict):
                continue
            for name, value in body.items():
                if isinstance(value, dict) and isinstance(value.get("url"), str):
                    output = OutputFile(value, exchange.request_id, exchange, name)
                    found.setdefault(output.url, output)
    return list(found.values())


def output_files_are_valid(
    transcript: Transcript,
    tools: OutputFileTools,
    *,
    expected_duration_s: float | None = None,
    duration_tolerance_s: float = DEFAULT_DURATION_TOLERANCE_S,
) -> None:
    """Every output file the client was given is what its description says (see module)."""
    for violation in find_invalid_output_files(
        transcript,
        tools,
        expected_duration_s=expected_duration_s,
        duration_tolerance_s=duration_tolerance_s,
    ):
        raise violation


def find_invalid_output_files(
    transcript: Transcript,
    tools: OutputFileTools,
    *,
    expected_duration_s: float | None = None,
    duration_tolerance_s: float = DEFAULT_DURATION_TOLERANCE_S,
    extra: list[OutputFile] | None = None,
) -> Iterator[ContractViolation]:
    """``extra``: files known some other way (an output the client never fetched)."""
    for output in [*output_files(transcript), *(extra or [])]:
        problems = file_problems(
            output.description,
            tools,
            expected_duration_s=expected_duration_s,
            duration_tolerance_s=duration_tolerance_s,
        )
        if problems:
            where = (
                f"the answer of #{output.exchange.seq}"
                if output.exchange is not None
                else "the output the server stored (the client never fetched it)"
            )
            yield OutputFileInvalid(
                f"`{output.field}` in {where}, {output.url}:\n"
                + "\n".join(f"  - {problem}" for problem in problems),
                request_id=output.request_id,
                history=transcript.history(output.request_id),
                exchanges=[output.exchange] if output.exchange is not None else [],
            )


def file_problems(
    description: Mapping[str, Any],
    tools: OutputFileTools,
    *,
    expected_duration_s: float | None = None,
    duration_tolerance_s: float = DEFAULT_DURATION_TOLERANCE_S,
) -> list[str]:
    """What is wrong with one File (empty when nothing is)."""
    url = description.get("url")
    if not isinstance(url, str) or not url:
        return ["it has no url"]
    try:
        data = tools.fetch(url)
    except Exception as exc:  # any way a download fails is the finding, not a crash
        return [f"it could not be downloaded: {type(exc).__name__}: {exc}"]
    problems = _description_problems(description, data)
    if tools.probe is None:
        return problems
    try:
        facts = tools.probe(data)
    except ValueError as exc:
        return [*problems, f"it is not a decodable video: {exc}"]
    problems += _media_problems(facts, expected_duration_s, duration_tolerance_s)
    if tools.score_sync is not None and not problems:
        verdict = tools.score_sync(data)
        if not verdict.passed:
            problems.append("its mouth is not in sync with its audio:\n" + verdict.summary)
    return problems


def _description_problems(description: Mapping[str, Any], data: bytes) -> list[str]:
    problems: list[str] = []
    size = description.get("file_size")
    if size is not None and size != len(data):
        problems.append(f"file_size says {size} bytes, the download has {len(data)}")
    sniffed = sniff_content_type(data)
    declared = description.get("content_type")
    declared_type = declared.split(";")[0].strip().lower() if isinstance(declared, str) else None
    if sniffed is None:
        problems.append(f"the bytes are not an mp4 (they start with {data[:12]!r})")
    elif declared_type is not None and declared_type != sniffed:
        problems.append(f"content_type says {declared!r}, the bytes are {sniffed}")
    name = description.get("file_name")
    if name is not None:
        guessed = mimetypes.guess_type(str(name))[0] if name else None
        expected = declared_type or sniffed
        if not name:
            problems.append("file_name is empty")
        elif expected is not None and guessed != expected:
            problems.append(
                f"file_name {name!r} suggests {guessed or 'an unknown type'}, "
                f"but the file is {expected}"
            )
    return problems


def _media_problems(
    facts: MediaFacts, expected_duration_s: float | None, tolerance_s: float
) -> list[str]:
    problems: list[str] = []
    if "mp4" not in facts.container:
        problems.append(f"the container is {','.join(facts.container)}, not mp4")
    if facts.video_codec != EXPECTED_VIDEO_CODEC:
        problems.append(f"the video codec is {facts.video_codec}, not H.264")
    if facts.audio_codec is None:
        problems.append("there is no audio stream (expected AAC)")
    elif facts.audio_codec != EXPECTED_AUDIO_CODEC:
        problems.append(f"the audio codec is {facts.audio_codec}, not AAC")
    if expected_duration_s is not None and (
        facts.duration_s is None or abs(facts.duration_s - expected_duration_s) > tolerance_s
    ):
        problems.append(
            f"it lasts {facts.duration_s if facts.duration_s is not None else 'unknown'} s, "
            f"expected {expected_duration_s:g} s (± {tolerance_s:g} s)"
        )
    return problems


def sniff_content_type(data: bytes) -> str | None:
    """The MIME type of an ISO media file from its ``ftyp`` box, else None."""
    if len(data) < 12 or data[4:8] != b"ftyp":
        return None
    return "video/quicktime" if data[8:12] == b"qt  " else "video/mp4"
