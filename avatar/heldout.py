"""Score a finished avatar on its run's held-out frames at any resolution: whole frame and face region.

The fit measures held-out PSNR/SSIM at its own training resolution
(``avatar.evaluate``); people watch exports at 512². This renders the avatar
with each held-out frame's tracked parameters through the run's camera rescaled
to ``resolution`` and compares it with the frame composited onto the avatar's
background (the same targets the fit uses, via ``avatar.dataset.load_run``).

The face region is where errors show most: both eyes and the mouth. Its mask is
the convex hull of each part's mediapipe landmarks as embedded on the *tracked
mesh* (so it needs no 2D detection and works for any head model with a
landmark embedding), projected through the camera and grown by a margin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from splattalk.avatar.dataset import load_run
from splattalk.avatar.evaluate import preview_rows
from splattalk.avatar.face_parts import FACE_PARTS
from splattalk.avatar.headmask import cut_to_head, head_faces
from splattalk.avatar.init import face_regions
from splattalk.avatar.io import load_avatar
from splattalk.avatar.metrics import psnr, ssim_map
from splattalk.avatar.model import animate
from splattalk.avatar.view import Camera, render_gaussians
from splattalk.errors import SplattalkError
from splattalk.head.params import HeadParams

MARGIN = 0.15
"""Each part's hull is grown by this fraction of the distance between the eye centres (eyelids, lip edges)."""


def face_region_mask(points: dict[str, np.ndarray], width: int, height: int, margin: float = MARGIN) -> np.ndarray:
    """Mask [H, W] bool of the convex hulls of ``points`` (part → [P, 2] pixel coordinates), each grown by
    ``margin`` × the distance between the centres of 'right_eye' and 'left_eye'."""
    import cv2

    eyes = np.linalg.norm(points["right_eye"].mean(0) - points["left_eye"].mean(0))
    grow = max(1, round(float(margin * eyes)))
    mask = np.zeros((height, width), np.uint8)
    for pts in points.values():
        hull = cv2.convexHull(np.round(pts).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    return cv2.dilate(mask, kernel).astype(bool)


def project(points: torch.Tensor, viewmat: torch.Tensor, K: torch.Tensor) -> np.ndarray:
    """World points [P, 3] → pixel coordinates [P, 2] (OpenCV camera, pixel centres at +0.5 as K says)."""
    cam = points @ viewmat[:3, :3].T + viewmat[:3, 3]
    uv = cam @ K.T
    return (uv[:, :2] / uv[:, 2:3]).cpu().numpy()


def part_points(landmarks: torch.Tensor, lmk_ids: np.ndarray, viewmat, K) -> dict[str, np.ndarray]:
    """Projected embedded landmarks [L, 3] grouped into FACE_PARTS (parts the embedding lacks are an error)."""
    uv = project(landmarks, viewmat, K)
    where = {int(m): i for i, m in enumerate(lmk_ids)}
    out = {}
    for name, ids in FACE_PARTS.items():
        rows = [where[i] for i in ids if i in where]
        if len(rows) < 3:
            raise SplattalkError(
                f"the head model embeds too few mediapipe landmarks of the {name} to score the face region"
            )
        out[name] = uv[rows]
    return out


def masked_ssim(image: torch.Tensor, target: torch.Tensor, mask: np.ndarray) -> float:
    """Mean SSIM of [H, W, 3] images over ``mask`` [H, W] (SSIM's valid region: 5-pixel borders dropped)."""
    with torch.no_grad():
        smap = ssim_map(image.float(), target.float())[0].mean(0)  # [H-10, W-10]
    inner = torch.from_numpy(mask[5:-5, 5:-5])
    return float(smap[inner].mean()) if inner.any() else float("nan")


@dataclass
class HeldoutScore:
    psnr: float
    """PSNR against the truth cut to the head when ``head_only`` (else the whole composited frame)"""
    ssim: float
    frame_psnr: float
    """PSNR against the frame composited through its uncut mask (shoulders and clothes included)"""
    frame_ssim: float
    face_psnr: float
    face_ssim: float
    face_fraction: float
    """mean fraction of the frame the face-region mask covers"""
    frames: list[int]
    resolution: tuple[int, int]
    per_frame: list[dict]


def score_heldout(
    run: str | Path,
    avatar_path: str | Path | None = None,
    resolution: int = 512,
    frames: list[int] | None = None,
    keep: list[int] | None = None,
    head_only: bool = True,
    render_params: HeadParams | None = None,
) -> tuple[HeldoutScore, dict]:
    """Render ``avatar_path`` (default RUN/avatar/avatar.safetensors) for the held-out frames of ``run`` at
    ``resolution`` and score it. ``frames`` overrides which frames; ``keep``: frames whose truth, render and
    face mask are returned as float arrays in the second value (for contact sheets). ``head_only``: the truth
    is cut to the tracked head as ``FitConfig.head_only`` does (whatever the avatar was fitted with), so
    avatars fitted either way are judged on the same pixels: the head, not the shoulders it never models.
    ``render_params``: per-frame parameters (all the run's frames) to render with instead of the tracks, e.g.
    photometrically refined ones; the truth's cut and the face region still come from the tracks."""

    run = Path(run)
    avatar = load_avatar(avatar_path or run / "avatar" / "avatar.safetensors")
    cfg = avatar.config
    background = ",".join(f"{v:.6f}" for v in cfg.get("background_rgb", (1.0, 1.0, 1.0)))
    data = load_run(run, resolution, cfg.get("holdout_fraction", 0.1), background)
    ids = [int(i) for i in (data.test_ids if frames is None else frames)]
    camera = Camera(data.viewmat, data.K, data.width, data.height)
    bg = data.background
    lmk_ids = (
        avatar.head.lmk_ids.cpu().numpy() if torch.is_tensor(avatar.head.lmk_ids) else np.asarray(avatar.head.lmk_ids)
    )
    whole = data.targets
    if head_only:
        with torch.no_grad():
            vertices = avatar.head(shape=avatar.shape, **data.params.torch_kwargs()).vertices
        carry, _ = face_regions(avatar.head)
        data.targets, data.masks = cut_to_head(
            data.targets,
            data.masks,
            data.background,
            vertices,
            head_faces(avatar.head, avatar.shape, carry),
            data.viewmat,
            data.K,
            frames=ids,
        )
    rows, kept = [], {}
    with torch.no_grad():
        for i in ids:
            p = data.params.slice(slice(i, i + 1))
            shown = p if render_params is None else render_params.slice(slice(i, i + 1))
            g = animate(avatar, shown).frame(0)
            rgb, _ = render_gaussians(g, camera, bg, cfg.get("backend", "auto"))
            rgb = rgb.clamp(0, 1)
            target = data.target(i)
            out = avatar.head(shape=avatar.shape, **p.torch_kwargs())
            mask = face_region_mask(
                part_points(out.landmarks[0], lmk_ids, data.viewmat, data.K), data.width, data.height
            )
            m = torch.from_numpy(mask)
            frame_target = whole[i].float() / 255.0
            rows.append(
                {
                    "frame": i,
                    "psnr": psnr(rgb, target),
                    "ssim": float(ssim_map(rgb, target).mean()),
                    "frame_psnr": psnr(rgb, frame_target),
                    "frame_ssim": float(ssim_map(rgb, frame_target).mean()),
                    "face_psnr": psnr(rgb[m], target[m]),
                    "face_ssim": masked_ssim(rgb, target, mask),
                    "face_fraction": float(mask.mean()),
                }
            )
            if keep is not None and i in keep:
                kept[i] = {"truth": target.numpy(), "render": rgb.numpy(), "mask": mask}
    mean = {
        k: float(np.mean([r[k] for r in rows]))
        for k in ("psnr", "ssim", "frame_psnr", "frame_ssim", "face_psnr", "face_ssim", "face_fraction")
    }
    return HeldoutScore(**mean, frames=ids, resolution=(data.width, data.height), per_frame=rows), kept


def contact_rows(kept: dict[int, dict], label: str = "") -> np.ndarray:
    """uint8 RGB rows of truth | render | error ×4 (``avatar.evaluate``'s preview), the face region outlined in
    green on the error panel and ``label`` (clip, frame, PSNR) written on the truth panel."""
    import cv2

    rows = []
    for i, k in sorted(kept.items()):
        row = np.ascontiguousarray(preview_rows([k["truth"]], [k["render"]]))
        width = k["truth"].shape[1]
        contours, _ = cv2.findContours(k["mask"].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        error = np.ascontiguousarray(row[:, 2 * width :])
        cv2.drawContours(error, contours, -1, (0, 200, 0), 1, cv2.LINE_AA)
        row[:, 2 * width :] = error
        text = f"{label} frame {i}" if label else f"frame {i}"
        cv2.putText(row, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
        cv2.putText(row, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (20, 20, 20), 1, cv2.LINE_AA)
        rows.append(row)
    return np.concatenate(rows, axis=0)
