"""The default mouth tracker: Haar face box, mouth locator, temporal smoothing (OpenCV 4.x only).

Pass 1 of the reference lip-sync (LIPSYNC.md, method step 2). Per frame: find the face (near the
previous face first, on a downscaled grey image), then the mouth inside it (`mouth.py`). Over
the clip: smooth centre, width, roll and chin distance, bridge short gaps, and leave frames
without a face as None so the renderer passes them through untouched.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from mock_server.lipsync.mouth import (
    FaceBox,
    MouthInFace,
    MouthLocator,
    as_image,
    load_cascade,
)

__all__ = [
    "FaceBox",
    "FaceDetector",
    "MouthGeometry",
    "MouthTracker",
    "detect_mouth",
    "search_box",
    "smooth_track",
    "track_mouths",
]

# Face detection runs on a grey image no larger than this on its long side: a Haar pass costs
# roughly in proportion to the pixel count, and a face that matters for lip-sync is still well
# above the cascade's 24 px window at this size.
DETECTION_LONG_SIDE = 256
MIN_FACE_PIXELS = 24
# Near the previous face, the search image is scaled so that face is this wide.
ROI_FACE_PIXELS = 44
# Above this previous roll (radians, ~8°), a miss near the previous face is retried upright.
UPRIGHT_RETRY_ROLL = 0.14
# Gaps up to this many frames between two detections are interpolated; longer ones stay None.
MAX_BRIDGED_GAP = 3
# A full-frame search every so often, so a larger face entering the picture is not ignored while
# the ROI keeps finding the old one.
FULL_SEARCH_EVERY = 25

_MEDIAN_WINDOW = 5
_MEAN_WINDOW = 5


@dataclass(frozen=True, slots=True)
class MouthGeometry:
    """The mouth in one frame, in frame pixels; angles in radians (clockwise = positive)."""

    centre_x: float
    centre_y: float
    width: float
    angle: float
    chin_distance: float
    face: FaceBox
    # "locator": found from the lips; "proportions": fallback from the face box alone.
    source: Literal["locator", "proportions"]
    # True when the frame had no detection and the values were interpolated from neighbours.
    interpolated: bool = False


class FaceDetector:
    """Haar frontal-face search, ROI first; one instance per thread or process."""

    def __init__(self) -> None:
        self._faces = load_cascade("haarcascade_frontalface_default.xml")

    def find(
        self,
        gray: npt.NDArray[np.uint8],
        search_hint: FaceBox | None,
        roll_hint: float = 0.0,
        full_search: bool = False,
    ) -> tuple[list[FaceBox], bool]:
        """Face candidates, largest first, and whether any was found near the hint.

        The whole frame is searched when there is no hint, when the hint finds nothing, or on
        request (`full_search`, to notice a larger face arriving). `roll_hint` is the previous
        face's roll in radians.
        """
        near: list[FaceBox] = []
        if search_hint is not None:
            near = self._search_near(gray, search_hint, 0.0)
            # The frontal cascade gives up beyond ~17° of roll: look again with the region
            # turned upright by the previous roll, so a head that keeps tilting stays tracked.
            if not near and abs(roll_hint) > UPRIGHT_RETRY_ROLL:
                near = self._search_near(gray, search_hint, roll_hint)
        if near and not full_search:
            return near, True
        height, width = gray.shape
        scale = min(1.0, DETECTION_LONG_SIDE / max(height, width))
        small = gray if scale == 1.0 else _downscale(gray, scale)
        boxes = self._faces.detectMultiScale(
            small, scaleFactor=1.15, minNeighbors=4, minSize=(MIN_FACE_PIXELS, MIN_FACE_PIXELS)
        )
        everywhere = _largest_first(boxes, 0.0, 0.0, scale)
        merged = sorted(near + everywhere, key=lambda f: (-f.width * f.height, f.y, f.x))
        return merged, bool(near)

    def _search_near(
        self, gray: npt.NDArray[np.uint8], hint: FaceBox, roll: float
    ) -> list[FaceBox]:
        box = search_box(hint, gray.shape[1], gray.shape[0])
        if box is None:
            return []
        x0, y0, x1, y1 = box
        region = gray[y0:y1, x0:x1]
        # The expected face is brought to a fixed small size, so the cost of tracking does not
        # grow with the resolution; the mouth is measured on the full-resolution frame anyway.
        scale = min(1.0, ROI_FACE_PIXELS / hint.width)
        if scale != 1.0:
            region = _downscale(region, scale)
        size = hint.width * scale
        min_side = max(MIN_FACE_PIXELS, int(0.75 * size))
        max_side = max(min_side + 1, int(1.35 * size))
        turn = None
        if roll != 0.0:
            centre = (region.shape[1] / 2, region.shape[0] / 2)
            turn = cv2.getRotationMatrix2D(centre, math.degrees(roll), 1.0)
            region = as_image(cv2.warpAffine(region, turn, (region.shape[1], region.shape[0])))
        boxes = self._faces.detectMultiScale(
            region, scaleFactor=1.1, minNeighbors=4, minSize=(min_side, min_side),
            maxSize=(max_side, max_side),
        )  # fmt: skip
        if turn is not None:
            # Boxes found upright: put each box's centre back where it is in the tilted frame.
            back = cv2.invertAffineTransform(turn)
            rows = []
            for bx, by, bw, bh in np.asarray(boxes).reshape(-1, 4).tolist():
                cx, cy = back @ np.array([bx + bw / 2, by + bh / 2, 1.0])
                rows.append([round(cx - bw / 2), round(cy - bh / 2), bw, bh])
            boxes = rows
        return _largest_first(boxes, x0, y0, scale)


def search_box(hint: FaceBox, width: int, height: int) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` to search for the face seen at ``hint`` in the next frame, or None
    when too little of it is inside the frame. Half a face of margin on every side covers any
    plausible motion between two frames."""
    x0 = max(int(hint.x - 0.5 * hint.width), 0)
    y0 = max(int(hint.y - 0.5 * hint.height), 0)
    x1 = min(int(hint.x + 1.5 * hint.width), width)
    y1 = min(int(hint.y + 1.5 * hint.height), height)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    return x0, y0, x1, y1


def _downscale(gray: npt.NDArray[np.uint8], scale: float) -> npt.NDArray[np.uint8]:
    return as_image(cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))


def _largest_first(boxes: object, offset_x: float, offset_y: float, scale: float) -> list[FaceBox]:
    rows: list[list[int]] = np.asarray(boxes).reshape(-1, 4).tolist()
    # Largest area first; ties broken by position so the order never depends on the cascade's.
    rows.sort(key=lambda r: (-r[2] * r[3], r[1], r[0]))
    return [
        FaceBox(offset_x + x / scale, offset_y + y / scale, w / scale, h / scale)
        for x, y, w, h in rows
    ]


class _Models:
    """Cascades loaded once per process for the module-level convenience functions."""

    detector: FaceDetector | None = None
    locator: MouthLocator | None = None


def detect_mouth(
    frame_bgr_or_gray: npt.NDArray[np.uint8],
    search_hint: FaceBox | None = None,
    roll_hint: float = 0.0,
) -> MouthGeometry | None:
    """The mouth in one frame (largest face), or None without a face. Not smoothed.

    `search_hint` and `roll_hint` (radians) are the previous frame's face and roll, if any.
    """
    if _Models.detector is None or _Models.locator is None:
        _Models.detector, _Models.locator = FaceDetector(), MouthLocator()
    return _detect(_Models.detector, _Models.locator, frame_bgr_or_gray, search_hint, roll_hint)


def _detect(
    detector: FaceDetector,
    locator: MouthLocator,
    frame: npt.NDArray[np.uint8],
    search_hint: FaceBox | None,
    roll_hint: float,
    full_search: bool = False,
) -> MouthGeometry | None:
    gray = frame if frame.ndim == 2 else as_image(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    candidates, near_hint = detector.find(gray, search_hint, roll_hint, full_search)
    if not near_hint:
        roll_hint = 0.0  # a face found afresh owes nothing to the previous one
    chosen: tuple[FaceBox, MouthInFace] | None = None
    for face in candidates:
        mouth = locator.locate(frame, face, roll_hint)
        # The largest candidate that shows an eye or lips wins. Haar hits on background texture
        # (the astronaut photo's backdrop and shuttle produce some) show neither. A lone hit
        # where the previous face was is trusted as is: that is a face turning or blurring.
        if (near_hint and len(candidates) == 1) or mouth.eyes_found or mouth.source == "locator":
            chosen = (face, mouth)
            break
    if chosen is None:
        return None
    face, mouth = chosen
    return MouthGeometry(
        centre_x=mouth.centre_x,
        centre_y=mouth.centre_y,
        width=mouth.width,
        angle=mouth.angle,
        chin_distance=mouth.chin_distance,
        face=face,
        source=mouth.source,
    )


class MouthTracker:
    """Streaming pass 1: `update` per frame (raw detection), `finish` for the smoothed track."""

    def __init__(self) -> None:
        self._detector = FaceDetector()
        self._locator = MouthLocator()
        self._raw: list[MouthGeometry | None] = []

    def update(self, frame: npt.NDArray[np.uint8]) -> MouthGeometry | None:
        previous = self._raw[-1] if self._raw else None
        hint = previous.face if previous is not None else None
        roll = previous.angle if previous is not None else 0.0
        full_search = len(self._raw) % FULL_SEARCH_EVERY == 0
        geometry = _detect(self._detector, self._locator, frame, hint, roll, full_search)
        self._raw.append(geometry)
        return geometry

    def finish(self) -> list[MouthGeometry | None]:
        return smooth_track(self._raw)


def track_mouths(frames: Iterable[npt.NDArray[np.uint8]]) -> list[MouthGeometry | None]:
    """Smoothed mouth geometry for every frame; None where no face is within reach."""
    tracker = MouthTracker()
    for frame in frames:
        tracker.update(frame)
    return tracker.finish()


def smooth_track(raw: list[MouthGeometry | None]) -> list[MouthGeometry | None]:
    """Bridge gaps of ≤ MAX_BRIDGED_GAP frames, then smooth each run of faces on its own.

    A centred moving median removes single-frame outliers (a wrong lip blob, a face box that
    jumps), then a centred mean removes the remaining jitter; both are zero-phase, so the
    mouth does not lag behind the head. Runs are smoothed separately: nothing leaks across a
    face-less stretch, which stays None.
    """
    track = _bridge_gaps(raw)
    smoothed: list[MouthGeometry | None] = list(track)
    for start, stop in _runs(track):
        run = [g for g in track[start:stop] if g is not None]
        values = np.array([_values(g) for g in run])
        values = _centred(_centred(values, _MEDIAN_WINDOW, np.median), _MEAN_WINDOW, np.mean)
        for offset, (geometry, row) in enumerate(zip(run, values, strict=True)):
            smoothed[start + offset] = _with_values(
                geometry, row, geometry.face, geometry.source, geometry.interpolated
            )
    return smoothed


def _values(geometry: MouthGeometry) -> npt.NDArray[np.float64]:
    """The smoothed quantities, in the order `_with_values` takes them back."""
    g = geometry
    return np.array([g.centre_x, g.centre_y, g.width, g.angle, g.chin_distance])


def _with_values(
    geometry: MouthGeometry,
    row: npt.NDArray[np.float64],
    face: FaceBox,
    source: Literal["locator", "proportions"],
    interpolated: bool,
) -> MouthGeometry:
    centre_x, centre_y, width, angle, chin_distance = map(float, row)
    return replace(
        geometry,
        centre_x=centre_x,
        centre_y=centre_y,
        width=width,
        angle=angle,
        chin_distance=chin_distance,
        face=face,
        source=source,
        interpolated=interpolated,
    )


def _bridge_gaps(raw: list[MouthGeometry | None]) -> list[MouthGeometry | None]:
    """Linear interpolation across gaps of at most MAX_BRIDGED_GAP frames."""
    track = list(raw)
    known = [i for i, g in enumerate(raw) if g is not None]
    for before, after in itertools.pairwise(known):
        gap = after - before - 1
        first, last = raw[before], raw[after]
        if not 1 <= gap <= MAX_BRIDGED_GAP or first is None or last is None:
            continue
        # "locator" only if both ends were located: an interpolated mouth is no better.
        both_located = first.source == last.source == "locator"
        source: Literal["locator", "proportions"] = "locator" if both_located else "proportions"
        box_first = np.array([first.face.x, first.face.y, first.face.width, first.face.height])
        box_last = np.array([last.face.x, last.face.y, last.face.width, last.face.height])
        for step in range(1, gap + 1):
            t = step / (gap + 1)
            box = FaceBox(*map(float, box_first + (box_last - box_first) * t))
            row = _values(first) + (_values(last) - _values(first)) * t
            track[before + step] = _with_values(first, row, box, source, interpolated=True)
    return track


def _runs(track: list[MouthGeometry | None]) -> list[tuple[int, int]]:
    """[start, stop) index ranges of consecutive frames that have a geometry."""
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for index, geometry in enumerate([*track, None]):
        if geometry is not None and start is None:
            start = index
        elif geometry is None and start is not None:
            runs.append((start, index))
            start = None
    return runs


def _centred(
    values: npt.NDArray[np.float64],
    window: int,
    reduce: Callable[..., npt.NDArray[np.float64]],
) -> npt.NDArray[np.float64]:
    """Centred window per row; it shrinks symmetrically at the run's ends (no edge padding bias)."""
    half = window // 2
    out = np.empty_like(values)
    count = values.shape[0]
    for index in range(count):
        reach = min(half, index, count - 1 - index)
        out[index] = reduce(values[index - reach : index + reach + 1], axis=0)
    return out
