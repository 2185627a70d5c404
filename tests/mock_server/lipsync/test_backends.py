"""The mouth-tracking backend registry, with and without the optional ``landmarks`` extra.

Absence is simulated by a None entry in sys.modules (what ``import`` and ``find_spec`` treat as
"not importable"), so these run the same whether or not dlib is installed.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from mock_server.lipsync import backends
from mock_server.lipsync.backends import (
    TRACKER_BACKENDS,
    BackendUnavailable,
    available_backends,
    make_tracker,
)
from mock_server.lipsync.face import MouthTracker

EXTRA_INSTALLED = all(
    importlib.util.find_spec(name) is not None for name in ("dlib", "face_recognition_models")
)


def test_names() -> None:
    assert TRACKER_BACKENDS == ("haar", "landmarks")
    assert available_backends()[0] == "haar"
    assert set(available_backends()) <= set(TRACKER_BACKENDS)


def test_haar_is_the_face_module_tracker() -> None:
    tracker = make_tracker("haar")
    assert isinstance(tracker, MouthTracker)
    blank = np.zeros((120, 160, 3), dtype=np.uint8)
    assert tracker.update(blank) is None
    assert tracker.finish() == [None]


def test_unknown_backend_is_a_plain_value_error() -> None:
    with pytest.raises(ValueError, match="'mediapipe'") as caught:
        make_tracker("mediapipe")
    assert not isinstance(caught.value, BackendUnavailable)
    assert "'haar', 'landmarks'" in str(caught.value)


@pytest.mark.parametrize("module", ["dlib", "face_recognition_models"])
def test_missing_extra_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    assert available_backends() == ("haar",)
    with pytest.raises(BackendUnavailable) as caught:
        make_tracker("landmarks")
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert 'pip install "fal-lipsync-mock[landmarks]"' in message
    assert "commercial" in message and "iBUG 300-W" in message
    assert module in message.partition("Missing: ")[2]


def test_broken_install_gives_the_same_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Both distributions present (or pretended so), yet the module cannot be imported.
    monkeypatch.setattr(backends, "_missing_landmark_modules", list)
    monkeypatch.setitem(sys.modules, "mock_server.lipsync.landmarks", None)
    assert "landmarks" in available_backends()
    with pytest.raises(BackendUnavailable, match=r"fal-lipsync-mock\[landmarks\]") as caught:
        make_tracker("landmarks")
    assert isinstance(caught.value.__cause__, ImportError)


@pytest.mark.skipif(not EXTRA_INSTALLED, reason="the landmarks extra is not installed")
def test_landmarks_when_installed() -> None:
    from mock_server.lipsync.landmarks import LandmarkTracker

    assert available_backends() == ("haar", "landmarks")
    tracker = make_tracker("landmarks")
    assert isinstance(tracker, LandmarkTracker)
    blank = np.zeros((120, 160, 3), dtype=np.uint8)
    assert tracker.update(blank) is None
    assert tracker.finish() == [None]
