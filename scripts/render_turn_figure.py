"""The avatar turned to −30°, 0° and +30° about the head, for looking at what the video never showed.

    python scripts/render_turn_figure.py RUN [AVATAR ...] [--frame 0] [--out docs/avatar_turn.png]

One row per avatar file (default: RUN/avatar/avatar.safetensors), each posed with tracked frame ``--frame``'s
expression, jaw and eyes (head rotation, neck and translation zeroed, so the camera does the turning), seen by
:func:`splattalk.avatar.framing.front_view` at the three azimuths — the same Gaussians the viewer draws, through
our rasterizer instead of the browser's.

Also printed per avatar and azimuth: **holes**, the share of the face's pixels (the carried head triangles down to
the chin, eroded 6 px so the outline does not count) where the avatar is less than 90 % opaque — the gaps and
speckles through which the background shows when the head turns.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from splattalk.atomic import write_bytes
from splattalk.avatar.framing import front_view
from splattalk.avatar.headmask import head_faces, mesh_silhouette
from splattalk.avatar.init import face_regions
from splattalk.avatar.io import load_avatar
from splattalk.avatar.model import animate, posed_vertices
from splattalk.avatar.raster import rasterize
from splattalk.avatar.sequence import render_frames
from splattalk.head.params import HeadParams
from splattalk.run import RunLayout, Tracks

AZIMUTHS = (-30.0, 0.0, 30.0)
HOLE_ALPHA = 0.9
"""A face pixel less opaque than this lets the background show through (a hole)."""


def turned_row(avatar, pose: HeadParams, size: int) -> tuple[np.ndarray, list[float]]:
    """The row of renders and, per azimuth, the share of face pixels less than ``HOLE_ALPHA`` opaque."""
    rest = posed_vertices(avatar, pose)[0].numpy()
    views = [front_view(rest, size, size, azimuth_deg=a) for a in AZIMUTHS]
    viewmats = np.stack([v for v, _ in views])
    ks = np.stack([k for _, k in views])
    frames = render_frames(avatar, pose.slice(np.zeros(len(AZIMUTHS), int)), viewmats, ks, size, (1.0, 1.0, 1.0))
    carry, _ = face_regions(avatar.head)
    faces = head_faces(avatar.head, avatar.shape, carry, neck_fraction=0.0)
    with torch.no_grad():
        g = animate(avatar, pose).frame(0)
    holes = []
    for viewmat, k in views:
        _, alpha = rasterize(
            g.means,
            g.quats,
            g.scales,
            g.opacities,
            g.sh,
            torch.from_numpy(viewmat),
            torch.from_numpy(k),
            size,
            size,
            torch.ones(3),
            sh_degree=g.sh_degree,
        )
        face = mesh_silhouette(rest, faces, viewmat, k, size, size)
        face = cv2.erode(face, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (13, 13))).astype(bool)
        holes.append(float((alpha[..., 0].numpy()[face] < HOLE_ALPHA).mean()))
    return np.concatenate(list(frames), 1), holes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("avatars", type=Path, nargs="*")
    parser.add_argument("--frame", type=int, default=0)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "avatar_turn.png")
    args = parser.parse_args()

    tracks = Tracks.load(RunLayout(args.run).tracks)
    pose = HeadParams(**tracks.per_frame()).slice(np.array([args.frame]))
    for name in ("rot", "neck", "transl"):
        getattr(pose, name)[:] = 0
    rows = []
    for path in args.avatars or [RunLayout(args.run).avatar]:
        row, holes = turned_row(load_avatar(path), pose, args.size)
        rows.append(row)
        print(f"{path}: holes " + ", ".join(f"{a:+.0f}° {100 * h:.1f} %" for a, h in zip(AZIMUTHS, holes, strict=True)))
    ok, data = cv2.imencode(".png", np.concatenate(rows, 0)[:, :, ::-1])
    write_bytes(args.out, data.tobytes())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
