"""Rendering a motion sequence: per-frame head parameters → uint8 RGB frames of the avatar.

The one frame renderer behind ``splattalk export`` and the live viewer's "export mp4"
button; what to do with the frames (encode, mux audio, stop early) is the caller's.
Frames are rendered one ahead in a worker thread (:func:`render_ahead`), so frame N+1
renders while the caller encodes frame N: the CPU kernels and the H.264 encoder release
the GIL.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
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


_DONE = object()


def render_ahead(frames: Iterable[np.ndarray], depth: int = 2) -> Iterator[np.ndarray]:
    """Iterate ``frames`` in a worker thread, up to ``depth`` frames ahead of the consumer. The
    worker's exception is raised here; closing this iterator early (a cancelled export) stops
    the worker after the frame it is on."""
    out: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for frame in frames:
                if not put(frame):
                    return
            put(_DONE)
        except BaseException as err:  # handed to the consumer, raised there
            put(err)
        finally:
            close = getattr(frames, "close", None)
            if close is not None:  # a generator's own cleanup runs here, in its thread
                close()

    worker = threading.Thread(target=work, name="render-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = out.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


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
    ahead: bool = True,
) -> Iterator[np.ndarray]:
    """Frames of ``avatar`` posed by ``params`` (T frames at ``fps``) with one of
    :func:`~splattalk.avatar.framing.camera_path`'s cameras (``front``, ``orbit``, ``tracked`` with ``tracked`` =
    (viewmat, K, width, height)), framed on the head in the pose ``rest`` (one frame; default: all zeros);
    rendered in a worker thread ahead of the caller unless ``ahead`` is false."""
    if rest is None:
        rest = HeadParams.zeros(1, params.expr.shape[1])
    with torch.no_grad():
        rest_vertices = posed_vertices(avatar, rest)[0].numpy()
    viewmats, ks = camera_path(camera, len(params), rest_vertices, size, size, tracked=tracked, fps=fps)
    frames = render_frames(avatar, params, viewmats, ks, size, background, backend)
    return render_ahead(frames) if ahead else frames


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
    ahead: bool = True,
) -> int:
    """:func:`render_sequence` into an mp4 at ``out`` (H.264, ``audio`` at 16 kHz muxed as AAC); returns frames
    written. ``size`` must be even (H.264); ``camera="tracked"`` needs ``tracked``; ``ahead``: see
    :func:`render_sequence`."""
    if size % 2:
        raise SplattalkError(f"--resolution must be even for H.264 (got {size})")
    if camera == "tracked" and tracked is None:
        raise SplattalkError("--camera tracked needs the run's tracking (RUN/tracking/tracks.npz)")
    frames = render_sequence(
        avatar,
        params,
        size,
        camera=camera,
        rest=rest,
        background=background,
        tracked=tracked,
        fps=fps,
        backend=backend,
        ahead=ahead,
    )
    if progress:
        frames = tqdm(frames, total=len(params), desc=desc, unit="frame")
    return write_mp4(out, frames, fps, audio)
