"""Mouth-tracking backends for pass 1 of the reference lip-sync, by name.

``haar`` (the default, `face.MouthTracker`) needs only the OpenCV 4.x wheel. ``landmarks``
(`landmarks.LandmarkTracker`, dlib's 68 points) is an opt-in extra, because the model's training
data excludes commercial use; it is imported only when asked for, so the package works without it.
"""

from __future__ import annotations

import importlib.util
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from mock_server.lipsync.face import MouthGeometry, MouthTracker

__all__ = [
    "LANDMARKS_MISSING",
    "TRACKER_BACKENDS",
    "BackendUnavailable",
    "Tracker",
    "available_backends",
    "make_tracker",
]

TRACKER_BACKENDS: Final = ("haar", "landmarks")

# The distributions (and their import names) the landmarks backend needs.
_LANDMARK_MODULES: Final = ("dlib", "face_recognition_models")

LANDMARKS_MISSING: Final = (
    'The "landmarks" mouth tracker needs the optional extra: '
    'pip install "fal-lipsync-mock[landmarks]" (dlib-bin and face_recognition_models). '
    "Its 68-point model was trained on iBUG 300-W, whose licence excludes commercial use; "
    'the default "haar" tracker has no such restriction.'
)


class BackendUnavailable(ValueError):
    """A known backend whose optional dependencies are not installed."""


class Tracker(Protocol):
    """Streaming pass 1, the shape of `face.MouthTracker`.

    `update` takes each decoded BGR (or grey) frame in order and returns its raw geometry;
    `finish` returns the smoothed, gap-bridged track, one entry per frame (None: no face).
    """

    def update(self, frame: npt.NDArray[np.uint8], /) -> MouthGeometry | None: ...

    def finish(self) -> list[MouthGeometry | None]: ...


def _missing_landmark_modules() -> list[str]:
    # find_spec looks without importing: listing backends costs nothing, even with dlib present.
    return [name for name in _LANDMARK_MODULES if importlib.util.find_spec(name) is None]


def available_backends() -> tuple[str, ...]:
    """The backends whose dependencies are installed, in `TRACKER_BACKENDS` order."""
    missing = bool(_missing_landmark_modules())
    return tuple(name for name in TRACKER_BACKENDS if name != "landmarks" or not missing)


def make_tracker(backend: str) -> Tracker:
    """A fresh tracker for one clip.

    Raises `BackendUnavailable` (a ValueError) for "landmarks" without its extra, and ValueError
    for an unknown name.
    """
    if backend == "haar":
        return MouthTracker()
    if backend != "landmarks":
        known = ", ".join(repr(name) for name in TRACKER_BACKENDS)
        raise ValueError(f"unknown mouth-tracking backend {backend!r}; known: {known}")
    missing = _missing_landmark_modules()
    if missing:
        raise BackendUnavailable(f"{LANDMARKS_MISSING} Missing: {', '.join(missing)}.")
    try:
        from mock_server.lipsync.landmarks import LandmarkTracker

        return LandmarkTracker()
    except (ImportError, FileNotFoundError) as error:
        # Installed but unusable (a broken wheel, a model file gone): same remedy.
        raise BackendUnavailable(f"{LANDMARKS_MISSING} ({error})") from error
