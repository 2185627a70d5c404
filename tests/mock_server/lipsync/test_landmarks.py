"""The optional landmark mouth tracker (dlib), against the committed talking-head clip.

Skipped without the ``landmarks`` extra (CI does not install it). Ground truth is the one
test_face.py uses: the mouth measured by eye on frame 0, carried to every face frame by ECC
registration; the Haar tracker is run on the same frames for a jitter comparison.
"""

from __future__ import annotations

import importlib.util
import math

import cv2
import numpy as np
import numpy.typing as npt
import pytest

pytest.importorskip("dlib")
# Looked up, not imported: the package's __init__ imports pkg_resources (a warning, an error here).
if importlib.util.find_spec("face_recognition_models") is None:
    pytest.skip("face_recognition_models (the landmarks extra) missing", allow_module_level=True)

from mock_server.lipsync.face import FaceBox, MouthGeometry, MouthTracker
from mock_server.lipsync.landmarks import (
    LandmarkDetector,
    LandmarkTracker,
    geometry_from_landmarks,
    track_mouths_landmarks,
)
from mock_server.lipsync.mouth import as_image
from tests.mock_server.lipsync.test_face import (
    CLIP,
    FACE_FRAMES,
    FRAME0_MOUTH,
    FRAME0_ROLL_DEGREES,
    POSITION_TOLERANCE,
    ROLL_TOLERANCE_DEGREES,
    _decode,
    _true_mouths,
    rolled,
)

Image = npt.NDArray[np.uint8]
Truth = tuple[float, float, float]

# Landmarks measured 3.5 px and 1.5° at worst on this clip (the Haar tracker: 11 px and 4.8°
# raw); these bounds leave room for other dlib builds, and stay well inside test_face.py's.
LANDMARK_POSITION_TOLERANCE = 6.0
LANDMARK_ROLL_TOLERANCE_DEGREES = 3.0


@pytest.fixture(scope="module")
def clip_frames() -> list[Image]:
    if not CLIP.exists():
        pytest.skip(f"{CLIP} missing")
    return _decode(CLIP)


@pytest.fixture(scope="module")
def clip_truths(clip_frames: list[Image]) -> list[Truth]:
    return _true_mouths(clip_frames)


@pytest.fixture(scope="module")
def raw_and_smooth(
    clip_frames: list[Image],
) -> tuple[list[MouthGeometry | None], list[MouthGeometry | None]]:
    tracker = LandmarkTracker()
    raw = [tracker.update(frame) for frame in clip_frames]
    return raw, tracker.finish()


def test_faces_found_exactly_on_face_frames(
    raw_and_smooth: tuple[list[MouthGeometry | None], list[MouthGeometry | None]],
) -> None:
    raw, smooth = raw_and_smooth
    for track in (raw, smooth):
        assert len(track) == 100
        assert all(g is not None for g in track[:FACE_FRAMES])
        assert all(g is None for g in track[FACE_FRAMES:])
    assert all(g.source == "locator" and not g.interpolated for g in smooth if g is not None)


def test_frame0_mouth_from_a_cold_start(clip_frames: list[Image]) -> None:
    geometry = LandmarkDetector().detect(clip_frames[0])
    assert geometry is not None
    x, y = FRAME0_MOUTH
    assert math.hypot(geometry.centre_x - x, geometry.centre_y - y) <= POSITION_TOLERANCE
    assert abs(math.degrees(geometry.angle) - FRAME0_ROLL_DEGREES) <= ROLL_TOLERANCE_DEGREES
    face = geometry.face
    assert face.x <= geometry.centre_x <= face.x + face.width
    assert face.y + face.height / 2 <= geometry.centre_y <= face.y + face.height * 1.1
    # Mouth corners at x 137 and 208 by eye: ~71 px; the landmark corners sit a little outside.
    assert 60 <= geometry.width <= 90
    assert 0.5 * geometry.width <= geometry.chin_distance <= 1.2 * geometry.width


def test_every_face_frame_matches_the_truth(
    clip_truths: list[Truth],
    raw_and_smooth: tuple[list[MouthGeometry | None], list[MouthGeometry | None]],
) -> None:
    for track in raw_and_smooth:
        for index, (geometry, (x, y, roll)) in enumerate(zip(track, clip_truths, strict=False)):
            assert geometry is not None
            error = math.hypot(geometry.centre_x - x, geometry.centre_y - y)
            assert error <= LANDMARK_POSITION_TOLERANCE, f"frame {index}: {error:.1f} px"
            roll_error = abs(math.degrees(geometry.angle) - roll)
            assert roll_error <= LANDMARK_ROLL_TOLERANCE_DEGREES, f"frame {index}: {roll_error}°"


def _jitter(track: list[MouthGeometry | None], truths: list[Truth]) -> float:
    """Mean frame-to-frame step of the position error (px): tracking noise, not motion or bias."""
    xy = np.array([(g.centre_x, g.centre_y) for g in track[: len(truths)] if g is not None])
    error = xy - np.array(truths)[:, :2]
    return float(np.hypot(*np.diff(error, axis=0).T).mean())


def test_steadier_than_the_haar_tracker(
    clip_frames: list[Image],
    clip_truths: list[Truth],
    raw_and_smooth: tuple[list[MouthGeometry | None], list[MouthGeometry | None]],
) -> None:
    haar = MouthTracker()
    haar_raw = [haar.update(frame) for frame in clip_frames[:FACE_FRAMES]]
    landmarks_raw, landmarks_smooth = raw_and_smooth
    # Measured: 0.40 px against 1.60 px raw, 0.08 against 0.14 smoothed.
    assert _jitter(landmarks_raw, clip_truths) < 0.5 * _jitter(haar_raw, clip_truths)
    assert _jitter(landmarks_smooth, clip_truths) <= _jitter(haar.finish(), clip_truths)


def test_grey_frames(clip_frames: list[Image], clip_truths: list[Truth]) -> None:
    grey = [as_image(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)) for f in clip_frames[:20]]
    for geometry, (x, y, _) in zip(track_mouths_landmarks(grey), clip_truths, strict=False):
        assert geometry is not None
        assert math.hypot(geometry.centre_x - x, geometry.centre_y - y) <= 6.0


def test_crop_of_a_larger_frame(clip_frames: list[Image]) -> None:
    # dlib ignores numpy strides: a non-contiguous view must still be read as the image it is.
    canvas = np.zeros((600, 600, 3), dtype=np.uint8)
    canvas[100:460, 150:510] = clip_frames[0]
    view = canvas[50:500, 100:560]
    assert not view.flags.c_contiguous
    whole = LandmarkDetector().detect(clip_frames[0])
    cropped = LandmarkDetector().detect(view)
    grey_view = as_image(cv2.cvtColor(canvas, cv2.COLOR_BGR2GRAY))[50:500, 100:560]
    cropped_grey = LandmarkDetector().detect(grey_view)
    assert whole is not None and cropped is not None and cropped_grey is not None
    for geometry in (cropped, cropped_grey):
        assert geometry.centre_x - 50 == pytest.approx(whole.centre_x, abs=1.0)
        assert geometry.centre_y - 50 == pytest.approx(whole.centre_y, abs=1.0)


def test_largest_face_wins(clip_frames: list[Image]) -> None:
    big = clip_frames[0]
    canvas = np.full((480, 640, 3), 128, dtype=np.uint8)
    canvas[60:420, 250:610] = big
    canvas[0:200, 0:200] = cv2.resize(big, (200, 200), interpolation=cv2.INTER_AREA)
    detector = LandmarkDetector()
    gray = as_image(cv2.cvtColor(canvas, cv2.COLOR_BGR2GRAY))
    candidates, _ = detector.find(gray, None)
    assert len(candidates) >= 2  # both faces, or the test would prove nothing
    geometry = detector.detect(canvas)
    assert geometry is not None
    assert geometry.face.x > 250 and geometry.face.width > 120
    assert geometry.centre_x > 250


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_head_tilting_to_40_degrees_stays_accurate(
    clip_frames: list[Image], direction: float
) -> None:
    # Past ~30° of roll a fit on the tilted face goes wrong without failing; the tracker fits on
    # the face turned upright by the previous roll, which holds up to where the detector stops.
    frame = clip_frames[0]
    upright = LandmarkDetector().detect(frame)
    assert upright is not None
    tracker = LandmarkTracker()
    for step in range(48):
        degrees = direction * 0.8 * step
        geometry = tracker.update(rolled(frame, (upright.centre_x, upright.centre_y), degrees))
        assert geometry is not None, f"lost at {degrees:.1f}°"
        truth = FRAME0_ROLL_DEGREES - degrees  # cv2 turns counter-clockwise for positive angles
        assert abs(math.degrees(geometry.angle) - truth) <= LANDMARK_ROLL_TOLERANCE_DEGREES
        moved = math.hypot(
            geometry.centre_x - upright.centre_x, geometry.centre_y - upright.centre_y
        )
        assert moved < 3.0


def test_geometry_from_synthetic_landmarks() -> None:
    # A face rolled 30° clockwise (image y down): mouth corners 60 px apart along the roll,
    # inner lips centred at (100, 200), chin 50 px further down the face's own axis.
    angle = math.radians(30.0)
    along = np.array([math.cos(angle), math.sin(angle)])
    down = np.array([-math.sin(angle), math.cos(angle)])
    centre = np.array([100.0, 200.0])
    points = np.zeros((68, 2))
    points[48], points[54] = centre - 30 * along, centre + 30 * along
    points[60:68] = centre + np.outer(np.arange(8) - 3.5, along)
    points[8] = centre + 50 * down + 7 * along  # sideways offset does not count
    geometry = geometry_from_landmarks(points, FaceBox(40.0, 100.0, 120.0, 120.0))
    assert (geometry.centre_x, geometry.centre_y) == pytest.approx((100.0, 200.0))
    assert geometry.width == pytest.approx(60.0)
    assert geometry.angle == pytest.approx(angle)
    assert geometry.chin_distance == pytest.approx(50.0)
    # A chin fitted above the lips is floored, never negative.
    points[8] = centre - 10 * down
    floored = geometry_from_landmarks(points, FaceBox(40.0, 100.0, 120.0, 120.0))
    assert floored.chin_distance == pytest.approx(0.15 * 120.0)


def test_same_frames_same_track(
    clip_frames: list[Image],
    raw_and_smooth: tuple[list[MouthGeometry | None], list[MouthGeometry | None]],
) -> None:
    assert track_mouths_landmarks(clip_frames) == raw_and_smooth[1]
