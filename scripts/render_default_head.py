"""Render the default head in a few poses/expressions to docs/ (PNG), for a visual check.

python scripts/render_default_head.py [--out docs]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from splattalk.camera import focal_from_fov, intrinsics, look_at
from splattalk.head.default import EXPR_NAMES, load_default_head, load_texture
from splattalk.head.raster import render_mesh

POSES = {
    "neutral": {},
    "jaw_open": {"jaw": [0.3, 0, 0], "expr": {"mouth_open": 0.5}},
    "smile": {"expr": {"smile": 1.0, "cheek_raise": 0.6}},
    "blink": {"expr": {"blink_left": 1.0, "blink_right": 1.0}},
    "turned": {"rotation": [0.0, 0.6, 0.0], "neck": [0.15, 0.0, 0.05]},
    "pucker": {"expr": {"mouth_pucker": 1.0}},
    "surprise": {
        "jaw": [0.15, 0, 0],
        "expr": {"brow_inner_up": 1.0, "brow_outer_up": 1.0, "eyes_wide": 1.0, "mouth_funnel": 0.5},
    },
}


def pose(model, spec: dict):
    expr = torch.zeros(1, model.num_expr)
    for name, value in spec.get("expr", {}).items():
        expr[0, EXPR_NAMES.index(name)] = value
    kw = {k: torch.tensor([spec[k]], dtype=torch.float32) for k in ("jaw", "rotation", "neck") if k in spec}
    return model(expr=expr, **kw).vertices[0].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--size", type=int, default=320)
    args = parser.parse_args()
    model = load_default_head()
    texture = load_texture()
    faces = model.faces_np
    uvs, uv_faces = model.uvs.numpy(), model.uv_faces.numpy()
    k = intrinsics(focal_from_fov(22, args.size), args.size, args.size)
    view = look_at(np.array([0.0, 0.02, 0.62]), np.array([0.0, -0.005, -0.03]))
    rows = []
    for textured in (False, True):
        tiles = []
        for name, spec in POSES.items():
            v = pose(model, spec)
            kw = dict(texture=texture, uvs=uvs, uv_faces=uv_faces, shading=0.5) if textured else dict(shading=1.0)
            r = render_mesh(v, faces, view, k, args.size, args.size, **kw)
            tile = (r.rgb * 255).astype(np.uint8)[:, :, ::-1].copy()
            cv2.putText(tile, name, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (40, 40, 40), 1, cv2.LINE_AA)
            tiles.append(tile)
        rows.append(np.concatenate(tiles, axis=1))
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "default_head.png"
    cv2.imwrite(str(out), np.concatenate(rows, axis=0))
    # a turntable of the neutral head (profile and back matter: skull, ears, neck)
    tiles = []
    v = pose(model, {})
    for az in (0, 45, 90, 135, 180):
        a = np.radians(az)
        cam = look_at(np.array([0.62 * np.sin(a), 0.05, 0.62 * np.cos(a) - 0.06]), np.array([0.0, -0.01, -0.06]))
        r = render_mesh(
            v, faces, cam, k, args.size, args.size, texture=texture, uvs=uvs, uv_faces=uv_faces, shading=0.5
        )
        tiles.append((r.rgb * 255).astype(np.uint8)[:, :, ::-1])
    cv2.imwrite(str(args.out / "default_head_turntable.png"), np.concatenate(tiles, axis=1))
    print(f"wrote {out} and {args.out / 'default_head_turntable.png'}")


if __name__ == "__main__":
    main()
