"""Figures of a fitted avatar: held-out frames (truth | render) and motions the video never showed.

    python scripts/render_avatar_figures.py RUN [--out docs] [--size 512]

Writes ``avatar_fit.png`` (held-out frames: truth | avatar) and
``avatar_novel_{jaw,turn,smile,blink}.png`` (avatar | textured head mesh with the
same parameters, for reference) into ``--out``. The novel poses start from a
training frame's pose and translation and replace the expression, jaw or head
rotation with values outside what the video contains: the jaw opened to 0.45 rad,
the head turned ±40°, a full smile with raised cheeks, both eyes closed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from splattalk.atomic import write_bytes
from splattalk.avatar.io import load_avatar
from splattalk.avatar.model import animate
from splattalk.avatar.view import Camera, render_gaussians
from splattalk.head.default import EXPR_NAMES, load_texture
from splattalk.head.params import HeadParams
from splattalk.head.raster import render_mesh
from splattalk.run import RunLayout, Tracks


def _png(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", (np.clip(image, 0, 1)[:, :, ::-1] * 255 + 0.5).astype(np.uint8))
    write_bytes(path, data.tobytes())


def novel_motions(base: HeadParams, expr_names) -> dict[str, HeadParams]:
    """Named [k]-frame parameter sets outside the sample video's range (built on ``base``'s single frame)."""

    def variant(k: int) -> HeadParams:
        p = base.slice(np.zeros(k, int))
        p.expr[:] = 0
        p.jaw[:] = 0
        p.rot[:] = 0
        p.eyes[:] = 0
        return p

    def idx(name):
        return expr_names.index(name)

    jaw = variant(2)
    jaw.jaw[:, 0] = [0.3, 0.45]
    jaw.expr[:, idx("mouth_open")] = [0.7, 1.0]
    turn = variant(2)
    turn.rot[:, 1] = np.radians([-40.0, 40.0])
    smile = variant(2)
    smile.expr[:, idx("smile")] = 1.0
    smile.expr[:, idx("cheek_raise")] = 1.0
    smile.jaw[1, 0] = 0.15
    smile.expr[1, idx("mouth_open")] = 0.5
    smile.rot[1, 1] = np.radians(25.0)
    blink = variant(2)
    blink.expr[:, idx("blink_left")] = 1.0
    blink.expr[:, idx("blink_right")] = 1.0
    blink.rot[1, 0] = np.radians(-15.0)  # and the head tilted back: the underside of the chin shows
    return {"jaw": jaw, "turn": turn, "smile": smile, "blink": blink}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs")
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()

    avatar = load_avatar(args.run / "avatar" / "avatar.safetensors")
    tracks = Tracks.load(RunLayout(args.run).tracks)
    scale = args.size / max(tracks.width, tracks.height)
    K = torch.from_numpy(tracks.K.astype(np.float32)).clone()
    K[:2] *= scale
    camera = Camera(torch.from_numpy(tracks.viewmat.astype(np.float32)), K, args.size, args.size)
    background = torch.tensor(avatar.config.get("background_rgb", [1.0, 1.0, 1.0]), dtype=torch.float32)
    params = HeadParams(**tracks.per_frame())
    num = len(params)
    test = np.arange(num - max(1, int(round(num * avatar.config.get("holdout_fraction", 0.1)))), num)

    def render(p: HeadParams) -> list[np.ndarray]:
        with torch.no_grad():
            g = animate(avatar, p)
            return [render_gaussians(g.frame(i), camera, background)[0].clamp(0, 1).numpy() for i in range(len(p))]

    # held-out frames: truth | render
    rows = []
    for i in test[np.linspace(0, len(test) - 1, 3).round().astype(int)]:
        truth = cv2.imread(str(args.run / "frames" / f"{i:06d}.jpg"))[:, :, ::-1].astype(np.float32) / 255
        mask = (
            cv2.imread(str(args.run / "masks" / f"{i:06d}.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32)[..., None]
            / 255
        )
        truth = cv2.resize(
            truth * mask + background.numpy() * (1 - mask), (args.size, args.size), interpolation=cv2.INTER_AREA
        )
        rows.append(np.concatenate([truth, render(params.slice(int(i)))[0]], 1))
    _png(args.out / "avatar_fit.png", np.concatenate(rows, 0))

    # motions never in the video: avatar | textured mesh (reference)
    head = avatar.head
    texture = load_texture() if head.uvs is not None and avatar.model_id.startswith("default") else None
    base = params.slice(num // 2)
    for name, p in novel_motions(base, list(head.expr_names or EXPR_NAMES)).items():
        renders = render(p)
        with torch.no_grad():
            verts = head(shape=avatar.shape, **p.torch_kwargs()).vertices.numpy()
        panels = []
        for r, v in zip(renders, verts, strict=True):
            mesh = render_mesh(
                v,
                head.faces_np,
                camera.viewmat.double().numpy(),
                camera.K.double().numpy(),
                args.size,
                args.size,
                texture=texture,
                uvs=None if texture is None else head.uvs.numpy(),
                uv_faces=None if texture is None else head.uv_faces.numpy(),
                shading=0.55,
                background=tuple(background.tolist()),
            )
            panels.append(np.concatenate([r, mesh.rgb], 1))
        _png(args.out / f"avatar_novel_{name}.png", np.concatenate(panels, 0))
    print(f"wrote avatar_fit.png and avatar_novel_*.png to {args.out}")


if __name__ == "__main__":
    main()
