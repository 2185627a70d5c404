"""Pass 2 of the reference lip-sync: open the mouth by a jaw-drop warp (LIPSYNC.md, step 3).

Everything happens in face-aligned coordinates around the lip line: ``u`` along the mouth (to
the image's right when the head is upright), ``v`` down the face, both in pixels, origin at the
lip-line centre. For openness ``o`` the gap between the lips is ``gap(u) = o * OPEN_RATIO *
width * lens(u)``, where ``lens`` is 1 at the centre and 0 at the mouth corners. The lower lip
and the jaw below it move down by most of the gap, the upper lip lifts by the rest; both moves
fade out towards the region's border, so the border maps to itself and no seam can show. The
warp is a backward map (output pixel -> source pixel) applied with ``cv2.remap``; the pixels
between the lips are painted as a shaded mouth interior with a soft upper-teeth band.

A frame is returned untouched (the same array) when it has no mouth or the gap would be under
half a pixel, so face-less frames leave the renderer exactly as they were decoded.

Limit: the warp can only open a mouth further. A mouth already open in the source cannot close
on silence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from mock_server.lipsync.face import MouthGeometry

__all__ = ["OPEN_RATIO", "MouthRenderer", "render_mouth"]

Image = npt.NDArray[np.uint8]
Grid = npt.NDArray[np.float32]

OPEN_RATIO: Final = 0.32
"""Widest gap between the lips, as a share of the mouth width (a wide-open vowel)."""
UPPER_LIFT: Final = 0.25
"""Share of the gap taken by lifting the upper lip; the jaw drops by the rest."""
JAW_HALF_WIDTH: Final = 0.85
"""Half-width of the moving jaw at the chin, in mouth widths (the lens widens downwards)."""
CHIN_FADE: Final = 0.45
"""Below the chin the drop fades to zero over this many mouth widths (the neck stays put)."""
UPPER_FADE: Final = 0.40
"""Above the lip line the lift fades to zero over this many mouth widths (below the nose)."""
MIN_GAP_PX: Final = 0.5
"""Below this gap (in pixels) the frame is left untouched: nothing visible would change."""
TEETH_HEIGHT: Final = 0.07
"""Upper-teeth band height, in mouth widths, never more than a third of the gap."""

# Mouth interior: a dark, slightly warm red-brown, darker towards the throat (BGR).
_INTERIOR_EDGE: Final = np.array([46.0, 40.0, 78.0], dtype=np.float32)
_INTERIOR_DEEP: Final = np.array([16.0, 12.0, 30.0], dtype=np.float32)
_TEETH: Final = np.array([205.0, 212.0, 222.0], dtype=np.float32)
_TEETH_OPACITY: Final = 0.75


@dataclass(frozen=True, slots=True)
class _Region:
    """The warped region: an axis-aligned box of the frame and its face-aligned coordinates."""

    x0: int
    y0: int
    u: Grid
    v: Grid


class MouthRenderer:
    """Renders frames one at a time; holds no state between frames, so it is safe to share."""

    def render(self, frame: Image, mouth: MouthGeometry | None, openness: float) -> Image:
        return render_mouth(frame, mouth, openness)


def render_mouth(frame: Image, mouth: MouthGeometry | None, openness: float) -> Image:
    """``frame`` with the mouth opened by ``openness`` in [0, 1]; a new array if changed."""
    if mouth is None or not math.isfinite(openness):
        return frame
    openness = min(max(openness, 0.0), 1.0)
    width = mouth.width
    gap_max = openness * OPEN_RATIO * width
    if gap_max < MIN_GAP_PX or width < 4:
        return frame
    region = _region(frame, mouth)
    if region is None:
        return frame

    u, v = region.u, region.v
    half_mouth = width / 2
    chin = max(mouth.chin_distance, 0.3 * width)
    # The lens: its half-width grows from the mouth corners at the lip line to the jaw at the
    # chin, and its profile is flat at the edge so the displacement has no kink at its edge.
    depth = np.clip(v / np.float32(chin), 0.0, 1.0)
    half_lens = half_mouth + (JAW_HALF_WIDTH * width - half_mouth) * depth
    lens = _lens_profile(np.clip(np.abs(u) / half_lens, 0.0, 1.0))
    lens_at_lips = _lens_profile(np.clip(np.abs(u) / np.float32(half_mouth), 0.0, 1.0))
    gap = np.float32(gap_max) * lens_at_lips

    drop_full = (1.0 - UPPER_LIFT) * gap_max
    lift_full = UPPER_LIFT * gap_max
    below_chin = np.clip((v - chin) / np.float32(CHIN_FADE * width), 0.0, 1.0)
    drop = np.float32(drop_full) * lens * (1.0 - _smoothstep(below_chin))
    above = np.clip(-v / np.float32(UPPER_FADE * width), 0.0, 1.0)
    lift = np.float32(lift_full) * lens_at_lips * (1.0 - _smoothstep(above))

    # Backward map. Output pixels under the lower lip's new edge read from `drop` higher up;
    # those above the upper lip's new edge read from `lift` lower down; the rest is the gap.
    lower_edge = np.float32(drop_full) * lens_at_lips
    upper_edge = -np.float32(lift_full) * lens_at_lips
    source_v = np.where(v >= lower_edge, v - drop, np.where(v <= upper_edge, v + lift, 0.0))
    map_x, map_y = _to_frame(mouth, u, source_v.astype(np.float32))
    height, region_width = u.shape
    out = frame.copy()
    patch = out[region.y0 : region.y0 + height, region.x0 : region.x0 + region_width]
    patch[...] = cv2.remap(
        frame, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )

    # The interior is a thin band of the region: shade and blend only the pixels it covers.
    interior = _interior_alpha(v, upper_edge, lower_edge, gap)
    rows, cols = np.nonzero(interior > 0)
    if rows.size:
        shaded = _interior_colour(
            v[rows, cols], upper_edge[rows, cols], lower_edge[rows, cols], np.float32(width)
        )
        alpha = interior[rows, cols][:, None]
        blended = patch[rows, cols].astype(np.float32) * (1.0 - alpha) + shaded * alpha
        patch[rows, cols] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out


def _region(frame: Image, mouth: MouthGeometry) -> _Region | None:
    """The frame box covering the warp's support, with u/v for each of its pixels."""
    width = mouth.width
    chin = max(mouth.chin_distance, 0.3 * width)
    half_u = JAW_HALF_WIDTH * width + 2
    top_v, bottom_v = -UPPER_FADE * width - 2, chin + CHIN_FADE * width + 2
    cos_a, sin_a = math.cos(mouth.angle), math.sin(mouth.angle)
    corners_x, corners_y = [], []
    for cu in (-half_u, half_u):
        for cv in (top_v, bottom_v):
            corners_x.append(mouth.centre_x + cu * cos_a - cv * sin_a)
            corners_y.append(mouth.centre_y + cu * sin_a + cv * cos_a)
    frame_h, frame_w = frame.shape[:2]
    x0, x1 = max(math.floor(min(corners_x)), 0), min(math.ceil(max(corners_x)) + 1, frame_w)
    y0, y1 = max(math.floor(min(corners_y)), 0), min(math.ceil(max(corners_y)) + 1, frame_h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    xs = np.arange(x0, x1, dtype=np.float32) - np.float32(mouth.centre_x)
    ys = np.arange(y0, y1, dtype=np.float32) - np.float32(mouth.centre_y)
    dx, dy = np.meshgrid(xs, ys)
    # Frame -> face axes: u along (cos, sin), v along (-sin, cos) (angle clockwise-positive).
    u = dx * np.float32(cos_a) + dy * np.float32(sin_a)
    v = -dx * np.float32(sin_a) + dy * np.float32(cos_a)
    return _Region(x0, y0, u.astype(np.float32), v.astype(np.float32))


def _to_frame(mouth: MouthGeometry, u: Grid, v: Grid) -> tuple[Grid, Grid]:
    cos_a, sin_a = np.float32(math.cos(mouth.angle)), np.float32(math.sin(mouth.angle))
    x = np.float32(mouth.centre_x) + u * cos_a - v * sin_a
    y = np.float32(mouth.centre_y) + u * sin_a + v * cos_a
    return x.astype(np.float32), y.astype(np.float32)


def _lens_profile(t: Grid) -> Grid:
    """1 at 0, 0 at 1: ``(1 - t²)^1.5`` is round like an open mouth yet meets 0 with zero slope
    (a kink there would show as a crease in the cheek)."""
    return np.power(1.0 - np.square(t), np.float32(1.5)).astype(np.float32)


def _smoothstep(t: Grid) -> Grid:
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def _interior_alpha(v: Grid, upper: Grid, lower: Grid, gap: Grid) -> Grid:
    """Coverage of the gap between the lips, feathered by one pixel so its edge is smooth."""
    inside = np.minimum(v - upper, lower - v) + 0.5
    alpha = np.clip(inside, 0.0, 1.0)
    # Where the gap is thinner than a pixel, fade it instead of drawing a hard line.
    return np.asarray(alpha * np.clip(gap, 0.0, 1.0), dtype=np.float32)


def _interior_colour(v: Grid, upper: Grid, lower: Grid, width: np.float32) -> Grid:
    """The mouth interior: darker in the middle of the gap, teeth along the upper lip."""
    span = np.maximum(lower - upper, np.float32(1e-3))
    t = np.clip((v - upper) / span, 0.0, 1.0)
    depth = (1.0 - np.abs(2.0 * t - 1.0))[..., None]
    colour = _INTERIOR_EDGE + (_INTERIOR_DEEP - _INTERIOR_EDGE) * depth
    teeth_height = np.minimum(np.float32(TEETH_HEIGHT) * width, span / 3.0)
    # Solid for most of the band, with a soft lower edge (a hard one would shimmer as it moves).
    soft = np.maximum(np.float32(0.35) * teeth_height, np.float32(1e-3))
    teeth = np.clip((upper + teeth_height - v) / soft, 0.0, 1.0)
    teeth = (_smoothstep(teeth) * np.float32(_TEETH_OPACITY))[..., None]
    return np.asarray(colour * (1.0 - teeth) + _TEETH * teeth, dtype=np.float32)
