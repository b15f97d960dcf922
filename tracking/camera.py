"""The tracker's one fixed camera, and conversions between camera conventions (``K`` itself: :mod:`splattalk.camera`).

World = the head model's frame (metres, y up, +z where the face looks). The
camera sits on the +z axis at ``distance`` looking back at the origin, so the
head, moved per frame by its global rotation and translation, stays near the
world origin (as VHAP and GaussianAvatars expect). OpenCV convention: ``viewmat``
world→camera (x right, y down, z forward), ``K`` with pixel centres at +0.5.
"""

from __future__ import annotations

import numpy as np

FLIP_YZ = np.diag([1.0, -1.0, -1.0])
"""Rotation from the head-model frame (y up, z toward the camera) to OpenCV camera axes."""


def fixed_viewmat(distance: float) -> np.ndarray:
    """World→camera [4, 4] (OpenCV) of a camera at (0, 0, distance) looking at the origin."""
    view = np.eye(4)
    view[:3, :3] = FLIP_YZ
    view[2, 3] = distance
    return view


def project(points: np.ndarray, viewmat: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixel coordinates [..., 2] of world points [..., 3]."""
    cam = points @ viewmat[:3, :3].T + viewmat[:3, 3]
    return cam[..., :2] / cam[..., 2:3] * np.diag(K)[:2] + K[:2, 2]


def opengl_camera_to_world(viewmat: np.ndarray) -> np.ndarray:
    """Camera→world [4, 4] in the OpenGL/Blender convention (x right, y up, z back) used by
    nerfstudio's ``transform_matrix``: invert the OpenCV viewmat and flip its y and z axes."""
    c2w = np.linalg.inv(viewmat)
    c2w[:3, 1:3] *= -1
    return c2w
