"""``fal_mock``: fal's hosts routed into the mock in-process, for unmodified clients."""

from __future__ import annotations

import pytest

from tests.plugin.conftest import module


def test_sync_fal_client_subscribe_run_stream_upload(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        module(
            """
def test_subscribe(fal_mock):
    updates = []
    out = fal_client.subscribe(APP, arguments=ARGS, with_logs=True,
                               on_queue_update=updates.append)
    video = httpx.get(out["video"]["url"])
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    assert len(video.content) == out["video"]["file_size"]
    assert out["video"]["url"].startswith("https://v3.fal.media/files/")
    assert isinstance(updates[-1], fal_client.Completed)
    (request_id,) = fal_mock.request_ids
    assert [h.status for h in fal_mock.history(request_id)] == [
        "IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    hosts = [(e.host, e.method) for e in fal_mock.journal]
    assert hosts[0] == ("queue", "POST") and hosts[-1] == ("cdn", "GET")

def test_run_and_stream(fal_mock):
    assert fal_client.run(APP, arguments=ARGS)["video"]["file_size"] > 0
    events = list(fal_client.stream(APP, arguments=ARGS))
    assert events[-1]["video"]["content_type"] == "video/mp4"
    assert {e.host for e in fal_mock.journal} == {"run"}

def test_upload(fal_mock):
    url = fal_client.upload(b"hello", "text/plain", "a.txt")
    assert httpx.get(url).content == b"hello"

def test_submit_status_cancel(fal_mock):
    fal_mock.set_policy("polls:50")
    handle = fal_client.submit(APP, arguments=ARGS)
    assert isinstance(handle.status(), fal_client.Queued)
    handle.cancel()
    done = handle.status()
    assert isinstance(done, fal_client.Completed) and done.error_type == "request_cancelled"
"""
        )
    )
    inner.runpytest().assert_outcomes(passed=4)


def test_async_fal_client_and_concurrent_requests(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        module(
            """
import asyncio

async def test_module_level_async_client(fal_mock):
    out = await fal_client.subscribe_async(APP, arguments=ARGS)
    assert out["video"]["content_type"] == "video/mp4"

async def test_concurrent_subscribes(fal_mock):
    client = fal_client.AsyncClient()
    outs = await asyncio.gather(*(client.subscribe(APP, arguments=ARGS) for _ in range(5)))
    assert len({o["video"]["url"] for o in outs}) == 5
    assert len(fal_mock.request_ids) == 5
    await (await client._client).aclose()

async def test_plain_async_httpx(fal_mock):
    async with httpx.AsyncClient(headers={"Authorization": "Key k"}) as http:
        answer = await http.post("https://queue.fal.run/fal-ai/lipsync", json=ARGS)
        assert answer.status_code == 200
        status = await http.get(answer.json()["status_url"])
        assert status.json()["status"] == "IN_QUEUE"
"""
        )
    )
    inner.runpytest().assert_outcomes(passed=3)


def test_every_fal_host_name_and_the_backup_domains(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        module(
            """
from contracts.operations import FAL_HOSTS

@pytest.mark.parametrize("host", FAL_HOSTS[next(iter(FAL_HOSTS))])
def test_queue_names(fal_mock, host):
    answer = httpx.post(f"https://{host}/fal-ai/lipsync", json=ARGS,
                        headers={"Authorization": "Key k"})
    assert answer.status_code == 200
    assert answer.json()["status_url"].startswith(f"https://{host}/")  # the way it came in

@pytest.mark.parametrize("host", ["fal.run", "falrun.com"])
def test_run_names(fal_mock, host):
    answer = httpx.post(f"https://{host}/fal-ai/lipsync", json=ARGS,
                        headers={"Authorization": "Key k"})
    assert answer.status_code == 200

def test_other_fal_media_names_are_the_cdn(fal_mock):
    url = fal_client.run(APP, arguments=ARGS)["video"]["url"]
    path = url.split("v3.fal.media", 1)[1]
    for host in ("fal.media", "v3b.fal.media", "v2.fal.media"):
        assert httpx.get(f"https://{host}{path}").content[4:8] == b"ftyp"
    assert httpx.get("https://v2.fal.media/files/nope/x.mp4").status_code == 404
"""
        )
    )
    inner.runpytest().assert_outcomes(passed=5)


def test_no_key_needed_and_fal_client_cache_cleared(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAL_KEY", raising=False)
    inner.makepyfile(
        module(
            """
import os

def test_first(fal_mock):
    assert os.environ["FAL_KEY"]
    fal_client.run(APP, arguments=ARGS)

def test_key_gone_after(fal_mock):
    # fal-client cached the previous test's credentials and httpx client: forgotten.
    assert "_client" not in fal_client.sync_client.__dict__
    fal_client.run(APP, arguments=ARGS)
    assert fal_mock.journal[0].request_headers["authorization"] == "<redacted>"
"""
        )
    )
    inner.runpytest().assert_outcomes(passed=2)


def test_escape_to_another_host_fails_clearly(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        module(
            """
from mock_server.inprocess import UnmockedHostError

def test_raised_where_sent(fal_mock):
    httpx.get("https://api.example.org/v1/things")

async def test_raised_async(fal_mock):
    async with httpx.AsyncClient() as http:
        with pytest.raises(UnmockedHostError, match="'api.example.org'"):
            await http.get("https://api.example.org/v1/things")
    assert fal_mock.escaped == ["GET https://api.example.org/v1/things"]
    fal_mock.escaped.clear()  # seen, and meant

def test_swallowed_escape_fails_at_teardown(fal_mock):
    try:
        httpx.get("http://169.254.169.254/latest")
    except Exception:
        pass

def test_other_hosts_mocked_on_the_router(fal_mock):
    fal_mock.router.get("https://api.example.org/ok").respond(json={"ok": True})
    assert httpx.get("https://api.example.org/ok").json() == {"ok": True}
    assert fal_client.run(APP, arguments=ARGS)["video"]
"""
        )
    )
    result = inner.runpytest()
    result.assert_outcomes(passed=3, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_swallowed_escape_fails_at_teardown*",
            "*requests to hosts that are not fal's were stopped*",
            "  GET http://169.254.169.254/latest",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*UnmockedHostError: fal_mock: GET https://api.example.org/v1/things was stopped: "
            "'api.example.org' is not one of fal's hosts*Mock that host on fal_mock.router*"
        ]
    )
    # The failed test is not also reported at teardown: its failure already says it.
    assert "ERROR at teardown of test_raised_where_sent" not in result.stdout.str()


def test_handle_knobs(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        module(
            """
from contracts.faults import FaultPlan

def test_policy_and_clock(fal_mock):
    fal_mock.set_policy("virtual")
    handle = fal_client.submit(APP, arguments=ARGS)
    assert isinstance(handle.status(), fal_client.Queued)
    assert fal_mock.advance(3600) >= 3600
    assert isinstance(handle.status(), fal_client.Completed)

def test_seed_fixes_request_ids(fal_mock):
    fal_mock.set_seed(7)
    first = fal_client.submit(APP, arguments=ARGS).request_id
    fal_mock.set_seed(7)
    assert fal_mock.request_ids == []
    assert fal_client.submit(APP, arguments=ARGS).request_id == first
    fal_mock.set_seed(8)
    assert fal_client.submit(APP, arguments=ARGS).request_id != first

def test_engine(fal_mock):
    fal_mock.set_engine("placeholder")
    assert fal_mock.engine.config.engine == "placeholder"
    with pytest.raises(ValueError, match="unknown engine"):
        fal_mock.set_engine("gpu")

def test_reset(fal_mock):
    fal_mock.set_policy("polls:3")
    fal_client.submit(APP, arguments=ARGS)
    fal_mock.reset()
    assert fal_mock.request_ids == [] and fal_mock.journal == []
    assert str(fal_mock.engine.config.policy) == "polls:3"

def test_history_of_an_unknown_request(fal_mock):
    with pytest.raises(KeyError, match="no request"):
        fal_mock.history("nope")

def test_faults(fal_mock):
    submit = "https://queue.fal.run/fal-ai/lipsync"
    auth = {"Authorization": "Key k"}
    fal_mock.set_faults({"rules": [{"kind": "rate_limited", "times": 1}]})
    assert httpx.post(submit, json=ARGS, headers=auth).status_code == 429
    assert httpx.post(submit, json=ARGS, headers=auth).status_code == 200
    fal_mock.set_faults('{"rules": [{"kind": "conflict"}]}')
    assert httpx.post(submit, json=ARGS, headers=auth).status_code == 409
    fal_mock.set_faults(None)
    assert fal_mock.engine.faults.plan == FaultPlan()
    assert httpx.post(submit, json=ARGS, headers=auth).status_code == 200
"""
        )
    )
    inner.runpytest().assert_outcomes(passed=6)


def test_alongside_respx_mock(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        module(
            """
def test_both_routers(fal_mock, respx_mock):
    respx_mock.get("https://api.example.org/ok").respond(json={"ok": True})
    assert httpx.get("https://api.example.org/ok").json() == {"ok": True}
    assert fal_client.run(APP, arguments=ARGS)["video"]["file_size"] > 0
    assert fal_mock.escaped == []  # the other router answered: not an escape
"""
        )
    )
    inner.runpytest().assert_outcomes(passed=1)
