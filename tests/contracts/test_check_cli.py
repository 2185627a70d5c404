"""``fal-mock check`` against live servers: clean on the mock, failing by name on broken ones.

The run's schemathesis half is a subprocess hitting a LiveServer in this process; budgets are
small (a few cases per operation) so each run takes seconds.
"""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any, cast

import pytest

from contracts.openapi import SPEC_PATH
from mock_server.cli import main
from mock_server.cli_check import for_schemathesis
from mock_server.settings import MockSettings
from mock_server.testing import LiveServer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Realtime, as `fal-mock serve` runs by default, with short simulated durations.
FAST_REALTIME = MockSettings(
    port=0, seed=0, policy="realtime", queue_delay=(0.05, 0.1), inference_time=(0.1, 0.3)
)


def _suites(report: Path) -> dict[str, ET.Element]:
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    return {suite.get("name", ""): suite for suite in root.iter("testsuite")}


def _failed_cases(suite: ET.Element) -> dict[str, str]:
    return {
        case.get("name", ""): "\n".join(
            (f.get("message") or "") + "\n" + (f.text or "") for f in case.iter("failure")
        )
        for case in suite.iter("testcase")
        if case.find("failure") is not None
    }


def _check(base_url: str, *extra: str) -> int:
    return main(["check", "--base-url", base_url, "--seed", "0", *extra])


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Schemathesis keeps its example database in the working directory: keep it in tmp."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FAL_KEY", raising=False)
    return tmp_path


def test_the_mock_passes_clean(in_tmp: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Every phase and every check, on the mock as `fal-mock serve` runs it (realtime)."""
    report = in_tmp / "reports" / "contract.xml"
    with LiveServer(FAST_REALTIME) as live:
        status = _check(live.base_url, "--max-examples", "3", "--junit", str(report))
    out = capfd.readouterr().out
    assert status == 0, out
    suites = _suites(report)
    assert set(suites) == {"schemathesis", "fal-mock lifecycle"}
    for name, suite in suites.items():
        assert suite.get("failures") == "0" and suite.get("errors") == "0", (name, out)
        assert int(suite.get("tests", "0")) == len(suite.findall("testcase")) > 0
    operations = {case.get("name") for case in suites["schemathesis"].iter("testcase")}
    assert {"POST /queue/fal-ai/lipsync", "Stateful tests"} <= operations
    lifecycle = [case.get("name") for case in suites["fal-mock lifecycle"].iter("testcase")]
    assert {"status_stream_conforms", "cancel_answers_by_state"} <= set(lifecycle)
    assert {"status_never_goes_backwards", "output_files_are_valid"} <= set(lifecycle)
    assert not suites["fal-mock lifecycle"].findall(".//skipped")
    assert " 0 failed, 0 skipped; schemathesis clean" in out


@pytest.mark.parametrize("policy", ["virtual", "polls:2", "immediate"])
def test_the_lifecycle_passes_on_every_policy(
    policy: str, in_tmp: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with LiveServer(FAST_REALTIME, policy=policy) as live:
        status = _check(live.base_url, "--no-schemathesis")
    out = capfd.readouterr().out
    assert status == 0, out
    assert f"policy {policy}" in out and " 0 failed, 0 skipped; schemathesis skipped" in out


def test_the_stateful_phase_streams_on_a_virtual_clock(
    in_tmp: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A virtual-policy mock moves only when its clock does: the run advances it, so the status
    streams schemathesis opens through the links close."""
    with LiveServer(FAST_REALTIME, policy="virtual") as live:
        status = _check(live.base_url, "--no-lifecycle", "--phases", "stateful")
    out = capfd.readouterr().out
    assert status == 0, out
    assert "its virtual clock is advanced" in out and "schemathesis clean" in out


class _FailingStatus:
    """A broken server: every status poll answers 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/status"):
            body = b'{"detail": "boom"}'
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


class _FailedStatus:
    """A broken server: a completed request reports ``"status": "FAILED"`` (PROTOCOL.md §4:
    there is no such status; Python raises, JS polls forever)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/status"):
            await self.app(scope, receive, send)
            return

        async def rewrite(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (k, v) for k, v in message["headers"] if k.lower() != b"content-length"
                ]
            elif message["type"] == "http.response.body":
                message["body"] = message["body"].replace(b'"COMPLETED"', b'"FAILED"')
            await send(message)

        await self.app(scope, receive, rewrite)


@pytest.fixture
def broken(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    server = LiveServer(FAST_REALTIME, policy="polls:1")
    server.app = cast(Any, request.param(server.app))
    with server:
        yield server


@pytest.mark.parametrize("broken", [_FailingStatus], indirect=True)
def test_a_500_on_status_fails_by_name(
    broken: LiveServer, in_tmp: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    report = in_tmp / "contract.xml"
    args = ("--max-examples", "2", "--phases", "fuzzing,stateful", "--junit", str(report))
    status = _check(broken.base_url, *args)
    out = capfd.readouterr().out
    assert status == 1, out
    suites = _suites(report)
    lifecycle = _failed_cases(suites["fal-mock lifecycle"])
    assert {"not_a_server_error", "status_bodies_conform", "requests_complete"} <= set(lifecycle)
    assert "/status?logs=1 -> 500" in lifecycle["not_a_server_error"]
    schemathesis = _failed_cases(suites["schemathesis"])
    status_op = "GET /queue/fal-ai/lipsync/requests/{request_id}/status"
    assert "Server error" in schemathesis[status_op]
    assert "FAIL not_a_server_error" in out and "schemathesis failures" in out


@pytest.mark.parametrize("broken", [_FailedStatus], indirect=True)
def test_a_failed_status_fails_by_name(
    broken: LiveServer, in_tmp: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    report = in_tmp / "contract.xml"
    args = ("--max-examples", "2", "--phases", "stateful", "--junit", str(report))
    status = _check(broken.base_url, *args)
    out = capfd.readouterr().out
    assert status == 1, out
    suites = _suites(report)
    lifecycle = _failed_cases(suites["fal-mock lifecycle"])
    assert "status_bodies_conform" in lifecycle
    assert "FAILED" in lifecycle["status_bodies_conform"]
    assert "requests_complete" in lifecycle
    assert "status_never_goes_backwards" in lifecycle  # contracts.checks, on the same run
    assert "not_a_server_error" not in lifecycle
    schemathesis = _failed_cases(suites["schemathesis"])
    assert any("Response violates schema" in text for text in schemathesis.values()), schemathesis


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_unreachable_target_is_a_usage_error(
    in_tmp: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert _check(f"http://127.0.0.1:{_closed_port()}") == 2
    assert "cannot reach" in capfd.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--base-url", "ftp://example.com"], "--base-url must be an http(s) URL"),
        (["--base-url", "http://x", "--phases", "fuzzing,nope"], "unknown phase(s) ['nope']"),
        (["--base-url", "http://x", "--max-examples", "0"], "--max-examples"),
        (["--base-url", "http://x", "--no-lifecycle", "--no-schemathesis"], "nothing to run"),
    ],
)
def test_bad_arguments_are_usage_errors(
    args: list[str], message: str, in_tmp: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", *args]) == 2
    assert message in capfd.readouterr().err


def test_a_refused_key_is_a_usage_error(in_tmp: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with LiveServer(FAST_REALTIME, keys=frozenset({"right"})) as live:
        assert _check(live.base_url, "--key", "wrong") == 2
    assert "refused the key" in capfd.readouterr().err


def test_event_streams_are_read_per_event_by_schemathesis() -> None:
    import yaml

    spec = for_schemathesis(yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8")))
    stream = spec["paths"]["/queue/fal-ai/lipsync/requests/{request_id}/status/stream"]["get"]
    schema = stream["responses"]["200"]["content"]["text/event-stream"]["schema"]
    data = schema["properties"]["data"]
    assert data["contentMediaType"] == "application/json"
    assert data["contentSchema"] == {"$ref": "#/components/schemas/QueueStatus"}
    json.dumps(spec)  # what the subprocess reads
