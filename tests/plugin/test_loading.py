"""Loading the plugin: the entry point, and nothing heavy imported until a fixture is used."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from contracts.operations import PROXY_PATH
from mock_server.targets import PROXY_SUFFIX, Target, TargetError

HEAVY = ("fastapi", "starlette", "respx", "httpx", "uvicorn", "pydantic", "av", "cv2", "numpy")


def test_registered_as_pytest11_entry_point() -> None:
    (entry,) = [e for e in entry_points(group="pytest11") if e.name == "fal_mock"]
    assert entry.value == "mock_server.pytest_plugin"


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, json; before = set(sys.modules); import mock_server.pytest_plugin; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    # pytest is imported first: the plugin's own cost is what comes on top of it.
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import pytest; " + code],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(done.stdout)
    heavy = sorted({name.split(".")[0] for name in loaded} & set(HEAVY))
    assert heavy == [], f"loading the plugin imported {heavy}"
    assert "mock_server.pytest_plugin" in loaded
    assert not any(name.startswith("contracts") for name in loaded)
    own = [line for line in done.stderr.splitlines() if "mock_server" in line]
    cumulative_us = max(int(line.split("|")[1]) for line in own)
    assert cumulative_us < 50_000, own


def test_proxy_suffix_is_the_contracts_proxy_path() -> None:
    assert PROXY_SUFFIX == PROXY_PATH


@pytest.mark.parametrize(
    ("text", "kind", "url"),
    [
        (None, "inprocess", ""),
        ("", "inprocess", ""),
        ("fal", "fal", ""),
        (" FAL ", "fal", ""),
        ("http://127.0.0.1:8000/", "mock", "http://127.0.0.1:8000"),
        ("https://mock.internal/base", "mock", "https://mock.internal/base"),
        ("http://localhost:3000/api/fal/proxy", "proxy", "http://localhost:3000/api/fal/proxy"),
    ],
)
def test_targets_parse(text: str | None, kind: str, url: str) -> None:
    target = Target.parse(text)
    assert (target.kind, target.url) == (kind, url)


def test_target_control_plane_urls() -> None:
    assert Target.parse("http://h:1/base").control_url == "http://h:1/base/_mock"
    assert Target.parse("http://h:1/x/api/fal/proxy").control_url == "http://h:1/x/_mock"
    assert Target.parse("fal").control_url is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ftp://host/x", "expected 'fal' or an http"),
        ("localhost:8000", "expected 'fal' or an http"),
        ("https://queue.fal.run", "pass 'fal'"),
        ("https://rest.alpha.fal.ai/", "pass 'fal'"),
    ],
)
def test_bad_targets_say_what_to_pass(text: str, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        Target.parse(text)
