"""The jaw-drop warp: identity where it must be, a dark gap that grows with openness, no seam."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest

from mock_server.lipsync.face import FaceBox, MouthGeometry
from mock_server.lipsync.render import OPEN_RATIO, render_mouth

Image = npt.NDArray[np.uint8]

MOUTH = MouthGeometry(
    centre_x=160.0,
    centre_y=150.0,
    width=60.0,
    angle=0.0,
    chin_distance=40.0,
    face=FaceBox(100.0, 60.0, 120.0, 120.0),
    source="locator",
)


def _skin(seed: int = 1) -> Image:
    """A textured face-coloured frame, so a warp changes pixels wherever it moves them."""
    rng = np.random.default_rng(seed)
    base = np.array([120, 150, 200], dtype=np.float64)
    noise = rng.normal(0, 12, size=(240, 320, 1))
    ramp = np.linspace(-20, 20, 320)[None, :, None]
    return np.clip(base + noise + ramp, 0, 255).astype(np.uint8)


def _dark_pixels(image: Image) -> int:
    return int((image.max(axis=2) < 90).sum())


def test_no_mouth_returns_the_same_array() -> None:
    frame = _skin()
    assert render_mouth(frame, None, 1.0) is frame


@pytest.mark.parametrize("openness", [0.0, 0.01, float("nan")])
def test_closed_or_invalid_openness_leaves_the_frame_untouched(openness: float) -> None:
    frame = _skin()
    assert render_mouth(frame, MOUTH, openness) is frame


def test_gap_grows_with_openness() -> None:
    frame = _skin()
    counts = [_dark_pixels(render_mouth(frame, MOUTH, o)) for o in (0.2, 0.5, 1.0)]
    assert _dark_pixels(frame) == 0
    assert 0 < counts[0] < counts[1] < counts[2]
    # The widest gap (dark interior plus the teeth band) is OPEN_RATIO x width at the centre.
    opened = render_mouth(frame, MOUTH, 1.0)
    column = opened[:, int(MOUTH.centre_x)]
    # Skin here is 80 levels redder than blue everywhere; the interior and teeth are not.
    interior = column[:, 2].astype(int) - column[:, 0].astype(int) < 55
    assert abs(int(interior.sum()) - OPEN_RATIO * MOUTH.width) <= 2


def test_input_is_not_modified_and_far_pixels_are_unchanged() -> None:
    frame = _skin()
    before = frame.copy()
    opened = render_mouth(frame, MOUTH, 1.0)
    assert np.array_equal(frame, before)
    changed = np.argwhere((opened != frame).any(axis=2))
    # Everything that changed lies within the warp's support around the mouth.
    assert changed[:, 1].min() >= MOUTH.centre_x - MOUTH.width
    assert changed[:, 1].max() <= MOUTH.centre_x + MOUTH.width
    assert changed[:, 0].min() >= MOUTH.centre_y - 0.5 * MOUTH.width
    assert changed[:, 0].max() <= MOUTH.centre_y + MOUTH.chin_distance + 0.5 * MOUTH.width


def test_no_seam_at_the_region_border() -> None:
    """Displacement fades to zero: pixels near the support's edge barely move."""
    frame = _skin()
    opened = render_mouth(frame, MOUTH, 1.0).astype(int)
    ring_top = int(MOUTH.centre_y - 0.4 * MOUTH.width) - 1
    ring_bottom = int(MOUTH.centre_y + MOUTH.chin_distance + 0.45 * MOUTH.width) + 1
    for row in (ring_top, ring_bottom):
        assert np.abs(opened[row] - frame[row].astype(int)).max() <= 2


def test_tilted_mouth_opens_along_its_own_axis() -> None:
    frame = _skin()
    tilted = replace(MOUTH, angle=math.radians(18))
    opened = render_mouth(frame, tilted, 1.0)
    dark = np.argwhere(opened.max(axis=2) < 90)
    ys, xs = dark[:, 0].astype(float), dark[:, 1].astype(float)
    # The gap's long axis follows the mouth: its slope is close to tan(18 degrees).
    slope = np.polyfit(xs, ys, 1)[0]
    assert abs(math.degrees(math.atan(slope)) - 18) < 6


def test_mouth_at_the_frame_edge_does_not_fail() -> None:
    frame = _skin()
    edge = replace(MOUTH, centre_x=2.0, centre_y=236.0)
    assert render_mouth(frame, edge, 1.0).shape == frame.shape


def test_deterministic() -> None:
    frame = _skin()
    assert np.array_equal(render_mouth(frame, MOUTH, 0.7), render_mouth(frame, MOUTH, 0.7))
