"""Small run folders in the layout `splattalk track` writes (frames/, masks/, tracking/tracks.npz), filled with
seeded random content, so exports can be checked without running the tracker."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from splattalk.atomic import save_npz
from splattalk.camera import intrinsics
from splattalk.tracking import camera


def make_run(
    root: Path,
    head_model: str = "flame2023",
    num_frames: int = 7,
    size: int = 40,
    num_shape: int = 300,
    num_expr: int = 100,
    num_vertices: int = 5023,
    seed: int = 0,
    masks: bool = True,
) -> Path:
    rng = np.random.default_rng(seed)
    (root / "frames").mkdir(parents=True)
    (root / "tracking").mkdir()
    if masks:
        (root / "masks").mkdir()
    for t in range(num_frames):
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "frames" / f"{t:06d}.jpg"), image)
        if masks:
            cv2.imwrite(str(root / "masks" / f"{t:06d}.png"), rng.integers(0, 256, (size, size), dtype=np.uint8))
    viewmat = camera.fixed_viewmat(0.6)
    angle = 0.2  # a camera turned about y and shifted, so every axis of the convention matters
    turn = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    viewmat[:3, :3] = viewmat[:3, :3] @ turn
    viewmat[:3, 3] += [0.01, -0.02, 0.03]

    def per_frame(width):
        return rng.normal(0, 0.1, (num_frames, width)).astype(np.float32)

    save_npz(
        root / "tracking" / "tracks.npz",
        expr=per_frame(num_expr),
        jaw=per_frame(3),
        neck=per_frame(3),
        rot=per_frame(3),
        transl=per_frame(3),
        eyes=per_frame(6),
        shape=rng.normal(0, 1, num_shape).astype(np.float32),
        static_offset=rng.normal(0, 1e-3, (num_vertices, 3)).astype(np.float32),
        K=intrinsics(55.0, size, size).astype(np.float32),
        viewmat=viewmat.astype(np.float32),
        width=np.int32(size),
        height=np.int32(size),
        fps=np.float32(25),
        head_model=np.str_(head_model),
    )
    return root
