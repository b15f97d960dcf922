"""Held-out evaluation and preview images of a fit in progress."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from splattalk.atomic import write_bytes
from splattalk.avatar.metrics import psnr, ssim
from splattalk.avatar.view import render_gaussians

ERROR_GAIN = 4.0
"""Preview error panels show |render − truth| × this."""


def render_frame(f, params, frame: int, background: torch.Tensor) -> torch.Tensor:
    """Render frame ``frame`` with its tracked parameters: [H, W, 3] (no gradients)."""
    with torch.no_grad():
        g = f.pose(params, f.vertices[frame])
        rgb, _ = render_gaussians(g, f.camera, background, f.cfg.backend, f.cfg.sh_degree)
    return rgb.clamp(0, 1)


def evaluate(f, params, background: torch.Tensor, frames, per_frame: bool = False) -> dict:
    """Mean PSNR (dB) and SSIM over ``frames`` (each against its masked, composited frame)."""
    psnrs, ssims = [], []
    for i in frames:
        rgb = render_frame(f, params, int(i), background)
        target = f.data.target(int(i), rgb.device)
        psnrs.append(psnr(rgb, target))
        ssims.append(ssim(rgb.cpu(), target.cpu()))
    out = {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)), "frames": [int(i) for i in frames]}
    if per_frame:
        out["per_frame_psnr"] = [round(p, 3) for p in psnrs]
        out["per_frame_ssim"] = [round(s, 5) for s in ssims]
    return out


def preview_rows(truth: list[np.ndarray], renders: list[np.ndarray]) -> np.ndarray:
    """Stack rows of truth | render | error (uint8 RGB)."""
    rows = []
    for t, r in zip(truth, renders, strict=True):
        err = np.clip(np.abs(r - t).mean(-1, keepdims=True) * ERROR_GAIN, 0, 1).repeat(3, -1)
        rows.append(np.concatenate([t, r, err], axis=1))
    return (np.clip(np.concatenate(rows, axis=0), 0, 1) * 255 + 0.5).astype(np.uint8)


def write_preview(path: Path, f, params, background: torch.Tensor, count: int = 3) -> None:
    """truth | render | error for ``count`` held-out frames (first, middle, last) as one PNG."""
    test = f.data.test_ids
    picks = test[np.linspace(0, len(test) - 1, min(count, len(test))).round().astype(int)]
    truth = [f.data.target(int(i)).numpy() for i in picks]
    renders = [render_frame(f, params, int(i), background).cpu().numpy() for i in picks]
    ok, png = cv2.imencode(".png", preview_rows(truth, renders)[:, :, ::-1])
    write_bytes(path, png.tobytes())
