"""``fal-mock`` as a user runs it: a real process, its banner, its errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mock_server.cli import main
from tests.conftest import AUTH, LIPSYNC_INPUT

FAL_MOCK = shutil.which("fal-mock") or ""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``fal-mock serve --port 0 --tls`` in a subprocess: (base URL, banner)."""
    env = {**os.environ, "FAL_MOCK_POLICY": "immediate", "FAL_MOCK_SEED": "5"}
    command = [FAL_MOCK, "serve", "--port", "0", "--tls", "--tls-dir", str(tmp_path)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:  # the banner ends with the JS snippet's last line
            lines.append(line)
            if "proxyUrl" in line:
                break
        banner = "".join(lines)
        match = re.search(r"serving fal-ai/lipsync at (https://127\.0\.0\.1:\d+)", banner)
        assert match, banner
        yield match.group(1), banner
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.skipif(not FAL_MOCK, reason="the fal-mock script is not installed")
def test_serve_prints_working_configuration(served: tuple[str, str], tmp_path: Path) -> None:
    base_url, banner = served
    assert "policy=immediate seed=5" in banner  # settings from FAL_MOCK_* env
    assert f"export FAL_RUN_HOST={base_url.split('://')[1]}/run" in banner
    assert "export SSL_CERT_FILE=" in banner
    assert f'proxyUrl: {{ url: "{base_url}/api/fal/proxy", when: "always" }}' in banner
    bundle = re.search(r"export SSL_CERT_FILE=(\S+)", banner)
    assert bundle is not None
    trust = ssl.create_default_context(cafile=bundle.group(1))
    with httpx.Client(verify=trust, headers=AUTH, timeout=5) as client:
        for _ in range(100):  # uvicorn binds a moment after the banner
            try:
                response = client.post(f"{base_url}/queue/fal-ai/lipsync", json=LIPSYNC_INPUT)
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        assert response.status_code == 200
        status = client.get(response.json()["status_url"]).json()
        assert status["status"] == "COMPLETED"  # immediate, from the environment


def test_invalid_settings_exit_2_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--policy", "sometimes", "--port", "0"]) == 2
    assert "unknown progression policy 'sometimes'" in capsys.readouterr().err


def test_openapi_check_passes_on_the_committed_file() -> None:
    assert main(["openapi", "--check"]) == 0


def test_module_entry_point_shows_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mock_server.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0
    assert "serve" in done.stdout and "openapi" in done.stdout


@pytest.fixture(scope="module")
def synced_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.mock_server.lipsync.test_syncscore import media, render_test_clip

    speech = media("speech.wav")
    path = tmp_path_factory.mktemp("syncscore") / "synced.mp4"
    return render_test_clip(path, drive=speech, mux=speech)


def test_syncscore_passes_a_synced_clip(
    synced_clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expect = ["--expect-fps", "25", "--expect-size", "360x360", "--expect-duration", "4"]
    assert main(["syncscore", str(synced_clip), *expect]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "size" in out and "lag +0" in out


def test_syncscore_json_and_exit_1_on_a_failing_clip(
    synced_clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same clip, held to a size it does not have.
    assert main(["syncscore", str(synced_clip), "--json", "--expect-size", "640x480"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is False and report["structure_ok"] is False
    assert report["best_lag"] == 0 and report["score"] >= 0.8
    assert report["reasons"] == ["structure: size"]


def test_syncscore_exit_2_on_unreadable_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    assert main(["syncscore", str(text)]) == 2
    assert "not decodable media" in capsys.readouterr().err
    assert main(["syncscore", str(tmp_path / "missing.mp4")]) == 2
    assert "No such file" in capsys.readouterr().err


def test_syncscore_rejects_a_malformed_size(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["syncscore", "clip.mp4", "--expect-size", "640by480"])
    assert exited.value.code == 2
    assert "expected WIDTHxHEIGHT" in capsys.readouterr().err


def test_serve_refuses_a_tracker_backend_that_is_not_installed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mock_server.lipsync.backends import available_backends

    if "landmarks" in available_backends():
        pytest.skip("the landmarks extra is installed")
    args = ["serve", "--engine", "reference", "--lipsync-backend", "landmarks", "--port", "0"]
    assert main(args) == 2
    assert 'pip install "fal-lipsync-mock[landmarks]"' in capsys.readouterr().err
