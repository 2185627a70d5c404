"""The default mouth tracker against the committed talking-head fixture.

Ground truth without scikit-image: the face frames of the clip are all the astronaut photo under
small affine wobbles, so each frame's motion relative to frame 0 is recovered by ECC image
registration, and the mouth measured once by eye on frame 0 is carried along it.
"""

from __future__ import annotations

import math
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest

from mock_server.lipsync.examples import EXAMPLE_VIDEO_PATH
from mock_server.lipsync.face import (
    FaceBox,
    FaceDetector,
    MouthGeometry,
    MouthTracker,
    detect_mouth,
    smooth_track,
    track_mouths,
)
from mock_server.lipsync.mouth import as_image

CLIP = EXAMPLE_VIDEO_PATH
FACE_FRAMES = 75  # frames 0-74 show the face, 75-99 do not (fixtures/provenance.json)

# Measured by eye on frame 0 of the clip at 5x zoom: the lip line's centre (middle of the open
# smile between the mouth corners at x 137 and 208) and the roll of the mouth corners and eyes.
FRAME0_MOUTH = (172.5, 225.0)
FRAME0_ROLL_DEGREES = 4.0
POSITION_TOLERANCE = 12.0
ROLL_TOLERANCE_DEGREES = 6.0

Image = npt.NDArray[np.uint8]

needs_clip = pytest.mark.skipif(not CLIP.exists(), reason=f"{CLIP} missing")


def _decode(path: Path) -> list[Image]:
    with av.open(str(path)) as container:
        return [as_image(f.to_ndarray(format="bgr24")) for f in container.decode(video=0)]


def rolled(frame: Image, centre: tuple[float, float], degrees: float) -> Image:
    """``frame`` turned by ``degrees`` (counter-clockwise, as cv2) about ``centre``."""
    turn = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    size = (frame.shape[1], frame.shape[0])
    return as_image(cv2.warpAffine(frame, turn, size, borderMode=cv2.BORDER_REFLECT_101))


def _true_mouths(frames: list[Image]) -> list[tuple[float, float, float]]:
    """Per face frame: the mouth's (x, y) and roll in degrees, carried from frame 0 by ECC."""
    reference = cv2.cvtColor(frames[0], cv2.COLOR_BGR2GRAY).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 60, 1e-5)
    truths = []
    warp: npt.NDArray[np.float32] = np.eye(2, 3, dtype=np.float32)
    for frame in frames[:FACE_FRAMES]:
        moving = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
        # Start from the previous frame's warp: the wobble is smooth, so ECC converges fast.
        _, found = cv2.findTransformECC(reference, moving, warp, cv2.MOTION_AFFINE, criteria)
        warp = np.asarray(found, dtype=np.float32)
        x, y = warp.astype(np.float64) @ np.array([*FRAME0_MOUTH, 1.0])
        turn = math.degrees(math.atan2(float(warp[1, 0]), float(warp[0, 0])))
        truths.append((float(x), float(y), FRAME0_ROLL_DEGREES + turn))
    return truths


@pytest.fixture(scope="module")
def clip_frames() -> list[Image]:
    if not CLIP.exists():
        pytest.skip(f"{CLIP} missing")
    return _decode(CLIP)


@pytest.fixture(scope="module")
def clip_truths(clip_frames: list[Image]) -> list[tuple[float, float, float]]:
    return _true_mouths(clip_frames)


@pytest.fixture(scope="module")
def clip_track(clip_frames: list[Image]) -> list[MouthGeometry | None]:
    return track_mouths(clip_frames)


@needs_clip
def test_mouth_found_and_placed_on_face_frames(
    clip_truths: list[tuple[float, float, float]], clip_track: list[MouthGeometry | None]
) -> None:
    truths = clip_truths
    located = 0
    for geometry, (x, y, roll) in zip(clip_track, truths, strict=False):
        assert geometry is not None
        face = geometry.face
        assert face.y + face.height / 2 <= geometry.centre_y <= face.y + face.height * 1.1
        assert face.x <= geometry.centre_x <= face.x + face.width
        assert math.hypot(geometry.centre_x - x, geometry.centre_y - y) <= POSITION_TOLERANCE
        assert abs(math.degrees(geometry.angle) - roll) <= ROLL_TOLERANCE_DEGREES
        located += geometry.source == "locator"
    assert located >= 0.9 * len(truths)


@needs_clip
def test_grey_frames_use_the_smile_cascade(
    clip_frames: list[Image], clip_truths: list[tuple[float, float, float]]
) -> None:
    # Without colour there is no lip redness; the smile cascade has to find the mouth alone.
    grey = [as_image(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)) for f in clip_frames[:40]]
    truths = clip_truths[:40]
    track = track_mouths(grey)
    errors = []
    for geometry, (x, y, _) in zip(track, truths, strict=True):
        assert geometry is not None
        assert geometry.source == "locator"
        errors.append(math.hypot(geometry.centre_x - x, geometry.centre_y - y))
    assert max(errors) <= POSITION_TOLERANCE


@needs_clip
def test_faceless_frames_stay_none(clip_frames: list[Image]) -> None:
    tracker_input = clip_frames[60:]  # the face run's tail, then the 25 face-less frames
    track = track_mouths(tracker_input)
    assert all(g is not None for g in track[:15])
    assert all(g is None for g in track[15:])


@needs_clip
def test_largest_face_wins(clip_frames: list[Image]) -> None:
    big = clip_frames[0]
    canvas = np.full((480, 640, 3), 128, dtype=np.uint8)
    canvas[60:420, 250:610] = big
    small = cv2.resize(big, (200, 200), interpolation=cv2.INTER_AREA)
    canvas[0:200, 0:200] = small
    gray = as_image(cv2.cvtColor(canvas, cv2.COLOR_BGR2GRAY))
    # Both faces must be candidates, or the test would prove nothing.
    candidates, _ = FaceDetector().find(gray, None)
    assert len(candidates) >= 2
    geometry = detect_mouth(canvas, None)
    assert geometry is not None
    assert geometry.face.x > 250 and geometry.face.width > 120
    assert geometry.centre_x > 250


@needs_clip
@pytest.mark.parametrize("degrees", [15.0, -12.0])
def test_rolled_face_gives_roll(clip_frames: list[Image], degrees: float) -> None:
    frame = clip_frames[0]
    upright = detect_mouth(frame, None)
    assert upright is not None
    turn = cv2.getRotationMatrix2D((upright.centre_x, upright.centre_y), degrees, 1.0)
    rolled = as_image(cv2.warpAffine(frame, turn, (360, 360), borderMode=cv2.BORDER_REFLECT_101))
    geometry = detect_mouth(rolled, None)
    assert geometry is not None
    truth = FRAME0_ROLL_DEGREES - degrees  # cv2 turns counter-clockwise for positive angles
    assert abs(math.degrees(geometry.angle) - truth) <= ROLL_TOLERANCE_DEGREES
    # The mouth stays where it was: the rotation was about it.
    assert (
        math.hypot(geometry.centre_x - upright.centre_x, geometry.centre_y - upright.centre_y) < 8
    )


@needs_clip
@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_head_tilting_beyond_the_cascade_stays_tracked(
    clip_frames: list[Image], direction: float
) -> None:
    # From a cold start the frontal cascade finds this face up to ~17° of roll only; tracking
    # retries the search turned upright by the previous roll, so a gradual tilt to ~34° holds.
    frame = clip_frames[0]
    upright = detect_mouth(frame, None)
    assert upright is not None
    tracker = MouthTracker()
    for step in range(38):
        degrees = direction * 0.8 * step
        geometry = tracker.update(rolled(frame, (upright.centre_x, upright.centre_y), degrees))
        assert geometry is not None, f"lost at {degrees:.1f}°"
        truth = FRAME0_ROLL_DEGREES - degrees
        assert abs(math.degrees(geometry.angle) - truth) <= ROLL_TOLERANCE_DEGREES
        moved = math.hypot(
            geometry.centre_x - upright.centre_x, geometry.centre_y - upright.centre_y
        )
        assert moved < 8


def _shift(dx: float, dy: float) -> npt.NDArray[np.float64]:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])


@needs_clip
def test_smoothing_removes_jitter(clip_frames: list[Image]) -> None:
    rng = np.random.default_rng(7)
    frame = clip_frames[0]
    shifts = rng.integers(-3, 4, size=(30, 2))
    shaken = [
        as_image(cv2.warpAffine(frame, _shift(float(sx), float(sy)), (360, 360),
                                borderMode=cv2.BORDER_REFLECT_101))
        for sx, sy in shifts
    ]  # fmt: skip
    raw = [detect_mouth(f, None) for f in shaken]
    smooth = track_mouths(shaken)
    assert all(g is not None for g in raw) and all(g is not None for g in smooth)

    def step_spread(track: list[MouthGeometry | None]) -> float:
        xy = np.array([(g.centre_x, g.centre_y) for g in track if g is not None])
        return float(np.diff(xy, axis=0).std(axis=0).mean())

    assert step_spread(smooth) < 0.5 * step_spread(raw)


def _geometry(x: float) -> MouthGeometry:
    return MouthGeometry(
        centre_x=x,
        centre_y=100.0,
        width=40.0,
        angle=0.0,
        chin_distance=30.0,
        face=FaceBox(x - 50, 20.0, 100.0, 100.0),
        source="locator",
    )


def test_two_frame_gap_is_interpolated() -> None:
    raw: list[MouthGeometry | None] = [_geometry(100.0 + i) for i in range(6)]
    raw += [None, None]
    raw += [_geometry(108.0 + i) for i in range(6)]
    track = smooth_track(raw)
    assert all(g is not None for g in track)
    bridged = [g for g in track[6:8] if g is not None]
    assert [g.interpolated for g in bridged] == [True, True]
    assert [round(g.centre_x) for g in bridged] == [106, 107]


def test_ten_frame_gap_is_not_bridged() -> None:
    raw: list[MouthGeometry | None] = [_geometry(100.0) for _ in range(5)]
    raw += [None] * 10
    raw += [_geometry(200.0) for _ in range(5)]
    track = smooth_track(raw)
    assert all(g is None for g in track[5:15])
    # Nothing leaks across the gap either: each run keeps its own position.
    assert {g.centre_x for g in track[:5] if g is not None} == {100.0}
    assert {g.centre_x for g in track[15:] if g is not None} == {200.0}


@needs_clip
def test_same_frames_same_geometry(
    clip_frames: list[Image], clip_track: list[MouthGeometry | None]
) -> None:
    assert track_mouths(clip_frames) == clip_track
