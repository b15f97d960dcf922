"""Cameras for showing an avatar: a fixed front view, an orbit, or the tracked video's own camera.

Used by offline export and by the live viewer's framing; the convention is :mod:`splattalk.camera`'s.
"""

from __future__ import annotations

import numpy as np

from splattalk.camera import focal_from_fov, intrinsics, look_at

CAMERA_KINDS = ("front", "orbit", "tracked")


def head_target(vertices: np.ndarray) -> tuple[np.ndarray, float]:
    """Where to aim at a head [V, 3] and the radius to frame: the skull and face down to just below the chin.

    The lowest quarter of the mesh's height (the neck, which head models carry down to the
    shoulders) is left out, and the radius is half the larger of the remaining height and the
    width, so a talking head fills the picture instead of a head on a long neck.
    """
    lo, hi = vertices.min(0), vertices.max(0)
    bottom = lo[1] + 0.25 * (hi[1] - lo[1])
    centre = 0.5 * (lo + hi)
    centre[1] = 0.5 * (bottom + hi[1])
    radius = 0.5 * float(max(hi[1] - bottom, hi[0] - lo[0]))
    return centre.astype(np.float32), radius


def front_view(
    vertices: np.ndarray, width: int, height: int, fov_deg: float = 18.0, azimuth_deg: float = 0.0, fill: float = 0.8
):
    """(viewmat [4, 4], K [3, 3]) float32: a camera in front of the head (optionally rotated about the vertical axis)
    framing it to ``fill`` of the image height; ``fov_deg`` is the vertical field of view."""
    target, radius = head_target(vertices)
    distance = radius / np.tan(np.radians(fov_deg) / 2) / fill
    a = np.radians(azimuth_deg)
    eye = target + distance * np.array([np.sin(a), 0.05, np.cos(a)])
    k = intrinsics(focal_from_fov(fov_deg, height), width, height)
    return look_at(eye, target).astype(np.float32), k.astype(np.float32)


def camera_path(
    kind: str, num_frames: int, rest_vertices: np.ndarray, width: int, height: int, tracked=None, fps: float = 25.0
):
    """Per-frame (viewmat [T, 4, 4], K [T, 3, 3]).

    front: fixed, in front of the rest-pose head; orbit: ±35° around it, one
    cycle every 8 s; tracked: the tracked video's camera (``tracked`` = (viewmat, K, w, h)),
    with K rescaled to the output size.
    """
    if kind == "tracked":
        if tracked is None:
            raise ValueError("the tracked camera needs the run's tracks")
        viewmat, k, w, h = tracked
        k = np.asarray(k, np.float32).copy()
        k[0] *= width / w
        k[1] *= height / h
        return np.repeat(np.asarray(viewmat, np.float32)[None], num_frames, 0), np.repeat(k[None], num_frames, 0)
    views, ks = [], []
    for i in range(num_frames):
        az = 35.0 * np.sin(2 * np.pi * i / (8.0 * fps)) if kind == "orbit" else 0.0
        v, k = front_view(rest_vertices, width, height, azimuth_deg=az)
        views.append(v)
        ks.append(k)
    return np.stack(views), np.stack(ks)
