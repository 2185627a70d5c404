"""The optional landmark mouth tracker: dlib's HOG face detector and 68-point shape predictor.

Pass 1 of the reference lip-sync (LIPSYNC.md, method step 2), like `face.MouthTracker`, with the
mouth read off facial landmarks instead of a Haar box and the lips' colour: the prototype's
landmark-driven renders were the best synced (LIPSYNC.md). Per frame: find the face (near the
previous face first, on a downscaled grey region), fit the 68 points on the full-resolution frame,
and build the same `MouthGeometry`; over the clip, `face.smooth_track` smooths and bridges gaps.

Opt-in, for its licence: the 68-point model shipped by `face_recognition_models` was trained on
the iBUG 300-W data set, whose terms exclude commercial use. Installing the extra
(``pip install "fal-lipsync-mock[landmarks]"``: `dlib-bin` and `face_recognition_models`) is a
choice to accept that; the default Haar tracker needs neither. `backends.make_tracker` is the
way in, and says what to install when the extra is missing.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import dlib
import numpy as np
import numpy.typing as npt

from mock_server.lipsync.face import FULL_SEARCH_EVERY, MouthGeometry, search_box, smooth_track
from mock_server.lipsync.mouth import FaceBox, as_image

__all__ = [
    "LandmarkDetector",
    "LandmarkTracker",
    "geometry_from_landmarks",
    "shape_model_path",
    "track_mouths_landmarks",
]

# dlib's frontal detector slides an 80x80 HOG window over a pyramid that only shrinks the image:
# a face smaller than ~80 px in the searched image is never found. The full-frame search runs on
# a grey image no larger than this on its long side (faces from an eighth of it up are found).
DETECTION_LONG_SIDE = 640
# Near the previous face the region is scaled so that face is this wide: one pyramid level above
# the window, so the cost of tracking does not grow with the resolution.
ROI_FACE_PIXELS = 88
# Above this previous roll (radians, ~8°), the landmarks are fitted on the face turned upright.
UPRIGHT_FIT_ROLL = 0.14

_MODEL_PACKAGE = "face_recognition_models"
_MODEL_FILE = "shape_predictor_68_face_landmarks.dat"

# The iBUG 68-point indices used here.
_CHIN = 8
_MOUTH_LEFT, _MOUTH_RIGHT = 48, 54  # outer mouth corners, image left then image right
_INNER_LIPS = slice(60, 68)

Image = npt.NDArray[np.uint8]


def shape_model_path() -> Path:
    """The 68-point model file inside the installed `face_recognition_models` package.

    Found without importing the package: its ``__init__`` imports ``pkg_resources``, which warns
    on recent setuptools (an error under ``-W error``) and is missing where setuptools is not
    installed (the default for Python 3.12+ virtual environments).
    """
    spec = importlib.util.find_spec(_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"No module named {_MODEL_PACKAGE!r}", name=_MODEL_PACKAGE)
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / _MODEL_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(f"{_MODEL_FILE} is missing from the installed {_MODEL_PACKAGE}")


@functools.cache
def _shape_model(path: Path) -> Any:
    """The predictor, loaded once per process: parsing the 100 MB file takes about a second.

    Sharing it is safe: dlib documents that one shape_predictor may be used from several
    threads at once ("No synchronization is required", shape_predictor_abstract.h). The HOG
    detector is not documented so; each `LandmarkDetector` has its own.
    """
    return dlib.shape_predictor(str(path))


class LandmarkDetector:
    """HOG face search (ROI first) and the 68-point fit; one instance per thread or process."""

    def __init__(self, model_path: Path | None = None) -> None:
        self._faces = dlib.get_frontal_face_detector()
        self._shape = _shape_model(model_path or shape_model_path())

    def find(
        self, gray: Image, search_hint: FaceBox | None, full_search: bool = False
    ) -> tuple[list[FaceBox], bool]:
        """Face candidates, largest first, and whether any was found near the hint.

        The whole frame is searched when there is no hint, when the hint finds nothing, or on
        request (`full_search`, to notice a larger face arriving).
        """
        near = [] if search_hint is None else self._search_near(gray, search_hint)
        if near and not full_search:
            return near, True
        height, width = gray.shape
        scale = min(1.0, DETECTION_LONG_SIDE / max(height, width))
        everywhere = self._search(gray, 0, 0, scale)
        return sorted(near + everywhere, key=_size_order), bool(near)

    def measure(self, gray: Image, face: FaceBox, roll_hint: float = 0.0) -> MouthGeometry:
        """The mouth of `face` from its 68 landmarks, fitted on the full-resolution frame.

        `roll_hint` (radians, clockwise positive) is the head's roll in the previous frame.
        Beyond ~30° of roll the model, trained on mostly upright faces, fits a plausible but
        wrong face; so past `UPRIGHT_FIT_ROLL` the fit is done on the face turned upright by
        the hint, and the points are turned back.
        """
        if abs(roll_hint) <= UPRIGHT_FIT_ROLL:
            points = self._fit(gray, face)
        else:
            cx, cy = face.centre
            side = round(2 * max(face.width, face.height))
            turn = cv2.getRotationMatrix2D((cx, cy), math.degrees(roll_hint), 1.0)
            to_upright = np.asarray(turn, dtype=np.float64)
            to_upright[:, 2] += np.array([side / 2 - cx, side / 2 - cy])
            upright = as_image(cv2.warpAffine(gray, to_upright, (side, side)))
            corner_x, corner_y = side / 2 - face.width / 2, side / 2 - face.height / 2
            box = FaceBox(corner_x, corner_y, face.width, face.height)
            back = np.asarray(cv2.invertAffineTransform(to_upright), dtype=np.float64)
            points = self._fit(upright, box) @ back[:, :2].T + back[:, 2]
        return geometry_from_landmarks(points, face)

    def detect(
        self,
        frame: Image,
        search_hint: FaceBox | None = None,
        roll_hint: float = 0.0,
        full_search: bool = False,
    ) -> MouthGeometry | None:
        """The mouth of the largest face in one frame, or None without a face. Not smoothed.

        `search_hint` and `roll_hint` (radians) are the previous frame's face and roll, if any.
        """
        gray = frame if frame.ndim == 2 else as_image(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
        candidates, near_hint = self.find(gray, search_hint, full_search)
        if not candidates:
            return None
        # A face found afresh owes nothing to the previous one.
        return self.measure(gray, candidates[0], roll_hint if near_hint else 0.0)

    def _fit(self, gray: Image, face: FaceBox) -> npt.NDArray[np.float64]:
        """The 68 landmarks as (x, y) rows, in the pixels of `gray`."""
        box = dlib.rectangle(
            round(face.x),
            round(face.y),
            round(face.x + face.width) - 1,
            round(face.y + face.height) - 1,
        )
        shape = self._shape(_packed(gray), box)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def _search_near(self, gray: Image, hint: FaceBox) -> list[FaceBox]:
        box = search_box(hint, gray.shape[1], gray.shape[0])
        if box is None:
            return []
        x0, y0, x1, y1 = box
        scale = min(1.0, ROI_FACE_PIXELS / hint.width)
        return self._search(gray[y0:y1, x0:x1], x0, y0, scale)

    def _search(self, gray: Image, offset_x: int, offset_y: int, scale: float) -> list[FaceBox]:
        if scale != 1.0:
            gray = as_image(
                cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            )
        rectangles = self._faces(_packed(gray), 0)
        faces = [
            FaceBox(
                offset_x + r.left() / scale,
                offset_y + r.top() / scale,
                r.width() / scale,
                r.height() / scale,
            )
            for r in rectangles
        ]
        return sorted(faces, key=_size_order)


def _packed(gray: Image) -> Image:
    # dlib ignores numpy strides: a crop of a larger frame is read as garbage (silently: no face
    # is found), so anything not C-contiguous is copied first.
    return np.ascontiguousarray(gray)


def _size_order(face: FaceBox) -> tuple[float, float, float]:
    # Largest area first; ties broken by position so the order never depends on the detector's.
    return (-face.width * face.height, face.y, face.x)


def geometry_from_landmarks(points: npt.NDArray[np.float64], face: FaceBox) -> MouthGeometry:
    """`MouthGeometry` from the 68 (x, y) landmarks of one face, in frame pixels.

    Lip-line centre: the mean of the inner-lip points. Width: between the mouth corners. Angle:
    of the corner line, clockwise positive (image y points down), as the Haar tracker's roll.
    Chin distance: from the lip line to the chin point along the face's down axis.
    """
    centre = points[_INNER_LIPS].mean(axis=0)
    left, right = points[_MOUTH_LEFT], points[_MOUTH_RIGHT]
    across = right - left
    width = float(math.hypot(*across))
    angle = math.atan2(float(across[1]), float(across[0]))
    down = np.array([-math.sin(angle), math.cos(angle)])
    chin = float(np.dot(points[_CHIN] - centre, down))
    return MouthGeometry(
        centre_x=float(centre[0]),
        centre_y=float(centre[1]),
        width=width,
        angle=angle,
        # A chin fitted above the lips (a hand over the jaw) would invert the warp: keep a floor,
        # the one the Haar locator uses.
        chin_distance=max(chin, 0.15 * face.height),
        face=face,
        source="locator",
    )


class LandmarkTracker:
    """Streaming pass 1: `update` per frame (raw landmarks), `finish` for the smoothed track."""

    def __init__(self, model_path: Path | None = None) -> None:
        self._detector = LandmarkDetector(model_path)
        self._raw: list[MouthGeometry | None] = []

    def update(self, frame: Image) -> MouthGeometry | None:
        previous = self._raw[-1] if self._raw else None
        hint = previous.face if previous is not None else None
        # A full-frame search every so often, so a larger face entering the picture is noticed
        # while the ROI keeps finding the old one.
        full_search = len(self._raw) % FULL_SEARCH_EVERY == 0
        roll = previous.angle if previous is not None else 0.0
        geometry = self._detector.detect(frame, hint, roll, full_search)
        self._raw.append(geometry)
        return geometry

    def finish(self) -> list[MouthGeometry | None]:
        return smooth_track(self._raw)


def track_mouths_landmarks(frames: Iterable[Image]) -> list[MouthGeometry | None]:
    """Smoothed landmark mouth geometry for every frame; None where no face is within reach."""
    tracker = LandmarkTracker()
    for frame in frames:
        tracker.update(frame)
    return tracker.finish()
