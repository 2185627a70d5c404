"""A negative-only schemathesis run (malformed inputs only) against the live mock: zero 5xx.

``fal-mock check --no-lifecycle --phases coverage,fuzzing --schemathesis-arg=--mode=negative``
sends schemathesis' invalid cases (wrong types, missing fields, bad headers and query values,
out-of-range numbers, malformed bodies) to every operation and runs every check on the answers,
``not_a_server_error`` (the project's ``..._unless_relayed``) and ``negative_data_rejection``
among them. The mock's journal is the second witness: every exchange it saw is in it, none 5xx.
A broken server that fails on malformed input proves the run can fail.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from mock_server.cli import main
from mock_server.settings import MockSettings
from mock_server.testing import LiveServer

FAST_REALTIME = MockSettings(
    port=0, seed=0, policy="realtime", queue_delay=(0.05, 0.1), inference_time=(0.1, 0.3)
)
NEGATIVE = ("--no-lifecycle", "--phases", "coverage,fuzzing", "--schemathesis-arg=--mode=negative")


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # schemathesis' working files stay in tmp
    monkeypatch.delenv("FAL_KEY", raising=False)
    return tmp_path


def negative_run(base_url: str, report: Path, max_examples: int, *extra: str) -> int:
    args = ["check", "--base-url", base_url, "--seed", "0", *NEGATIVE, *extra]
    return main([*args, "--max-examples", str(max_examples), "--junit", str(report)])


def generated(out: str) -> int:
    match = re.search(r"(\d+) generated", out)
    assert match, out
    return int(match.group(1))


def run_and_judge(
    live: LiveServer, in_tmp: Path, out_of: pytest.CaptureFixture[str], n: int
) -> int:
    report = in_tmp / "negative.xml"
    status = negative_run(live.base_url, report, n)
    out = out_of.readouterr().out
    assert status == 0, out
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and suite.get("errors") == "0"
    entries = live.engine.journal.entries()
    codes = [entry.status_code for entry in entries]
    assert [c for c in codes if c >= 500] == []
    assert sum(1 for c in codes if 400 <= c < 500) > len(codes) // 2  # mostly refusals
    cases = generated(out)
    print(f"negative run: {cases} cases, {len(entries)} exchanges journaled, 0 5xx")
    return cases


def test_a_negative_run_against_the_mock_has_no_5xx(
    in_tmp: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with LiveServer(FAST_REALTIME) as live:
        assert run_and_judge(live, in_tmp, capfd, n=5) > 300


@pytest.mark.slow
def test_a_longer_negative_run_has_no_5xx(in_tmp: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with LiveServer(FAST_REALTIME, journal_limit=100_000) as live:
        assert run_and_judge(live, in_tmp, capfd, n=100) > 1500


class _CrashesOnMalformedSubmit:
    """A broken server: a submit whose body is not a JSON object with string URLs is a 500."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        import json

        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != ("/queue/fal-ai/lipsync")
        ):
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            parsed = json.loads(body)
            fine = isinstance(parsed, dict) and all(
                isinstance(parsed.get(k), str) for k in ("video_url", "audio_url")
            )
        except ValueError:
            fine = False
        if fine:
            replayed = False

            async def replay() -> Any:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
            return
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"Internal Server Error"})


@pytest.fixture
def crashing() -> Iterator[LiveServer]:
    server = LiveServer(FAST_REALTIME)
    server.app = cast(Any, _CrashesOnMalformedSubmit(server.app))
    with server:
        yield server


def test_the_negative_run_fails_on_a_server_that_crashes_on_bad_input(
    crashing: LiveServer, in_tmp: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    report = in_tmp / "negative.xml"
    status = negative_run(crashing.base_url, report, 3, "--key", "fal-key-4e5d6c")
    out = capfd.readouterr().out
    assert status == 1, out
    # The failures are reported with curl commands to replay them: the key is masked there.
    assert "Authorization: [Filtered]" in out
    assert "fal-key-4e5d6c" not in out and "fal-key-4e5d6c" not in report.read_text()
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    failed = {
        case.get("name"): "".join(f"{f.get('message')}\n{f.text}" for f in case.iter("failure"))
        for case in suite.iter("testcase")
        if case.find("failure") is not None
    }
    assert "Server error" in failed.get("POST /queue/fal-ai/lipsync", ""), failed
