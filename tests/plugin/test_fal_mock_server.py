"""``fal_mock_server``: the live mock for other clients, subprocesses and the JS client."""

from __future__ import annotations

import pytest

from tests.e2e.js_harness import JS_DIR, missing_prerequisite
from tests.plugin.conftest import module


def test_pointed_fal_client_and_plain_http(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        module(
            """
import urllib.request, json

def test_pointed(fal_mock_server):
    assert fal_mock_server.base_url.startswith("http://127.0.0.1:")
    with fal_mock_server.pointed() as urls:
        assert urls == fal_mock_server.urls
        out = fal_client.subscribe(APP, arguments=ARGS)
    assert out["video"]["url"].startswith(fal_mock_server.base_url + "/cdn/files/")
    assert fal_client.client.QUEUE_URL_FORMAT == "https://queue.fal.run/"  # put back
    (request_id,) = fal_mock_server.request_ids
    assert fal_mock_server.history(request_id)[-1].status == "COMPLETED"

def test_reset_between_tests_and_any_http_client(fal_mock_server):
    assert fal_mock_server.request_ids == [] and fal_mock_server.journal == []
    request = urllib.request.Request(
        fal_mock_server.base_url + "/queue/fal-ai/lipsync", data=json.dumps(ARGS).encode(),
        headers={"Authorization": "Key k", "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        assert json.load(answer)["status"] == "IN_QUEUE"
    assert [e.method for e in fal_mock_server.journal] == ["POST"]

@pytest.mark.fal_mock(policy="virtual", seed=9)
def test_marker_applies(fal_mock_server):
    config = fal_mock_server.engine.config
    assert (str(config.policy), config.seed) == ("virtual", 9)
    with fal_mock_server.pointed():
        handle = fal_client.submit(APP, arguments=ARGS)
        fal_mock_server.advance(3600)
        assert isinstance(handle.status(), fal_client.Completed)

async def test_async_client_pointed(fal_mock_server):
    with fal_mock_server.pointed():
        client = fal_client.AsyncClient()
        out = await client.run(APP, arguments=ARGS)
        await (await client._client).aclose()
    assert out["video"]["file_size"] > 0
"""
        )
    )
    inner.runpytest().assert_outcomes(passed=4)


def test_env_points_a_subprocess_fal_client(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        module(
            '''
import subprocess, sys, os

SCRIPT = """
import json, fal_client
out = fal_client.subscribe("fal-ai/lipsync", arguments={
    "video_url": "https://example.com/v.mp4", "audio_url": "https://example.com/a.mp3"})
print(json.dumps(out))
"""

def test_subprocess(fal_mock_server):
    env = fal_mock_server.env
    assert env["FAL_MOCK_BASE_URL"] == fal_mock_server.base_url
    assert env["FAL_RUN_HOST"].endswith("/run") and env["SSL_CERT_FILE"] == env[
        "NODE_EXTRA_CA_CERTS"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FAL_", "SSL_"))}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env={**clean, **env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # The TLS twin serves the same engine: the handle sees the subprocess's request.
    (request_id,) = fal_mock_server.request_ids
    assert fal_mock_server.history(request_id)[-1].status == "COMPLETED"
    assert all(e.request_headers["user-agent"].startswith("fal-client/")
               for e in fal_mock_server.journal if e.host == "queue")
'''
        )
    )
    inner.runpytest().assert_outcomes(passed=1)


@pytest.mark.node
@pytest.mark.skipif(missing_prerequisite() is not None, reason=str(missing_prerequisite()))
def test_js_client_with_the_given_config(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        module(
            f"""
import json, shutil, subprocess

def test_js(fal_mock_server):
    script = fal_mock_server.js_config + '''
const out = await fal.subscribe("fal-ai/lipsync", {{ input: {{
  video_url: "https://example.com/v.mp4", audio_url: "https://example.com/a.mp3" }} }});
console.log(JSON.stringify(out.data));
'''
    done = subprocess.run([shutil.which("node"), "--input-type=module", "-e", script],
                          cwd={str(JS_DIR)!r}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["video"]["url"].startswith(fal_mock_server.base_url)
    assert fal_mock_server.journal[0].request_headers["user-agent"].startswith("@fal-ai/client")
"""
        )
    )
    inner.runpytest().assert_outcomes(passed=1)


def test_both_fixtures_in_one_test(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        module(
            """
def test_both(fal_mock, fal_mock_server):
    # fal_mock stops requests to other hosts, but lets the plugin's own live mock through.
    with fal_mock_server.pointed():
        live = fal_client.run(APP, arguments=ARGS)
    assert httpx.get(live["video"]["url"]).content[4:8] == b"ftyp"
    routed = fal_client.run(APP, arguments=ARGS)
    assert routed["video"]["url"].startswith("https://v3.fal.media/")
    assert len(fal_mock_server.journal) == 2 and len(fal_mock.journal) == 1
    assert fal_mock.escaped == []
"""
        )
    )
    inner.runpytest().assert_outcomes(passed=1)
