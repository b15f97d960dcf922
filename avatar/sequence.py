"""Rendering a motion sequence: per-frame head parameters → uint8 RGB frames of the avatar.

The one frame renderer behind ``splattalk export`` and the live viewer's "export mp4"
button; what to do with the frames (encode, mux audio, stop early) is the caller's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from splattalk.avatar.framing import camera_path
from splattalk.avatar.model import animate, posed_vertices
from splattalk.avatar.raster import rasterize
from splattalk.errors import SplattalkError
from splattalk.head.params import MOTION_FPS, HeadParams
from splattalk.mp4 import write_mp4


def render_frames(
    avatar, params: HeadParams, viewmats: np.ndarray, ks: np.ndarray, size: int, background, backend: str = "auto"
) -> Iterator[np.ndarray]:
    """Yield uint8 RGB frames [size, size, 3] of ``avatar`` posed by each frame of ``params`` (T frames), seen by
    ``viewmats`` [T, 4, 4] and ``ks`` [T, 3, 3]; ``background`` RGB in [0, 1]."""
    bg = torch.tensor(background, dtype=torch.float32)
    with torch.no_grad():
        for i in range(len(params)):
            g = animate(avatar, params.slice(i)).frame(0)
            rgb, _ = rasterize(
                g.means,
                g.quats,
                g.scales,
                g.opacities,
                g.sh,
                torch.from_numpy(viewmats[i]),
                torch.from_numpy(ks[i]),
                size,
                size,
                bg,
                backend=backend,
                sh_degree=g.sh_degree,
            )
            yield (rgb.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()


def render_sequence(
    avatar,
    params: HeadParams,
    size: int,
    *,
    camera: str = "front",
    rest: HeadParams | None = None,
    background=(1.0, 1.0, 1.0),
    tracked=None,
    fps: float = MOTION_FPS,
    backend: str = "auto",
) -> Iterator[np.ndarray]:
    """Frames of ``avatar`` posed by ``params`` (T frames at ``fps``) with one of
    :func:`~splattalk.avatar.framing.camera_path`'s cameras (``front``, ``orbit``, ``tracked`` with ``tracked`` =
    (viewmat, K, width, height)), framed on the head in the pose ``rest`` (one frame; default: all zeros)."""
    if rest is None:
        rest = HeadParams.zeros(1, params.expr.shape[1])
    with torch.no_grad():
        rest_vertices = posed_vertices(avatar, rest)[0].numpy()
    viewmats, ks = camera_path(camera, len(params), rest_vertices, size, size, tracked=tracked, fps=fps)
    return render_frames(avatar, params, viewmats, ks, size, background, backend)


def write_sequence(
    avatar,
    params: HeadParams,
    out: Path,
    audio: np.ndarray | None,
    *,
    size: int,
    fps: float = MOTION_FPS,
    camera: str = "front",
    rest: HeadParams | None = None,
    background=(1.0, 1.0, 1.0),
    tracked=None,
    backend: str = "auto",
    progress: bool = True,
    desc: str = "export",
) -> int:
    """:func:`render_sequence` into an mp4 at ``out`` (H.264, ``audio`` at 16 kHz muxed as AAC); returns frames
    written. ``size`` must be even (H.264); ``camera="tracked"`` needs ``tracked``."""
    if size % 2:
        raise SplattalkError(f"--resolution must be even for H.264 (got {size})")
    if camera == "tracked" and tracked is None:
        raise SplattalkError("--camera tracked needs the run's tracking (RUN/tracking/tracks.npz)")
    frames = render_sequence(
        avatar, params, size, camera=camera, rest=rest, background=background, tracked=tracked, fps=fps, backend=backend
    )
    if progress:
        frames = tqdm(frames, total=len(params), desc=desc, unit="frame")
    return write_mp4(out, frames, fps, audio)
