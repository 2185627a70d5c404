"""``fal_mock.fuzz``: planted client bugs are caught within the default budget, with the shrunk
behaviour and a replay seed printed; correct clients pass every drawn behaviour."""

from __future__ import annotations

import pytest

from tests.plugin.conftest import module

CLIENTS = '''
import time

from contracts.strategies import ServerBehaviour
from contracts.faults import FaultPlan

QUEUE = "https://queue.fal.run/fal-ai/lipsync"
AUTH = {"Authorization": "Key k"}
RETRIED = {408, 409, 429}
HTTP = httpx.Client(headers=AUTH)  # one client: httpx.request() builds an SSL context each call


def send(method, url, retried=RETRIED, **kwargs):
    """A hand-written client's transport: fal-client's retry rules, unless told otherwise."""
    for attempt in range(10):
        try:
            response = HTTP.request(method, url, **kwargs)
        except httpx.TransportError:
            continue
        ingress = response.status_code in (502, 503, 504) and "nginx" in response.text
        ingress = ingress and "x-fal-request-id" not in response.headers
        if response.status_code in retried or ingress:
            continue
        return response
    raise RuntimeError("gave up")


def good_loop():
    submitted = send("POST", QUEUE, json=ARGS).json()
    while True:
        status = send("GET", submitted["status_url"])
        if status.status_code == 200:
            break
        assert status.status_code == 202, status.status_code
    result = send("GET", submitted["response_url"])
    result.raise_for_status()
    return result.json()


def treats_202_as_error():
    submitted = send("POST", QUEUE, json=ARGS).json()
    while True:
        status = send("GET", submitted["status_url"])
        if status.status_code != 200:
            raise RuntimeError(f"status check failed: {status.status_code}")
        break
    return send("GET", submitted["response_url"]).json()


def polls_forever_on_error():
    handle = fal_client.submit(APP, arguments=ARGS)
    while True:
        status = handle.status()
        if isinstance(status, fal_client.Completed) and status.error is None:
            return handle.get()
        time.sleep(0.001)


def fetches_result_early():
    submitted = send("POST", QUEUE, json=ARGS).json()
    while True:  # waits for the result, but by asking for the result itself
        result = send("GET", submitted["response_url"])
        if result.status_code == 200:
            return result.json()
        time.sleep(0.001)


def no_retry_on_429():
    submitted = send("POST", QUEUE, json=ARGS, retried={408, 409}).json()
    while send("GET", submitted["status_url"], retried={408, 409}).status_code == 202:
        pass
    return send("GET", submitted["response_url"], retried={408, 409}).json()
'''


def fuzz_module(test: str) -> str:
    return module(CLIENTS + test)


@pytest.mark.parametrize(
    ("client", "violation"),
    [
        ("treats_202_as_error", "ClientFailedOnAllowedBehaviour"),
        ("polls_forever_on_error", "ClientDidNotTerminate"),
        ("fetches_result_early", "result_fetched_only_after_completed"),
        ("no_retry_on_429", "ClientFailedOnAllowedBehaviour"),
    ],
)
def test_planted_bugs_are_caught(inner: pytest.Pytester, client: str, violation: str) -> None:
    inner.makepyfile(fuzz_module(f"\n\ndef test_fuzz(fal_mock):\n    fal_mock.fuzz({client})\n"))
    result = inner.runpytest()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert violation in out, out[-3000:]
    assert "the smallest failing behaviour was" in out
    assert "ServerBehaviour(" in out and "replay the run with fal_mock.fuzz(client, seed=" in out
    assert "FuzzingFailure" in out


def test_a_planted_429_bug_is_shrunk_to_the_429(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        fuzz_module("\n\ndef test_fuzz(fal_mock):\n    fal_mock.fuzz(no_retry_on_429)\n")
    )
    out = inner.runpytest().stdout.str()
    smallest = out[out.rindex("the smallest failing behaviour was") :].splitlines()[1]
    assert "kind='rate_limited'" in smallest and smallest.count("FaultRule(") == 1, smallest


def test_correct_clients_pass_every_behaviour(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        fuzz_module(
            """

def test_hand_written(fal_mock):
    fal_mock.fuzz(good_loop, seed=1)

def test_fal_client_subscribe(fal_mock):
    fal_mock.fuzz(lambda: fal_client.subscribe(APP, arguments=ARGS), max_examples=5, seed=2)

async def test_fal_client_async(fal_mock):
    async def client():
        handle = await fal_client.submit_async(APP, arguments=ARGS)
        async for _ in handle.iter_events(interval=0.001):
            pass
        return await handle.get()
    fal_mock.fuzz(client, max_examples=10, seed=3)
"""
        )
    )
    inner.runpytest().assert_outcomes(passed=3)


def test_replay_runs_one_behaviour(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        fuzz_module(
            """

@pytest.mark.fal_mock(policy="polls:2", seed=9)
def test_the_test_goes_on_as_it_was_set_up(fal_mock):
    fal_mock.fuzz(good_loop, max_examples=3, seed=4)
    assert str(fal_mock.engine.config.policy) == "polls:2"
    assert fal_mock.engine.config.seed == 9
    assert fal_mock.request_ids == [] and fal_mock.engine.faults.plan == FaultPlan()

def test_replay(fal_mock):
    calls = []
    behaviour = ServerBehaviour(policy="polls:2", seed=5, ahead=1)
    fal_mock.fuzz(lambda: calls.append((good_loop(), fal_mock.journal)), replay=behaviour)
    [(_, journal)] = calls  # seen from inside the run: afterwards the mock is as it was
    assert journal[0].response_headers["x-fal-request-id"]
    submitted = [e for e in journal if e.method == "POST"][0]
    assert '"queue_position":1' in submitted.response_body  # one request ahead

def test_a_budget_stops_a_client_that_never_finishes(fal_mock):
    from contracts.checks import ClientDidNotTerminate
    from mock_server.fuzzing import FuzzBudget

    def forever():
        while True:
            try:
                send("GET", "https://queue.fal.run/fal-ai/lipsync/requests/x/status")
            except Exception:
                pass

    with pytest.raises(ClientDidNotTerminate, match="more than 20 requests"):  # fmt: skip
        fal_mock.fuzz(forever, replay=ServerBehaviour(), budget=FuzzBudget(request_budget=20))
"""
        )
    )
    inner.runpytest().assert_outcomes(passed=3)
