"""How far a driven avatar's mouth follows its driver: mediapipe's lip gap on videos and on head meshes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from splattalk.errors import SplattalkError
from splattalk.head.params import MOTION_FPS, HeadParams
from splattalk.tracking.landmarks import detect
from splattalk.tracking.video import iter_frames, open_source

MOUTH_LIPS = (13, 14)
"""mediapipe face-mesh inner upper and lower lip midpoints."""
MOUTH_EYES = (33, 263)
"""mediapipe outer eye corners: the scale the lip gap is divided by."""


def mouth_opening(points: np.ndarray) -> np.ndarray:
    """mediapipe landmarks ``[T, 478, 2+]`` → lip gap over eye-corner distance ``[T]`` (nan where not found)."""
    p = np.asarray(points, np.float64)[..., :2]
    gap = np.linalg.norm(p[:, MOUTH_LIPS[0]] - p[:, MOUTH_LIPS[1]], axis=-1)
    eyes = np.linalg.norm(p[:, MOUTH_EYES[0]] - p[:, MOUTH_EYES[1]], axis=-1)
    return gap / eyes


def mesh_mouth_opening(head, shape: np.ndarray, params: HeadParams) -> np.ndarray:
    """The same measure on a head model's embedded mediapipe landmarks ``[T]`` (3D, before any rendering)."""
    ids = [int(i) for i in np.asarray(head.lmk_ids)]
    with torch.no_grad():
        shape_t = torch.as_tensor(np.asarray(shape, np.float32))[None].expand(len(params), -1)
        landmarks = head(shape=shape_t, **params.torch_kwargs()).landmarks.numpy()
    need = (*MOUTH_LIPS, *MOUTH_EYES)
    if not set(need) <= set(ids):
        raise SplattalkError(f"head model {head.model_id} does not embed mediapipe landmarks {need}")
    full = np.full((len(params), max(ids) + 1, 3), np.nan)
    full[:, ids] = landmarks
    return mouth_opening(full)


def video_mouth_opening(video: Path, fps: float = MOTION_FPS, progress: bool = False) -> np.ndarray:
    """Mouth opening ``[T]`` of the largest face in ``video`` at ``fps`` (mediapipe face mesh)."""
    det = detect(iter_frames(open_source(video), fps), progress=progress)
    return np.where(det.found, mouth_opening(det.points), np.nan)


def correlation(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """Pearson r of two series over their common length, frames where both are finite; (r, frames used)."""
    n = min(len(a), len(b))
    a, b = np.asarray(a[:n], np.float64), np.asarray(b[:n], np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float("nan"), int(ok.sum())
    return float(np.corrcoef(a[ok], b[ok])[0, 1]), int(ok.sum())
