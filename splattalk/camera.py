"""The camera convention every package shares: OpenCV pinhole cameras.

``viewmat`` [4, 4] maps world to camera (x right, y down, z forward); ``K`` [3, 3]
has the focal length in pixels on both axes (square pixels) and pixel centres at
+0.5, so the principal point of a W×H image is (W/2, H/2). A field of view is
always converted to a focal length along a named side (:func:`focal_from_fov`);
nothing takes "a FOV" without saying which side it spans.
"""

from __future__ import annotations

import math

import numpy as np


def intrinsics(focal: float, width: int, height: int) -> np.ndarray:
    """K [3, 3] (float64): focal length ``focal`` in pixels, principal point at the image centre."""
    return np.array([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])


def focal_from_fov(fov_deg: float, side: float) -> float:
    """Focal length in pixels that spans ``fov_deg`` degrees across ``side`` pixels (the width for a
    horizontal field of view, the height for a vertical one)."""
    return 0.5 * side / math.tan(math.radians(fov_deg) / 2)


def fov_from_focal(focal: float, side: float) -> float:
    """Field of view in degrees across a side of ``side`` pixels."""
    return math.degrees(2 * math.atan(side / (2 * focal)))


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray | tuple = (0.0, 1.0, 0.0)) -> np.ndarray:
    """OpenCV world→camera matrix [4, 4] (float64) for a camera at ``eye`` [3] looking at ``target`` [3]
    (world y up)."""
    forward = np.asarray(target, float) - np.asarray(eye, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, float))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rot = np.stack([right, down, forward])
    view = np.eye(4)
    view[:3, :3] = rot
    view[:3, 3] = -rot @ np.asarray(eye, float)
    return view
