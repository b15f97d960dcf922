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
backend) and encoded to H.264 + AAC (``splattalk/mp4.py``).

Payload: bytes a frame puts on the websocket for a speech clip (the built-in talk
model's motion for ``sample_en_1.wav``), step by step from the full buffer
(baseline) to the light stream (``viewer/stream.py``): head pose as a node
transform, then only the Gaussian groups that moved, then only those that
moved more than the tolerance.

Timings are the best of ``--repeats`` runs (the machine is shared; the load is
printed). Last line:

    viewer fps: X; export fps: Z; payload KB/frame: Y vs full buffer B (R× lighter)
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
    if not np.array_equal(stored, buffer):  # props_setattr: skip unchanged, copy in place, private snapshot
        stored[:] = buffer
    return serialise_updates([("/avatar", {"buffer": buffer.copy()})])


def serialise_updates(updates: list) -> bytes:
    """One websocket frame of ``SceneNodeUpdateMessage`` s ``[(node name, {prop: value})]`` (viser's producer)."""
    from viser import _messages

    return serialise_messages([_messages.SceneNodeUpdateMessage(name, props) for name, props in updates])


def frame_messages(update, shown: dict) -> list:
    """The messages ``gui.ViserView.show_update`` queues for one ``stream.FrameUpdate``, as viser's setters make
    them: wxyz and position as their own messages, scale and buffer as prop updates, each skipped when equal to
    what the node already has (``shown``: node → value, updated here)."""
    from viser import _messages

    out = []

    def put(name, key, value, make):
        value = tuple(map(float, value))
        old = shown.get((name, key))
        if old is not None and (old == value if key == "scale" else np.allclose(old, value)):
            return
        shown[(name, key)] = value
        out.append(make(name, value))

    def pose(name, wxyz, position, scale=None):
        put(name, "wxyz", wxyz, _messages.SetOrientationMessage)
        put(name, "position", position, _messages.SetPositionMessage)
        if scale is not None:
            put(name, "scale", scale, lambda n, v: _messages.SceneNodeUpdateMessage(n, {"scale": v}))

    pose("/avatar", update.wxyz, update.position)
    for k, wxyz, position, scale in update.transforms:
        pose(f"/avatar/g{k}", wxyz, position, scale)
    out += [_messages.SceneNodeUpdateMessage(f"/avatar/g{k}", {"buffer": b}) for k, b in update.groups]
    return out


def serialise_messages(messages: list) -> bytes:
    """One websocket frame of viser messages, encoded as viser's producer encodes it (``viser/infra/_infra.py``)."""
    import msgspec
    import zstandard

    binary: list = []
    inner = msgspec.msgpack.encode(
        {
            "messages": tuple(m.as_serializable_dict(binary) for m in messages),
            "timestampSec": time.perf_counter(),
            "binaryBufferLengths": tuple(b.nbytes for b in binary),
        }
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


def speech_motion(avatar) -> np.ndarray:
    """The built-in talk model's motion for the sample clip (what a speaking tab streams)."""
    from splattalk.export import talk_motion
    from splattalk.talk.audio import load_audio
    from splattalk.viewer.server import DEFAULT_AVATAR

    speech = DEFAULT_AVATAR.parent / "speech" / "sample_en_1.wav"
    return talk_motion(load_audio(speech), avatar.model_id, None, None, 0)


def bench_payload(avatar, rows: np.ndarray) -> list[tuple[str, float, float]]:
    """[(step, mean bytes a frame, ms a frame)] from the full buffer to the light stream, on motion ``rows``."""
    from splattalk.viewer.splats import SplatPoser
    from splattalk.viewer.stream import SplatStream

    poser = SplatPoser(avatar, None, 10.0)
    out = []
    stored, buf = np.zeros((poser.num, 8), np.uint32), np.zeros((poser.num, 8), np.uint32)
    serialise(poser.buffer(rows[0], buf), stored)
    start, total = time.perf_counter(), 0
    for row in rows[1:]:
        total += len(serialise(poser.buffer(row, buf), stored))
    out.append(
        (
            "full buffer every frame (baseline)",
            total / (len(rows) - 1),
            (time.perf_counter() - start) / (len(rows) - 1) * 1e3,
        )
    )
    from splattalk.viewer.stream import CELL_M, voxel_groups

    voxels = voxel_groups(poser.pose(np.zeros(poser.motion_dim, np.float32))[0] / poser.scene_scale, CELL_M)
    steps = (
        ("+ head pose as a node transform (Gaussians in the head's frame, all sent)", None, voxels, False),
        ("+ 2 cm voxel groups, only those that moved at all", 0.0, voxels, False),
        ("+ only the groups that moved > 0.1 mm (the previous default)", 1e-4, voxels, False),
        ("+ groups by motion (k-means over position and probe motions) instead of voxels", 1e-4, None, False),
        ("+ each group's motion as its node transform, resent only past 0.1 mm (default)", 1e-4, None, True),
        ("  (for comparison: 2 cm voxel groups with node transforms, 0.1 mm)", 1e-4, voxels, True),
        ("  (for comparison: the default at 0.05 mm)", 5e-5, None, True),
    )
    for name, tolerance, groups, transforms in steps:
        stream = SplatStream(poser, tolerance or 0.0, groups=groups, transforms=transforms)
        shown: dict = {}
        frame_messages(stream.update(rows[0]), shown)
        start, total = time.perf_counter(), 0
        for row in rows[1:]:
            if tolerance is None:
                stream.reset()  # every group, every frame
            total += len(serialise_messages(frame_messages(stream.update(row), shown)))
        out.append((name, total / (len(rows) - 1), (time.perf_counter() - start) / (len(rows) - 1) * 1e3))
    return out


def bench_export(avatar, frames: int, resolution: int) -> float:
    """``splattalk export``'s path (``splattalk.export.export_clip``) on the CPU backend."""
    from splattalk.export import export_clip

    rows = motion_rows(frames + 2, avatar.head.num_expr + 6)
    audio = np.zeros(int(frames / 25 * 16000), np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        export_clip(
            avatar, rows[:2], Path(tmp) / "warm.mp4", audio[:1280], resolution=resolution, backend="cpu", progress=False
        )
        start = time.perf_counter()
        n = export_clip(
            avatar, rows[2:], Path(tmp) / "bench.mp4", audio, resolution=resolution, backend="cpu", progress=False
        )
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
        print(
            f"  viewer: {ours:6.1f} fps (baseline: torch covariances + viser's packing {base:6.1f} fps), "
            f"{payload / 1024:.0f} KB/frame"
        )
        best = max(best, (ours, base, payload))
    ours, base, payload = best
    print(f"viewer frame production: {ours:.1f} fps vs baseline {base:.1f} fps ({ours / base:.2f}×)")
    export = 0.0
    for _ in range(max(1, args.repeats - 1)):
        fps = bench_export(avatar, args.export_frames, args.resolution)
        print(f"  export {args.resolution}²: {fps:5.1f} fps (render + H.264/AAC encode, cpu backend)")
        export = max(export, fps)
    rows = speech_motion(avatar)
    print(f"payload for {len(rows)} frames of speech (the built-in talk model on sample_en_1.wav), one tab:")
    steps = bench_payload(avatar, rows)
    for name, nbytes, ms in steps:
        print(f"  {nbytes / 1024:6.1f} KB/frame  {ms:5.1f} ms/frame  {name}")
    base_kb, light_kb = steps[0][1] / 1024, steps[5][1] / 1024
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(
        f"viewer fps: {ours:.1f}; export fps: {export:.1f}; payload KB/frame: {light_kb:.0f} "
        f"vs full buffer {base_kb:.0f} "
        f"({base_kb / light_kb:.1f}× lighter)"
    )


if __name__ == "__main__":
    main()
