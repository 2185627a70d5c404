"""What the JS client tests share: running a ``tests/e2e/js/driver.mjs`` scenario, reading the
mock's journal, and the checks several scenarios make on what the client saw.

Each test runs one scenario of the driver in a node subprocess, in both ways the JS client
(@fal-ai/client 1.10.1) can be pointed at the mock (PROTOCOL.md §1.3-1.4): ``requestMiddleware``
rewriting fal's hosts to the live server's path prefixes, and ``proxyUrl`` (the mock dispatches on
``x-fal-target-url``). The driver prints one JSON line describing what the client saw; the mock's
journal shows what went over the wire.

Not a test module, so importing it never skips: the test modules skip themselves with
``missing_prerequisite()``, and pick up the ``mode``/``base_url`` fixtures from here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

JS_DIR = Path(__file__).parent / "js"
DRIVER = JS_DIR / "driver.mjs"
NODE = shutil.which("node")

ENDPOINT_PATH = "/fal-ai/lipsync"
INPUT = {"video_url": "https://example.com/v.mp4", "audio_url": "https://example.com/a.mp3"}
STATUS_ORDER = {"IN_QUEUE": 0, "IN_PROGRESS": 1, "COMPLETED": 2}


def missing_prerequisite() -> str | None:
    """Why the JS client cannot run here (the reason to skip with), or None if it can."""
    if NODE is None:
        return "node is not on PATH: the JS client tests need node >= 18"
    if not (JS_DIR / "node_modules" / "@fal-ai" / "client").is_dir():
        return "tests/e2e/js/node_modules is missing: run `npm ci` in tests/e2e/js"
    return None


# -- running the driver --------------------------------------------------------------------


def drive(scenario: str, base_url: str, mode: str, transport_errors: int = 0) -> dict[str, Any]:
    """Run one driver scenario; fail the test with everything it printed if it did not succeed.
    ``transport_errors``: how many calls may end in a transport error (an injected fault)."""
    assert NODE is not None
    try:
        proc = subprocess.run(
            [NODE, str(DRIVER), scenario, base_url, mode],
            timeout=60,
            capture_output=True,
            text=True,
            cwd=JS_DIR,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"node driver {scenario!r} ({mode}) did not exit within 60 s: {exc}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    out: dict[str, Any] | None = None
    if lines:
        try:
            out = json.loads(lines[-1])
        except json.JSONDecodeError:
            out = None
    if proc.returncode != 0 or out is None or "error" in out:
        error = out.get("error") if isinstance(out, dict) else None
        trace = out.get("trace") if isinstance(out, dict) else None
        pytest.fail(
            f"node driver {scenario!r} ({mode}) failed with exit code {proc.returncode}\n"
            f"error: {json.dumps(error, indent=1)}\n"
            f"client HTTP trace: {json.dumps(trace, indent=1)}\n"
            f"stdout: {proc.stdout[-4000:]}\nstderr: {proc.stderr[-4000:]}"
        )
    assert out["scenario"] == scenario
    assert out["mode"] == mode
    check_trace(out["trace"], base_url, mode, transport_errors)
    return out


def check_trace(
    trace: list[dict[str, Any]], base_url: str, mode: str, transport_errors: int = 0
) -> None:
    """Every call the client made stayed on the mock, routed the way ``mode`` says, and none
    ended in a transport error beyond the ``transport_errors`` expected."""
    assert trace, "the client made no HTTP call at all"
    failed = [call for call in trace if "error" in call]
    assert len(failed) == transport_errors, f"transport errors: {failed}"
    proxy_url = f"{base_url}/api/fal/proxy"
    for call in trace:
        assert call["url"].startswith(base_url + "/"), f"the client left the mock: {call}"
        if call["target"] is not None:  # dispatched through the client's request pipeline
            assert mode == "proxy", f"x-fal-target-url without proxyUrl: {call}"
            assert call["url"] == proxy_url, call
            assert call["target"].startswith(
                ("https://queue.fal.run/", "https://fal.run/", "https://rest.fal.ai/")
            ), call
        else:
            assert call["url"] != proxy_url, call
        if call["url"] == proxy_url or call["url"].startswith(
            (f"{base_url}/queue/", f"{base_url}/run/", f"{base_url}/rest/")
        ):
            assert call["authorization"] == "Key test-key", call
    if mode == "proxy":
        dispatched = [c for c in trace if "/cdn/" not in c["url"]]
        assert dispatched, "no call went through the proxy route"
        assert all(c["url"] == proxy_url for c in dispatched), dispatched


# -- the mock's journal --------------------------------------------------------------------


def journal(base_url: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base_url}/_mock/journal", timeout=10)
    response.raise_for_status()
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def entries_for(
    entries: list[dict[str, Any]], host: str, method: str, path: str
) -> list[dict[str, Any]]:
    return [
        e
        for e in entries
        if e["host"] == host and e["method"].upper() == method and e["path"] == path
    ]


def header(entry: dict[str, Any], name: str) -> str | None:
    for key, value in entry["request_headers"].items():
        if key.lower() == name.lower():
            return str(value)
    return None


# -- checks on what the client saw ---------------------------------------------------------


def assert_monotonic(statuses: list[str]) -> None:
    assert statuses, "no status update at all"
    assert all(s in STATUS_ORDER for s in statuses), f"unknown status in {statuses}"
    ranks = [STATUS_ORDER[s] for s in statuses]
    assert ranks == sorted(ranks), f"status went backwards: {statuses}"
    assert statuses[-1] == "COMPLETED", statuses
    assert statuses.count("COMPLETED") == 1, statuses


def log_key(log: dict[str, Any]) -> tuple[Any, ...]:
    return (log.get("timestamp"), log.get("level"), log.get("source"), log.get("message"))


def assert_log_shape(logs: list[dict[str, Any]]) -> None:
    for log in logs:
        assert isinstance(log["message"], str), log
        assert log["level"] in {"STDERR", "STDOUT", "ERROR", "INFO", "WARN", "DEBUG"}, log
        assert log["source"] == "USER", log
        assert isinstance(log["timestamp"], str), log
    keys = [log_key(log) for log in logs]
    assert len(keys) == len(set(keys)), f"duplicated log lines: {logs}"


def assert_request_urls(body: dict[str, Any], base_url: str, request_id: str) -> None:
    prefix = f"{base_url}/queue/fal-ai/lipsync/requests/{request_id}"
    assert body["response_url"] == prefix, body
    assert body["status_url"] == f"{prefix}/status", body
    assert body["cancel_url"] == f"{prefix}/cancel", body


def assert_video_output(data: dict[str, Any], base_url: str) -> dict[str, Any]:
    video = data["video"]
    assert set(video) >= {"url", "content_type", "file_name", "file_size"}, video
    assert video["content_type"] == "video/mp4", video
    assert isinstance(video["file_name"], str), video
    assert video["file_name"].endswith(".mp4"), video
    assert isinstance(video["file_size"], int), video
    assert video["file_size"] > 0, video
    assert video["url"].startswith(f"{base_url}/cdn/"), f"output URL not on the mock: {video}"
    return dict(video)


def download(url: str) -> httpx.Response:
    response = httpx.get(url, timeout=10)
    return response


def assert_downloads(video: dict[str, Any]) -> None:
    response = download(video["url"])
    assert response.status_code == 200, (video, response.status_code, response.text[:200])
    assert response.headers["content-type"].startswith("video/mp4"), response.headers
    assert len(response.content) == video["file_size"], (len(response.content), video)
    assert response.content[4:8] == b"ftyp", response.content[:16]


# -- fixtures ------------------------------------------------------------------------------


# The two ways of pointing the JS client at the mock: every scenario runs under both.
@pytest.fixture(params=["middleware", "proxy"])
def mode(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def base_url(live_mock: Any) -> str:
    url: str = live_mock.base_url.rstrip("/")
    return url
