"""A tiny tracked run folder with known parameters, for the fitting tests (imported by tests/avatar/test_avatar_fit.py).

The default head is rendered (textured mesh, z-buffered) with a little jaw, smile
and head motion into ``frames/``, its coverage into ``masks/``, and the true
parameters are written as ``tracking/tracks.npz`` — a "perfect tracker" run.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from splattalk.camera import focal_from_fov, intrinsics, look_at
from splattalk.head.default import EXPR_NAMES, load_default_head, load_texture
from splattalk.head.raster import render_mesh
from splattalk.run import RunLayout, Tracks

BACKGROUND = np.array([0.7, 0.72, 0.75])


def make_tiny_run(root: Path, num_frames: int = 16, size: int = 64, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    head = load_default_head()
    t = np.linspace(0, 1, num_frames)
    expr = np.zeros((num_frames, head.num_expr), np.float32)
    expr[:, EXPR_NAMES.index("smile")] = 0.5 + 0.5 * np.sin(2 * np.pi * t)
    expr[:, EXPR_NAMES.index("mouth_open")] = 0.3 * (1 + np.sin(6 * t))
    jaw = np.zeros((num_frames, 3), np.float32)
    jaw[:, 0] = 0.12 * (1 + np.sin(5 * t))
    rot = np.stack([0.1 * np.sin(3 * t), 0.3 * np.sin(2 * np.pi * t), 0.03 * np.cos(4 * t)], 1).astype(np.float32)
    zeros3 = np.zeros((num_frames, 3), np.float32)
    params = dict(
        expr=expr, jaw=jaw, neck=zeros3, rot=rot, transl=zeros3.copy(), eyes=np.zeros((num_frames, 6), np.float32)
    )
    shape = np.clip(rng.normal(0, 0.5, head.num_shape), -1, 1).astype(np.float32)
    K = intrinsics(focal_from_fov(25.0, size), size, size)
    viewmat = look_at(np.array([0.0, 0.01, 0.62]), np.array([0.0, -0.012, -0.03]))
    with torch.no_grad():
        verts = head(
            shape=torch.from_numpy(shape),
            **{
                ("rotation" if k == "rot" else "translation" if k == "transl" else k): torch.from_numpy(v)
                for k, v in params.items()
            },
        ).vertices.numpy()
    texture = load_texture()
    for i, v in enumerate(verts):
        r = render_mesh(
            v,
            head.faces_np,
            viewmat,
            K,
            size,
            size,
            texture=texture,
            uvs=head.uvs.numpy(),
            uv_faces=head.uv_faces.numpy(),
            shading=0.5,
            background=(0, 0, 0),
            supersample=2,
        )
        rgb = r.rgb + BACKGROUND * (1 - r.alpha[..., None])
        (root / "frames").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(
            str(root / "frames" / f"{i:06d}.jpg"),
            (np.clip(rgb, 0, 1)[:, :, ::-1] * 255 + 0.5).astype(np.uint8),
            [cv2.IMWRITE_JPEG_QUALITY, 98],
        )
        cv2.imwrite(str(root / "masks" / f"{i:06d}.png"), (r.alpha * 255 + 0.5).astype(np.uint8))
    Tracks(
        **params,
        shape=shape,
        K=K.astype(np.float32),
        viewmat=viewmat.astype(np.float32),
        width=size,
        height=size,
        fps=25.0,
        head_model=head.model_id,
    ).save(RunLayout(root).tracks)
    return root
