"""Locate the mouth inside a detected face box (OpenCV 4.x only).

A Haar face box jitters and says where the mouth is only by proportion, which is what made the
prototype's Haar-only render weak (LIPSYNC.md). Here the face is first brought upright and to a
canonical size (roll from the eyes cascade), then the mouth is found in the lower face from the
lips themselves: redness (a* in Lab) outlines them, or the smile cascade when colour does not
help (grey frames), and the darkness profile across them gives the lip line. Proportions of the
face box are only the fallback, and are marked as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

# Every measurement is done on a face resampled to this width, so the cost per frame and the
# meaning of the thresholds do not depend on the input resolution.
CANONICAL_FACE_WIDTH = 120
EYE_SEARCH_FACE_WIDTH = 100

# Where the mouth and chin sit in a Haar frontal-face box (measured on the astronaut photo and
# typical of the cascade): the lip line at 83 % of the box height, the chin ~11 % below the box.
PROPORTIONAL_MOUTH_Y = 0.83
PROPORTIONAL_MOUTH_WIDTH = 0.42
PROPORTIONAL_CHIN_Y = 1.12

# The lower-face window searched for the lips, as fractions of the face box.
_LOWER_FACE_X = (0.15, 0.85)
_LOWER_FACE_Y = (0.62, 1.02)
# The upper-face window searched for the eyes.
_EYES_Y = (0.15, 0.58)

# The stubs of opencv-python do not declare the `cv2.data` submodule the wheel ships.
_CASCADE_DIR: str = cv2.data.haarcascades  # type: ignore[attr-defined]

Image = npt.NDArray[np.uint8]


def as_image(array: object) -> Image:
    """OpenCV's stubs type results as any Mat; everything here is 8-bit, so say so once."""
    return np.asarray(array, dtype=np.uint8)


def load_cascade(file_name: str) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(_CASCADE_DIR + file_name)
    if cascade.empty():
        # OpenCV 5.x wheels ship no cascades: fail loudly rather than find no face anywhere.
        raise RuntimeError(f"OpenCV Haar cascade {file_name} is missing (needs opencv 4.x)")
    return cascade


@dataclass(frozen=True, slots=True)
class FaceBox:
    """An upright face rectangle in frame pixels (top-left corner and size)."""

    x: float
    y: float
    width: float
    height: float

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x + self.width / 2, self.y + self.height / 2)


@dataclass(frozen=True, slots=True)
class MouthInFace:
    """What the locator found, in frame pixels."""

    centre_x: float
    centre_y: float
    width: float
    angle: float
    chin_distance: float
    source: Literal["locator", "proportions"]
    # Eyes the eye cascade found in the upper face: tells a face from a face-like background.
    eyes_found: int


class MouthLocator:
    """Holds the eye and smile cascades; one instance per thread or process (not shareable)."""

    def __init__(self) -> None:
        self._eyes = load_cascade("haarcascade_eye.xml")
        self._smile = load_cascade("haarcascade_smile.xml")

    def locate(
        self, frame: npt.NDArray[np.uint8], face: FaceBox, roll_hint: float = 0.0
    ) -> MouthInFace:
        """The mouth in `face`; `roll_hint` (radians) is the head's roll in the previous frame."""
        gray = frame if frame.ndim == 2 else as_image(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
        scale = CANONICAL_FACE_WIDTH / face.width
        roll, eyes_found = self._roll_from_eyes(gray, face, roll_hint)
        # Canonical face: upright (rotated by -roll about the face centre) and 120 px wide, with
        # room below the box for the chin.
        canon_h = round(face.height * scale * 1.25)
        to_canon = _canonical_transform(face, scale, roll)
        canon_gray = as_image(cv2.warpAffine(gray, to_canon, (CANONICAL_FACE_WIDTH, canon_h)))
        canon_colour = None
        if frame.ndim == 3:
            canon_colour = as_image(
                cv2.warpAffine(frame, to_canon, (CANONICAL_FACE_WIDTH, canon_h))
            )
        found = self._find_lips(canon_gray, canon_colour, face.height * scale)
        face_h = face.height * scale
        if found is None:
            source: Literal["locator", "proportions"] = "proportions"
            cx, cy = CANONICAL_FACE_WIDTH / 2, PROPORTIONAL_MOUTH_Y * face_h
            width = PROPORTIONAL_MOUTH_WIDTH * CANONICAL_FACE_WIDTH
        else:
            source = "locator"
            cx, cy, width = found
        from_canon = cv2.invertAffineTransform(to_canon)
        frame_x, frame_y = from_canon @ np.array([cx, cy, 1.0])
        # The chin is not located (no reliable edge under a beard or a collar): keep the
        # proportion of the box, measured from the located lip line so the two stay consistent.
        chin = max(PROPORTIONAL_CHIN_Y * face_h - cy, 0.15 * face_h)
        return MouthInFace(
            centre_x=float(frame_x),
            centre_y=float(frame_y),
            width=width / scale,
            angle=roll,
            chin_distance=chin / scale,
            source=source,
            eyes_found=eyes_found,
        )

    def _roll_from_eyes(
        self, gray: npt.NDArray[np.uint8], face: FaceBox, roll_hint: float
    ) -> tuple[float, int]:
        """Roll in radians (positive = clockwise in image coordinates) and the number of eyes.

        The upper face is searched turned upright by `roll_hint`, so a head that tilts further
        and further keeps its eyes level for the cascade; without a pair of eyes the hint is
        kept (0 on a first detection).
        """
        # The eye cascade is the deepest one used here; at this face width the eyes are just
        # above its 20 px window, which keeps the search to a few scales.
        face_width = EYE_SEARCH_FACE_WIDTH
        scale = face_width / face.width
        to_upright = _canonical_transform(face, scale, roll_hint)
        to_upright[1, 2] -= _EYES_Y[0] * face.height * scale
        band_height = round((_EYES_Y[1] - _EYES_Y[0]) * face.height * scale)
        region = as_image(cv2.warpAffine(gray, to_upright, (face_width, band_height)))
        min_eye = round(0.2 * face_width)
        max_eye = round(0.4 * face_width)
        eyes = self._eyes.detectMultiScale(
            region, scaleFactor=1.15, minNeighbors=3, minSize=(min_eye, min_eye),
            maxSize=(max_eye, max_eye),
        )  # fmt: skip
        half = face_width / 2
        centres = [(ex + ew / 2, ey + eh / 2, ew) for ex, ey, ew, eh in eyes]
        left = [c for c in centres if c[0] < half]
        right = [c for c in centres if c[0] >= half]
        if not left or not right:
            return roll_hint, len(centres)
        # Of all left/right pairs, the one whose eyes are most alike in size and closest to level.
        best = min(
            ((a, b) for a in left for b in right),
            key=lambda pair: abs(pair[0][2] - pair[1][2]) + abs(pair[0][1] - pair[1][1]),
        )
        (lx, ly, _), (rx, ry, _) = best
        if rx - lx < 0.25 * face_width:
            return roll_hint, len(centres)
        residual = math.atan2(ry - ly, rx - lx)
        # Eyes 30° off the upright face mean a wrong pairing (an eyebrow, a nostril).
        if abs(residual) >= math.radians(30):
            return roll_hint, len(centres)
        return roll_hint + residual, len(centres)

    def _find_lips(
        self,
        gray: npt.NDArray[np.uint8],
        colour: npt.NDArray[np.uint8] | None,
        face_h: float,
    ) -> tuple[float, float, float] | None:
        """Lip-line centre (x, y) and mouth width in canonical pixels, or None."""
        w = CANONICAL_FACE_WIDTH
        x0, x1 = round(_LOWER_FACE_X[0] * w), round(_LOWER_FACE_X[1] * w)
        y0 = round(_LOWER_FACE_Y[0] * face_h)
        y1 = min(round(_LOWER_FACE_Y[1] * face_h), gray.shape[0])
        lower_gray = gray[y0:y1, x0:x1]
        if lower_gray.shape[0] < 8 or lower_gray.shape[1] < 8:
            return None
        # Lip colour first: it outlines the lips themselves and costs a fraction of a cascade.
        # The smile cascade is for grey frames and faces whose lips do not stand out in colour.
        lips = None if colour is None else _lip_mask(colour[y0:y1, x0:x1], None)
        if lips is not None:
            left, right, top, bottom = lips
        elif (box := self._smile_box(lower_gray)) is not None:
            left, top = box[0], box[1]
            right, bottom = box[0] + box[2], box[1] + box[3]
        else:
            return None
        width = float(right - left)
        if not 0.2 * w <= width <= 0.75 * w:
            return None
        line_y = _lip_line(lower_gray, left, right, top, bottom)
        return ((left + right) / 2 + x0, line_y + y0, width)

    def _smile_box(self, lower_gray: npt.NDArray[np.uint8]) -> tuple[int, int, int, int] | None:
        """The smile-cascade hit closest to where a mouth should be, or None."""
        height, width = lower_gray.shape
        hits = self._smile.detectMultiScale(
            lower_gray, scaleFactor=1.1, minNeighbors=8, minSize=(round(0.35 * width), 12),
            maxSize=(width, height),
        )  # fmt: skip
        if len(hits) == 0:
            return None
        expected = (width / 2, height * 0.5)
        best = min(
            hits,
            key=lambda r: abs(r[0] + r[2] / 2 - expected[0]) + abs(r[1] + r[3] / 2 - expected[1]),
        )
        return (int(best[0]), int(best[1]), int(best[2]), int(best[3]))


def _canonical_transform(face: FaceBox, scale: float, roll: float) -> npt.NDArray[np.float64]:
    """2x3 affine: frame → upright face scaled by `scale` (origin at the box's top-left)."""
    cx, cy = face.centre
    rotation = cv2.getRotationMatrix2D((cx, cy), math.degrees(roll), scale)
    rotation[0, 2] += face.width * scale / 2 - cx
    rotation[1, 2] += face.height * scale / 2 - cy
    return np.asarray(rotation, dtype=np.float64)


def _lip_mask(
    lower_bgr: npt.NDArray[np.uint8], smile_box: tuple[int, int, int, int] | None
) -> tuple[int, int, int, int] | None:
    """Left, right, top, bottom of the lips by redness, or None when no lip blob stands out."""
    lab = cv2.cvtColor(lower_bgr, cv2.COLOR_BGR2LAB)
    redness = cv2.GaussianBlur(lab[:, :, 1], (5, 5), 0).astype(np.float32)
    skin = float(np.median(redness))
    spread = float(np.percentile(redness, 95)) - skin
    if spread < 4:  # a* units: lips no redder than skin (grey frames, strong colour casts)
        return None
    mask = (redness > skin + 0.5 * spread).astype(np.uint8)
    count, _labels, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return None
    height, width = mask.shape
    expected_x, expected_y = width / 2, height / 2
    if smile_box is not None:
        expected_x = smile_box[0] + smile_box[2] / 2
        expected_y = smile_box[1] + smile_box[3] / 2
    # The lips: a wide blob near the expected centre; tiny specks and off-centre blobs lose.
    best_label, best_score = 0, -math.inf
    for label in range(1, count):
        blob_w, area = stats[label, cv2.CC_STAT_WIDTH], stats[label, cv2.CC_STAT_AREA]
        if area < 12 or blob_w < 0.15 * width:
            continue
        dx = (centroids[label][0] - expected_x) / width
        dy = (centroids[label][1] - expected_y) / height
        score = blob_w / width - 2.0 * math.hypot(dx, dy)
        if score > best_score:
            best_label, best_score = label, score
    if best_label == 0:
        return None
    left = int(stats[best_label, cv2.CC_STAT_LEFT])
    top = int(stats[best_label, cv2.CC_STAT_TOP])
    right = left + int(stats[best_label, cv2.CC_STAT_WIDTH])
    bottom = top + int(stats[best_label, cv2.CC_STAT_HEIGHT])
    return (left, right, top, bottom)


def _lip_line(gray: npt.NDArray[np.uint8], left: int, right: int, top: int, bottom: int) -> float:
    """Row of the lip line, from the darkness profile across the middle of the mouth.

    Closed lips meet in a dark seam; an open mouth is dark inside; a smile shows bright teeth
    between the upper lip and the dark gap above the lower lip. Taking the darkest row of the
    upper and of the lower half of the lip region and averaging them lands on the seam, the
    middle of the opening and the middle of the teeth respectively. A single darkest row would
    flip between the upper and the lower lip from frame to frame when teeth show.
    """
    mid_left = left + (right - left) // 4
    mid_right = max(right - (right - left) // 4, mid_left + 1)
    rows = gray[top:bottom, mid_left:mid_right].astype(np.float64).mean(axis=1)
    if rows.size < 4:
        return (top + bottom) / 2
    rows = np.convolve(rows, np.ones(3) / 3, mode="same")
    rows[0], rows[-1] = rows[1], rows[-2]  # the edge rows were averaged with zero padding
    half = rows.size // 2
    upper = int(np.argmin(rows[:half]))
    lower = half + int(np.argmin(rows[half:]))
    return top + (upper + lower) / 2 + 0.5
