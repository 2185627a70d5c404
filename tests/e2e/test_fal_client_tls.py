"""fal-client pointed at a TLS mock through the environment alone: no code, no patching."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mock_server.clients import tls_environment
from mock_server.settings import MockSettings
from mock_server.testing import LiveServer

SCRIPT = """
import json, fal_client
args = {"video_url": "https://example.com/v.mp4", "audio_url": "https://example.com/a.mp3"}
updates = []
out = fal_client.subscribe("fal-ai/lipsync", arguments=args, with_logs=True,
                           on_queue_update=lambda s: updates.append(type(s).__name__))
handle = fal_client.submit("fal-ai/lipsync", arguments=args)
status = type(fal_client.status("fal-ai/lipsync", handle.request_id)).__name__
ran = fal_client.run("fal-ai/lipsync", arguments=args)
print(json.dumps({"subscribe": out, "updates": updates, "status": status, "run": ran,
                  "status_url": handle.status_url}))
"""


@pytest.fixture
def tls_server(tmp_path: Path) -> LiveServer:
    settings = MockSettings(port=0, policy="polls:1", tls=True, tls_dir=tmp_path / "tls")
    server = LiveServer(settings).start()
    yield server  # type: ignore[misc]
    server.stop()


def run_client(
    env_overrides: dict[str, str], prelude: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAL_", "SSL_CERT"))}
    return subprocess.run(
        [sys.executable, "-c", prelude + SCRIPT],
        env={**env, **env_overrides},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_fal_client_through_environment_variables_only(
    tls_server: LiveServer, tmp_path: Path
) -> None:
    ca_bundle = tmp_path / "tls" / "ca-bundle.pem"
    assert ca_bundle.exists()
    env = tls_environment(tls_server.base_url, str(ca_bundle))
    assert env["FAL_RUN_HOST"].endswith("/run")
    done = run_client(env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["subscribe"]["video"]["content_type"] == "video/mp4"
    assert result["subscribe"]["video"]["url"].startswith(tls_server.base_url + "/cdn/files/")
    assert result["updates"][-1] == "Completed"
    assert result["status"] == "Queued"
    assert result["run"]["video"]["file_size"] > 0
    assert result["status_url"].startswith(f"https://127.0.0.1:{tls_server.port}/queue/")


def test_without_the_ca_the_client_refuses_the_mock(tls_server: LiveServer, tmp_path: Path) -> None:
    env = tls_environment(tls_server.base_url, str(tmp_path / "tls" / "ca-bundle.pem"))
    del env["SSL_CERT_FILE"]
    # fal-client retries transport errors 10 times with backoff (~50 s): once is enough here.
    done = run_client(env, prelude="import fal_client.client as c; c.MAX_ATTEMPTS = 1\n")
    assert done.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in done.stderr
