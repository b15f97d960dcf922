"""One square crop for the whole clip, around the head and its range of motion.

A single crop keeps one pinhole camera for every frame (the avatar fit needs a
fixed camera); it is computed from robust statistics of the per-frame face boxes
(temporally smoothed, percentiles rather than extremes), so a few bad
detections cannot move or inflate it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from splattalk.tracking.smooth import gaussian_smooth, interpolate_missing


@dataclass(frozen=True)
class Crop:
    """Square region of the source frame (pixels) mapped onto a ``size``² output frame."""

    x0: float
    y0: float
    side: float
    size: int

    @property
    def scale(self) -> float:
        return self.size / self.side

    def to_output(self, points: np.ndarray) -> np.ndarray:
        """Source pixel coordinates [..., 2] → output pixel coordinates."""
        return (points - np.array([self.x0, self.y0])) * self.scale

    def to_source(self, points: np.ndarray) -> np.ndarray:
        return points / self.scale + np.array([self.x0, self.y0])

    def apply(
        self, image: np.ndarray, border: str = "replicate", pre_scale: tuple[float, float] = (1.0, 1.0)
    ) -> np.ndarray:
        """The output frame [size, size, C]; outside the source, edge pixels are repeated (or zeros).
        ``pre_scale``: (x, y) factors by which ``image`` was already downscaled from the source frame."""
        return warp_square(image, self.x0, self.y0, self.scale, self.size, border, pre_scale)

    def as_array(self) -> np.ndarray:
        return np.array([self.x0, self.y0, self.side], dtype=np.float64)


def warp_square(
    image: np.ndarray,
    x0: float,
    y0: float,
    scale: float,
    size: int,
    border: str = "constant",
    pre_scale: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """Resample ``image`` so that output = (source - (x0, y0)) × scale, in continuous pixel coordinates
    (pixel centres at +0.5, as the camera model and mediapipe use). Strong downscales are
    area-averaged first so the result does not alias. ``pre_scale``: the (x, y) factors by which
    ``image`` was already downscaled from the source the coordinates refer to (decoded small)."""
    import cv2

    sx, sy = float(pre_scale[0]), float(pre_scale[1])
    factor = int(np.floor(sx / scale)) if scale < sx else 1
    if factor > 1:
        h, w = image.shape[:2]
        small = cv2.resize(image, (max(w // factor, 1), max(h // factor, 1)), interpolation=cv2.INTER_AREA)
        sx, sy = sx * small.shape[1] / w, sy * small.shape[0] / h
        image = small
    ax, ay = scale / sx, scale / sy
    bx, by = -x0 * scale, -y0 * scale
    # continuous → index coordinates: out_i + 0.5 = a (in_i + 0.5) + b
    matrix = np.array([[ax, 0.0, 0.5 * ax + bx - 0.5], [0.0, ay, 0.5 * ay + by - 0.5]])
    mode = cv2.BORDER_REPLICATE if border == "replicate" else cv2.BORDER_CONSTANT
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=mode)


def plan_crop(
    points: np.ndarray,
    found: np.ndarray,
    width: int,
    height: int,
    size: int,
    scale: float = 2.0,
    up: float = 0.15,
    smooth_frames: float = 5.0,
    fit_margin: float = 1.4,
) -> Crop:
    """The crop for landmark tracks ``points`` [T, N, 2+] (source pixels) of a ``width``×``height`` video.

    Per frame the face box (landmark extent) is grown to ``scale`` × its size and
    moved up by ``up`` × its size (hair); boxes are smoothed over time, and the crop
    covers the 2nd–98th percentile of their extents. It is kept inside the frame
    when it fits (shrunk to the frame if the face still fits ``fit_margin`` times),
    else centred on the face with replicated borders.
    """
    xy = interpolate_missing(points[..., :2], found)
    lo, hi = xy.min(1), xy.max(1)  # [T, 2]
    face = (hi - lo).max(1)
    centre = (lo + hi) / 2
    centre[:, 1] -= up * face
    centre = gaussian_smooth(centre, smooth_frames)
    face = gaussian_smooth(face, smooth_frames)
    half = scale * face / 2
    left = np.percentile(centre[:, 0] - half, 2)
    right = np.percentile(centre[:, 0] + half, 98)
    top = np.percentile(centre[:, 1] - half, 2)
    bottom = np.percentile(centre[:, 1] + half, 98)
    side = max(right - left, bottom - top)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    # A crop larger than the frame would show padding; shrink it to the frame while the
    # face still fits with a margin (the hair or neck may then be cut, never the face).
    fits = min(width, height)
    if side > fits >= fit_margin * np.percentile(face, 98):
        side = float(fits)
    x0, y0 = cx - side / 2, cy - side / 2
    if side <= width:
        x0 = min(max(x0, 0.0), width - side)
    if side <= height:
        y0 = min(max(y0, 0.0), height - side)
    return Crop(float(x0), float(y0), float(side), int(size))
