"""Benchmark the viewer's frame production and the mp4 export on the CPU.

Viewer: per frame, for the embedded 20k-Gaussian default avatar, what the server
does for a browser tab — pose the head model and the Gaussians for one motion
row, pack viser's splat buffer, then what viser does with it: the handle's
change check and copies, the update message's serialisation (msgpack
metadata, zstd, binary buffer appended) into the bytes sent on the websocket.
The baseline is the straightforward path: torch covariances
(``Gaussians.covariances``) packed by viser's own ``GaussianSplatHandle``
packing, then the same serialisation.

Export: 50 frames rendered at 512² with ``avatar.raster.rasterize`` (CPU
backend) and encoded to H.264 + AAC (``viewer/video.py``).

Timings are the best of ``--repeats`` runs (the machine is shared; the load is
printed). Last line:

    viewer fps: X; payload KB/frame: Y; export fps: Z
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402


def motion_rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Speech-like motion: smooth random expression, head sway and jaw."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None] / 25.0
    rows = 0.3 * np.sin(2 * np.pi * (rng.uniform(0.3, 3, dim) * t + rng.uniform(0, 1, dim))).astype(np.float32)
    rows[:, dim - 6 : dim - 3] *= 0.1  # rotation, radians
    rows[:, dim - 3] = 0.15 + 0.15 * np.sin(2 * np.pi * 4 * t[:, 0])  # jaw
    rows[:, dim - 2 :] = 0
    return rows


def serialise(buffer: np.ndarray, stored: np.ndarray) -> bytes:
    """What viser does after ``handle.buffer = buffer``: props_setattr, then the websocket producer."""
    import msgspec
    import zstandard
    from viser import _messages

    if not np.array_equal(stored, buffer):  # props_setattr: skip unchanged, copy in place, private snapshot
        stored[:] = buffer
    queued = buffer.copy()
    message = _messages.SceneNodeUpdateMessage("/avatar", {"buffer": queued})
    binary: list = []
    inner = msgspec.msgpack.encode(
        {"messages": (message.as_serializable_dict(binary),), "timestampSec": time.perf_counter(), "binaryBufferLengths": tuple(b.nbytes for b in binary)}
    )
    compressed = zstandard.ZstdCompressor(level=1).compress(inner)
    parts = [len(inner).to_bytes(8, "little"), len(compressed).to_bytes(8, "little"), compressed]
    offset = 16 + len(compressed)
    for b in binary:
        pad = (8 - offset % 8) % 8
        parts.append(b"\0" * pad)
        parts.append(b)
        offset += pad + b.nbytes
    return b"".join(parts)


def bench_viewer(avatar, frames: int) -> tuple[float, float, float]:
    """(ours fps, baseline fps, payload bytes per frame)."""
    from viser._scene_handles import GaussianSplatHandle

    from splattalk.avatar.model import animate
    from splattalk.viewer.splats import SplatPoser

    poser = SplatPoser(avatar, None, 10.0)
    rows = motion_rows(frames + 1, poser.motion_dim)
    stored = np.zeros((poser.num, 8), np.uint32)
    out = np.zeros_like(stored)
    serialise(poser.buffer(rows[0], out), stored)  # warm-up (numba, caches)

    start = time.perf_counter()
    payload = 0
    for row in rows[1:]:
        payload = len(serialise(poser.buffer(row, out), stored))
    ours = frames / (time.perf_counter() - start)

    def baseline(row):
        with torch.no_grad():
            g = animate(poser.avatar, poser.params(row[None]))
            centers = (g.means[0] * 10.0).numpy()
            cov = (g.covariances()[0] * 100.0).numpy()
        buf = np.zeros((poser.num, 8), np.uint32)
        GaussianSplatHandle._pack_centers(buf, centers)
        GaussianSplatHandle._pack_covariances(buf, cov)
        GaussianSplatHandle._pack_rgba(buf, poser.rgbs, poser.opacities)
        return buf

    serialise(baseline(rows[0]), stored)
    start = time.perf_counter()
    for row in rows[1:]:
        serialise(baseline(row), stored)
    base = frames / (time.perf_counter() - start)
    return ours, base, payload


def bench_export(avatar, frames: int, resolution: int) -> float:
    """``splattalk export``'s path (``splattalk.export.export_clip``) on the CPU backend."""
    from splattalk.export import export_clip

    rows = motion_rows(frames + 2, avatar.head.num_expr + 6)
    audio = np.zeros(int(frames / 25 * 16000), np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        export_clip(avatar, rows[:2], Path(tmp) / "warm.mp4", audio[:1280], resolution=resolution, backend="cpu", progress=False)
        start = time.perf_counter()
        n = export_clip(avatar, rows[2:], Path(tmp) / "bench.mp4", audio, resolution=resolution, backend="cpu", progress=False)
        return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200, help="viewer frames per run")
    parser.add_argument("--export-frames", type=int, default=50)
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the server side (the viewer sets 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from splattalk.avatar.io import load_avatar
    from splattalk.viewer.server import DEFAULT_AVATAR

    avatar = load_avatar(DEFAULT_AVATAR)
    print(f"avatar: {avatar.gaussians.num} Gaussians; load average before: {os.getloadavg()[0]:.2f} (2 cores)")
    best = (0.0, 0.0, 0)
    for _ in range(args.repeats):
        ours, base, payload = bench_viewer(avatar, args.frames)
        print(f"  viewer: {ours:6.1f} fps (baseline: torch covariances + viser's packing {base:6.1f} fps), {payload / 1024:.0f} KB/frame")
        best = max(best, (ours, base, payload))
    ours, base, payload = best
    print(f"viewer frame production: {ours:.1f} fps vs baseline {base:.1f} fps ({ours / base:.2f}×)")
    export = 0.0
    for _ in range(max(1, args.repeats - 1)):
        fps = bench_export(avatar, args.export_frames, args.resolution)
        print(f"  export {args.resolution}²: {fps:5.1f} fps (render + H.264/AAC encode, cpu backend)")
        export = max(export, fps)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"viewer fps: {ours:.1f}; payload KB/frame: {payload / 1024:.0f}; export fps: {export:.1f}")


if __name__ == "__main__":
    main()
