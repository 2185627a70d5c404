"""The official clients' documented retry behaviour (PROTOCOL.md §11), against injected faults.

fal-client 1.0.3 retries transport errors, 408, 409, 429, and 502/503/504 that carry no
``x-fal-request-id`` and say nginx; it does not retry 500, a 5xx with a request id, or a user
timeout; it gives up after 10 attempts. @fal-ai/client 1.10.1 retries 429/502/503/504 (and 500
on status polls). The faults come from the mock; the judges are the clients, unmodified.
"""

from __future__ import annotations

import time
import types
from typing import Any

import fal_client
import fal_client.client as fal_module
import httpx
import pytest

from tests.conftest import LIPSYNC_INPUT

APP = "fal-ai/lipsync"
RETRIED = ["rate_limited", "request_timeout", "conflict", "drop_connection"]
INGRESS = ["ingress_502", "ingress_503", "ingress_504"]
FAULT_STATUS = {
    "rate_limited": 429,
    "request_timeout": 408,
    "conflict": 409,
    "drop_connection": 0,  # journaled with no status: nothing was answered
    **{kind: int(kind[-3:]) for kind in INGRESS},
}


def statuses(fal_mock: Any, operation_path: str = "/fal-ai/lipsync") -> list[int]:
    return [e.status_code for e in fal_mock.journal if e.path == operation_path]


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """fal-client's backoff sleeps recorded instead of slept (10 attempts sleep ~50 s)."""
    slept: list[float] = []
    fake = types.SimpleNamespace(
        **{n: getattr(time, n) for n in dir(time) if not n.startswith("_")}
    )
    fake.sleep = slept.append
    monkeypatch.setattr(fal_module, "time", fake)
    return slept


@pytest.mark.parametrize("kind", RETRIED + INGRESS)
def test_retried_twice_then_served(fal_mock: Any, kind: str) -> None:
    fal_mock.set_faults({"rules": [{"kind": kind, "times": 2, "operations": ["submitLipsync"]}]})
    handle = fal_client.submit(APP, arguments=LIPSYNC_INPUT)
    assert statuses(fal_mock) == [FAULT_STATUS[kind]] * 2 + [200]
    assert fal_mock.request_ids == [handle.request_id]  # one job, however many attempts


@pytest.mark.parametrize("kind", INGRESS)
def test_ingress_errors_with_a_request_id_are_not_retried(fal_mock: Any, kind: str) -> None:
    rule = {"kind": kind, "with_request_id": True, "operations": ["submitLipsync"]}
    fal_mock.set_faults({"rules": [rule]})
    with pytest.raises(fal_client.client.FalClientHTTPError) as raised:
        fal_client.submit(APP, arguments=LIPSYNC_INPUT)
    assert raised.value.status_code == int(kind[-3:])
    assert statuses(fal_mock) == [int(kind[-3:])]


def test_a_500_is_not_retried(fal_mock: Any) -> None:
    fal_mock.set_faults({"rules": [{"kind": "internal_error", "operations": ["getRequestStatus"]}]})
    handle = fal_client.submit(APP, arguments=LIPSYNC_INPUT)
    with pytest.raises(fal_client.client.FalClientHTTPError) as raised:
        handle.status()
    assert raised.value.status_code == 500
    assert [e.status_code for e in fal_mock.journal] == [200, 500]


def test_gives_up_after_ten_attempts(fal_mock: Any, no_backoff: list[float]) -> None:
    fal_mock.set_faults({"rules": [{"kind": "rate_limited"}]})
    with pytest.raises(fal_client.client.FalClientHTTPError) as raised:
        fal_client.submit(APP, arguments=LIPSYNC_INPUT)
    assert raised.value.status_code == 429
    assert statuses(fal_mock) == [429] * 10
    # Exponential backoff with jitter U(0.5, 1.5): 0.1 * 2**(n-1), capped at 30 s.
    for n, delay in enumerate(no_backoff, start=1):
        assert 0.5 * min(0.1 * 2 ** (n - 1), 30) <= delay <= min(1.5 * 0.1 * 2 ** (n - 1), 30)
    assert len(no_backoff) == 9


@pytest.mark.fal_mock(policy="polls:1")
def test_subscribe_surfaces_a_runner_error(fal_mock: Any) -> None:
    rule = {"kind": "runner_error", "error_type": "runner_connection_timeout"}
    fal_mock.set_faults({"rules": [rule]})
    handle = fal_client.submit(APP, arguments=LIPSYNC_INPUT)
    for _ in range(5):
        status = handle.status()
        if isinstance(status, fal_client.Completed):
            break
    assert isinstance(status, fal_client.Completed)
    with pytest.raises(fal_client.client.FalClientHTTPError) as raised:
        handle.get()
    assert raised.value.status_code == 503  # JSON body, not nginx: not retried
    assert "runner_connection_timeout" in raised.value.response.text


@pytest.mark.fal_mock(policy="immediate")
def test_a_user_timeout_is_not_retried(fal_mock: Any) -> None:
    fal_mock.set_faults({"rules": [{"kind": "user_timeout"}]})
    with pytest.raises(fal_client.client.FalClientHTTPError) as raised:
        fal_client.subscribe(APP, arguments=LIPSYNC_INPUT)
    assert raised.value.status_code == 504
    assert raised.value.response.headers["x-fal-request-timeout-type"] == "user"
    results = [e for e in fal_mock.journal if e.method == "GET" and not e.path.endswith("status")]
    assert [e.status_code for e in results] == [504]


@pytest.mark.fal_mock(policy="immediate")
def test_a_422_result_reaches_the_caller(fal_mock: Any) -> None:
    fal_mock.set_faults({"rules": [{"kind": "result_422"}]})
    with pytest.raises(fal_client.client.FalClientHTTPError) as raised:
        fal_client.subscribe(APP, arguments=LIPSYNC_INPUT)
    assert raised.value.status_code == 422


def test_latency_is_waited_out(fal_mock: Any) -> None:
    fal_mock.set_faults({"rules": [{"kind": "latency", "delay_s": 0.3, "times": 1}]})
    started = time.monotonic()
    fal_client.submit(APP, arguments=LIPSYNC_INPUT)
    assert time.monotonic() - started >= 0.3
    assert [e.extra.get("fault") for e in fal_mock.journal] == ["latency"]


def test_a_live_server_drops_the_connection(fal_mock_server: Any) -> None:
    """Under uvicorn the fault closes the socket: no status line, not a 500."""
    fal_mock_server.set_faults({"rules": [{"kind": "drop_connection", "times": 1}]})
    submit = f"{fal_mock_server.base_url.rstrip('/')}/queue/fal-ai/lipsync"
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        httpx.post(submit, json=LIPSYNC_INPUT, headers={"Authorization": "Key k"})
    answered = httpx.post(submit, json=LIPSYNC_INPUT, headers={"Authorization": "Key k"})
    assert answered.status_code == 200
    assert [e.status_code for e in fal_mock_server.journal] == [0, 200]
    # And fal-client, pointed at the live server, rides over it.
    fal_mock_server.set_faults({"rules": [{"kind": "drop_connection", "times": 1}]})
    with fal_mock_server.pointed():
        fal_client.submit(APP, arguments=LIPSYNC_INPUT)
    assert [e.status_code for e in fal_mock_server.journal][-2:] == [0, 200]
