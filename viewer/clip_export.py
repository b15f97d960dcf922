"""The viewer's "export mp4": render a clip the session already holds (motion + audio) to H.264 + AAC.

A thin stand-in built from ``viewer/camera.py`` and ``viewer/video.py`` until
``viewer/export.py`` (``splattalk export``) offers a function that renders
given motion; the viewer calls only :func:`render_clip`, so switching is one
import. Renders with ``avatar.render.rasterize`` (CPU backend here, gsplat on
CUDA), front camera.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from splattalk.avatar.gaussians import SH_C0
from splattalk.avatar.model import Avatar, animate, posed_vertices
from splattalk.head.params import HeadParams
from splattalk.talk.config import FPS, SAMPLE_RATE


def scale_motion(motion: np.ndarray, expr_scale: float = 1.0, head_scale: float = 1.0) -> np.ndarray:
    """Motion ``[T, E + 6]`` with expression and jaw scaled by ``expr_scale``, head rotation by ``head_scale``."""
    out = np.array(motion, np.float32, copy=True)
    e = out.shape[-1] - 6
    out[..., :e] *= expr_scale
    out[..., e + 3 :] *= expr_scale
    out[..., e : e + 3] *= head_scale
    return out


def render_frames(
    avatar: Avatar,
    motion: np.ndarray,
    resolution: int = 512,
    background=(1.0, 1.0, 1.0),
    base: HeadParams | None = None,
    backend: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
):
    """Yield RGB frames ``[H, W, 3]`` uint8 of ``avatar`` playing ``motion`` ``[T, E + 6]`` (front camera)."""
    from splattalk.avatar.render import rasterize
    from splattalk.viewer.camera import front_view

    params = HeadParams.from_motion(motion, base)
    with torch.no_grad():
        rest = posed_vertices(avatar, HeadParams.from_motion(np.zeros((1, motion.shape[1]), np.float32), base))[0].numpy()
    viewmat, K = front_view(rest, resolution, resolution)
    viewmat, K = torch.from_numpy(viewmat), torch.from_numpy(K)
    bg = torch.tensor(background, dtype=torch.float32)
    colors = (SH_C0 * avatar.gaussians.sh[:, 0, :].detach() + 0.5).clamp(0, 1)
    total = len(params)
    for i in range(total):
        if cancelled is not None and cancelled():
            return
        with torch.no_grad():
            g = animate(avatar, params.slice(i))
            rgb, _ = rasterize(g.means[0], g.quats[0], g.scales[0], g.opacities, colors, viewmat, K, resolution, resolution, bg, backend)
        yield (rgb.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
        if progress is not None:
            progress(i + 1, total)


def render_clip(
    avatar: Avatar,
    motion: np.ndarray,
    audio: np.ndarray,
    out: str | Path,
    resolution: int = 512,
    background=(1.0, 1.0, 1.0),
    base: HeadParams | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> int:
    """Write ``out`` (mp4: H.264 at 25 fps + AAC of ``audio`` [S] 16 kHz); returns the number of frames."""
    from splattalk.viewer.video import write_mp4

    frames = render_frames(avatar, motion, resolution, background, base, progress=progress, cancelled=cancelled)
    return write_mp4(out, frames, FPS, audio=audio, sample_rate=SAMPLE_RATE)
