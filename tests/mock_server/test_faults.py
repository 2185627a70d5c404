"""Fault injection: the plan's determinism, each fault's wire shape, and every way to select one
(settings, control plane, marker/fixture, per-request header)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from contracts.faults import FAULT_HEADER, FaultPlan, FaultRule
from mock_server.app import create_app
from mock_server.asgi_bridge import AppThread, AsgiBridge
from mock_server.engine.faults import FaultInjector
from mock_server.http.variations import EXTRA_FIELD, EXTRA_VALUE
from mock_server.settings import MockSettings
from tests.conftest import LIPSYNC_INPUT

SUBMIT = "http://m/queue/fal-ai/lipsync"
AUTH = {"Authorization": "Key k"}


def plan(*rules: dict[str, Any], seed: int = 0) -> FaultPlan:
    return FaultPlan.model_validate({"seed": seed, "rules": rules})


def hits(injector: FaultInjector, n: int, operation: str = "submitLipsync") -> list[bool]:
    return [injector.exchange_fault(operation) is not None for _ in range(n)]


def test_after_and_times_script_a_sequence() -> None:
    injector = FaultInjector(plan({"kind": "rate_limited", "after": 2, "times": 3}))
    assert hits(injector, 8) == [False, False, True, True, True, False, False, False]
    assert injector.counters() == [{"seen": 8, "hits": 3}]


def test_rates_are_seeded_and_rules_draw_apart() -> None:
    rate = {"kind": "internal_error", "rate": 0.3}
    first = hits(FaultInjector(plan(rate, seed=7)), 400)
    assert first == hits(FaultInjector(plan(rate, seed=7)), 400)
    assert first != hits(FaultInjector(plan(rate, seed=8)), 400)
    assert 80 <= sum(first) <= 160  # about 30 %
    # A job rule before it draws from its own generator: the exchange rule's hits do not move.
    with_job_rule = FaultInjector(plan({"kind": "runner_error", "rate": 0.5}, rate, seed=7))
    assert hits(with_job_rule, 400) == first


def test_rules_apply_only_to_their_operations() -> None:
    injector = FaultInjector(plan({"kind": "conflict", "operations": ["getRequestResult"]}))
    assert injector.exchange_fault("submitLipsync") is None
    assert injector.exchange_fault("getRequestResult") is not None


def test_unknown_operation_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown operationIds"):
        FaultRule(kind="conflict", operations=("submitLipsnyc",))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(MockSettings(policy="immediate", seed=3))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, headers=AUTH) as c:
        c.app = app  # type: ignore[attr-defined]
        yield c


async def set_plan(client: httpx.AsyncClient, *rules: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("http://m/_mock/faults", json={"rules": list(rules)})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    ("kind", "status", "detail"),
    [
        ("rate_limited", 429, "Rate limit exceeded: retry after 7 s"),
        ("request_timeout", 408, "Request Timeout"),
        ("conflict", 409, "Conflict: the request could not be completed, retry"),
        ("internal_error", 500, "Internal Server Error"),
    ],
)
async def test_json_faults(client: httpx.AsyncClient, kind: str, status: int, detail: str) -> None:
    await set_plan(client, {"kind": kind, "times": 1, "retry_after_s": 7})
    faulted = await client.post(SUBMIT, json=LIPSYNC_INPUT)
    assert (faulted.status_code, faulted.json()) == (status, {"detail": detail})
    assert (faulted.headers.get("retry-after") == "7") is (kind == "rate_limited")
    assert faulted.headers["x-mock-fault"] == kind  # injected, and says so
    assert "x-fal-request-id" not in faulted.headers
    # Nothing was queued by the faulted submit; the next one is served.
    assert client.app.state.engine.request_ids() == []  # type: ignore[attr-defined]
    assert (await client.post(SUBMIT, json=LIPSYNC_INPUT)).status_code == 200
    entries = client.app.state.engine.journal.entries()  # type: ignore[attr-defined]
    assert [(e.status_code, e.extra.get("fault")) for e in entries] == [(status, kind), (200, None)]


@pytest.mark.parametrize("status", [502, 503, 504])
@pytest.mark.parametrize("with_request_id", [False, True])
async def test_ingress_faults(
    client: httpx.AsyncClient, status: int, with_request_id: bool
) -> None:
    submitted = (await client.post(SUBMIT, json=LIPSYNC_INPUT)).json()
    rule = {"kind": f"ingress_{status}", "times": 1, "with_request_id": with_request_id}
    await set_plan(client, rule)
    faulted = await client.get(submitted["status_url"])
    assert faulted.status_code == status
    assert faulted.headers["content-type"] == "text/html"
    assert "<center>nginx</center>" in faulted.text
    request_id = faulted.headers.get("x-fal-request-id")
    assert request_id == (submitted["request_id"] if with_request_id else None)


async def test_latency_delays_one_request_and_not_the_others(client: httpx.AsyncClient) -> None:
    slow_plan = json.dumps({"rules": [{"kind": "latency", "delay_s": 0.5}]})
    slow = asyncio.create_task(
        client.post(SUBMIT, json=LIPSYNC_INPUT, headers={FAULT_HEADER: slow_plan})
    )
    fast = await client.post(SUBMIT, json=LIPSYNC_INPUT)
    assert fast.status_code == 200 and not slow.done()  # served while the slow one waits
    assert (await slow).status_code == 200
    engine = client.app.state.engine  # type: ignore[attr-defined]
    assert [e.extra.get("fault") for e in engine.journal.entries()] == [None, "latency"]


def test_a_dropped_connection_has_no_answer() -> None:
    # Through the plugin's bridge: httpx's ASGITransport cannot express "no answer".
    app = create_app(MockSettings(policy="immediate"))
    app.state.engine.set_faults(plan({"kind": "drop_connection", "times": 1}))
    thread = AppThread()
    try:
        bridge = AsgiBridge(app, thread)
        with httpx.Client(transport=httpx.MockTransport(bridge.send), headers=AUTH) as c:
            with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
                c.post(SUBMIT, json=LIPSYNC_INPUT)
            assert c.post(SUBMIT, json=LIPSYNC_INPUT).status_code == 200
    finally:
        thread.stop()
    engine = app.state.engine
    assert len(engine.request_ids()) == 1
    faulted, served = engine.journal.entries()
    assert (faulted.status_code, faulted.extra["fault"]) == (0, "drop_connection")
    assert served.status_code == 200


@pytest.mark.parametrize(
    ("rule", "status", "error_type", "header"),
    [
        ({"kind": "runner_error", "error_type": "runner_scheduling_failure"}, 503,
         "runner_scheduling_failure", None),
        ({"kind": "user_timeout"}, 504, "request_timeout", "user"),
        ({"kind": "result_422"}, 422, None, None),
    ],
)  # fmt: skip
async def test_job_faults_end_the_job_completed_with_the_error(
    client: httpx.AsyncClient,
    rule: dict[str, Any],
    status: int,
    error_type: str | None,
    header: str | None,
) -> None:
    await set_plan(client, {**rule, "times": 1})
    faulted = (await client.post(SUBMIT, json=LIPSYNC_INPUT)).json()
    fine = (await client.post(SUBMIT, json=LIPSYNC_INPUT)).json()
    status_body = (await client.get(faulted["status_url"])).json()
    assert status_body["status"] == "COMPLETED" and status_body["error"]
    assert status_body["error_type"] == error_type
    result = await client.get(faulted["response_url"])
    assert result.status_code == status
    assert result.headers.get("x-fal-request-timeout-type") == header
    if status == 422:
        assert result.json()["detail"][0]["loc"] == ["body", "video_url"]
    else:
        assert result.json()["error_type"] == error_type
        assert result.headers["x-fal-error-type"] == error_type
    assert (await client.get(fine["response_url"])).status_code == 200


async def test_a_job_fault_on_a_sync_run(client: httpx.AsyncClient) -> None:
    header = json.dumps({"rules": [{"kind": "runner_error"}]})
    run = await client.post(
        "http://m/run/fal-ai/lipsync", json=LIPSYNC_INPUT, headers={FAULT_HEADER: header}
    )
    assert run.status_code == 503 and run.json()["error_type"] == "runner_disconnected"


async def test_the_header_plan_is_for_its_request_only(client: httpx.AsyncClient) -> None:
    header = json.dumps({"rules": [{"kind": "conflict"}, {"kind": "runner_error"}]})
    assert (
        await client.post(SUBMIT, json=LIPSYNC_INPUT, headers={FAULT_HEADER: header})
    ).status_code == 409
    job_only = json.dumps({"rules": [{"kind": "runner_error"}]})
    faulted = (
        await client.post(SUBMIT, json=LIPSYNC_INPUT, headers={FAULT_HEADER: job_only})
    ).json()
    plain = (await client.post(SUBMIT, json=LIPSYNC_INPUT)).json()
    assert (await client.get(faulted["response_url"])).status_code == 503
    assert (await client.get(plain["response_url"])).status_code == 200
    # The engine's own plan is untouched and still counts nothing.
    state = (await client.get("http://m/_mock/faults")).json()
    assert state == {"plan": {"seed": 0, "rules": []}, "counters": []}


async def test_a_bad_header_plan_is_a_422_naming_the_header(client: httpx.AsyncClient) -> None:
    bad = json.dumps({"rules": [{"kind": "meteor_strike"}]})
    answer = await client.post(SUBMIT, json=LIPSYNC_INPUT, headers={FAULT_HEADER: bad})
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["loc"][:4] == ["header", FAULT_HEADER, "rules", 0]
    assert error["msg"].startswith("not a fault plan")
    broken = await client.get(
        "http://m/queue/fal-ai/lipsync/requests/x/status", headers={FAULT_HEADER: "{"}
    )
    assert broken.status_code == 422


async def test_the_control_plane_sets_shows_and_clears_faults(client: httpx.AsyncClient) -> None:
    state = await set_plan(client, {"kind": "rate_limited", "times": 1})
    assert state["plan"]["rules"][0]["kind"] == "rate_limited"
    assert state["counters"] == [{"seen": 0, "hits": 0}]
    await client.post(SUBMIT, json=LIPSYNC_INPUT)
    await client.post(SUBMIT, json=LIPSYNC_INPUT)
    assert (await client.get("http://m/_mock/faults")).json()["counters"] == [
        {"seen": 2, "hits": 1}
    ]
    bad = await client.post(
        "http://m/_mock/faults", json={"rules": [{"kind": "rate_limited", "rate": 2}]}
    )
    assert bad.status_code == 422
    cleared = (await client.delete("http://m/_mock/faults")).json()
    assert cleared == {"plan": {"seed": 0, "rules": []}, "counters": []}


def test_settings_read_a_plan_from_json_or_a_file(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = json.dumps({"seed": 4, "rules": [{"kind": "conflict", "times": 2}]})
    monkeypatch.setenv("FAL_MOCK_FAULTS", text)
    from_env = MockSettings()
    assert from_env.faults.seed == 4 and from_env.faults.rules[0].times == 2
    path = tmp_path / "plan.json"
    path.write_text(text)
    assert MockSettings(faults=f"@{path}").faults == from_env.faults
    assert create_app(from_env).state.engine.faults.plan == from_env.faults
    with pytest.raises(ValueError, match="cannot read the fault plan"):
        MockSettings(faults=f"@{tmp_path / 'missing.json'}")


async def test_reset_goes_back_to_the_settings_plan() -> None:
    settings = MockSettings(faults=json.dumps({"rules": [{"kind": "conflict"}]}))
    app = create_app(settings)
    engine = app.state.engine
    engine.set_faults(FaultPlan.none())
    engine.reset()
    assert engine.faults.plan == settings.faults


async def test_omit_optional_leaves_out_only_what_the_spec_allows(
    client: httpx.AsyncClient,
) -> None:
    await set_plan(client, {"kind": "omit_optional", "operations": ["getRequestStatus"]})
    submitted = (await client.post(SUBMIT, json=LIPSYNC_INPUT)).json()
    plain = (await client.get(submitted["status_url"], headers={FAULT_HEADER: "{}"})).json()
    varied = await client.get(submitted["status_url"])
    assert int(varied.headers["content-length"]) == len(varied.content)
    body = varied.json()
    assert {"metrics", "error", "error_type"} <= set(plain) - set(body)
    assert body["status"] == "COMPLETED" and "logs" in body and "request_id" in body


async def test_extra_fields_adds_an_unknown_field(client: httpx.AsyncClient) -> None:
    await set_plan(client, {"kind": "extra_fields"})
    submitted = (await client.post(SUBMIT, json=LIPSYNC_INPUT)).json()
    assert submitted[EXTRA_FIELD] == EXTRA_VALUE
    result = (await client.get(submitted["response_url"])).json()
    assert result[EXTRA_FIELD] == EXTRA_VALUE and result["video"]["url"]


@pytest.mark.parametrize("kind", ["omit_optional", "extra_fields"])
@pytest.mark.fal_mock(policy="polls:2")
def test_fal_client_takes_the_variations(fal_mock: Any, kind: str) -> None:
    import fal_client

    fal_mock.set_faults({"rules": [{"kind": kind}]})
    updates: list[Any] = []
    output = fal_client.subscribe(
        "fal-ai/lipsync", arguments=LIPSYNC_INPUT, with_logs=True, on_queue_update=updates.append
    )
    assert output["video"]["content_type"] == "video/mp4"
    assert all(e.extra.get("fault") == kind for e in fal_mock.journal if e.host == "queue")


def test_the_serve_banner_says_faults_are_on() -> None:
    from mock_server.cli import banner

    plain = MockSettings()
    faulty = MockSettings(faults=json.dumps({"rules": [{"kind": "conflict"}, {"kind": "latency"}]}))
    assert "FAULTS ON" not in banner(plain)
    line = next(x for x in banner(faulty).splitlines() if "FAULTS ON" in x)
    assert "2 rule(s) (conflict, latency)" in line and line.endswith("/_mock/faults")
