"""Benchmark ``splattalk export`` at 512² on the CPU: the current path against the previous one.

The same motion (the built-in talk model's motion for ``sample_en_1.wav``, first ``--frames``
frames) is exported by :func:`splattalk.avatar.sequence.write_sequence` to H.264 twice per
round, alternating, best of ``--repeats`` rounds each:

- now: inference renders use the forward-only compositor (``avatar/raster/cpu/forward.py``)
  and frames render in a worker thread one ahead of the encoder;
- before: the training kernels (``cpu.backend.training_kernels()``) and render, then encode,
  in turn — what every export did before.

Also printed: the per-frame breakdown (animate, projection, SH colour, sort + binning +
gathering, compositing new and old, the uint8 conversion, the H.264 encode, and the loaded
talk model per output frame, wall; each stage timed alone, single-threaded, CPU seconds of this
thread), the pure-render fps single-threaded (steadier than wall time on a shared
machine), and how far the new frames are from the old ones (uint8 max abs diff, PSNR).
The machine's load average is printed before and after. Last line:

    export 512² fps: X; before: Y; speedup: Z×
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import splattalk.avatar.raster.conventions as rc  # noqa: E402
from splattalk.assets import data_path  # noqa: E402
from splattalk.avatar.framing import camera_path  # noqa: E402
from splattalk.avatar.io import load_avatar  # noqa: E402
from splattalk.avatar.model import animate, posed_vertices  # noqa: E402
from splattalk.avatar.raster.cpu import binning, composite, forward, project  # noqa: E402
from splattalk.avatar.raster.cpu import sh as sh_kernels  # noqa: E402
from splattalk.avatar.raster.cpu.backend import training_kernels  # noqa: E402
from splattalk.avatar.sequence import render_sequence, write_sequence  # noqa: E402
from splattalk.export import talk_motion  # noqa: E402
from splattalk.head.params import HeadParams  # noqa: E402
from splattalk.mp4 import write_mp4  # noqa: E402
from splattalk.talk.audio import load_audio  # noqa: E402


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def export_fps(avatar, params, size: int, out: Path, *, before: bool) -> tuple[float, float]:
    """(frames per second, CPU seconds per frame) of one export."""
    t0, c0 = time.perf_counter(), time.process_time()
    if before:
        with training_kernels():
            n = write_sequence(avatar, params, out, None, size=size, progress=False, ahead=False)
    else:
        n = write_sequence(avatar, params, out, None, size=size, progress=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return n / wall, cpu / n


def render_fps(avatar, params, size: int, *, before: bool) -> float:
    """Frames per second of rendering alone (no encode), in this thread."""
    t0 = time.perf_counter()
    if before:
        with training_kernels():
            n = sum(1 for _ in render_sequence(avatar, params, size, ahead=False))
    else:
        n = sum(1 for _ in render_sequence(avatar, params, size, ahead=False))
    return n / (time.perf_counter() - t0)


def binned(means2d, conics, depths, radii, opacities, colors, tiles):
    """What the compositor gets: depth order, per-tile rows, their geometry and colours."""
    visible = np.flatnonzero((radii > 0).all(axis=1))
    order = visible[np.argsort(depths[visible], kind="stable")].astype(np.int32)
    offsets, gid = binning.bin_tiles(order, means2d, radii, rc.TILE_SIZE, tiles, tiles)
    geom = binning.gather_geometry(gid, means2d, conics, opacities)
    return offsets, geom, binning.gather_channels(gid, colors, 0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def breakdown(avatar, params, size: int, talk_s_per_frame: float) -> list[tuple[str, float]]:
    """Milliseconds per frame of each stage, run one after the other on this thread."""
    rest = HeadParams.zeros(1, params.expr.shape[1])
    with torch.no_grad():
        rest_vertices = posed_vertices(avatar, rest)[0].numpy()
    viewmats, ks = camera_path("front", len(params), rest_vertices, size, size)
    stages: dict[str, float] = {}

    def timed(name, fn, *args):
        c0 = time.thread_time()
        result = fn(*args)
        stages[name] = stages.get(name, 0.0) + time.thread_time() - c0
        return result

    ts = rc.TILE_SIZE
    tiles = -(-size // ts)
    bg = np.ones(3, np.float32)
    frames = []
    with torch.no_grad():
        for i in range(len(params)):
            g = timed("animate (head model + binding)", lambda i=i: animate(avatar, params.slice(i)).frame(0))
            means, quats, scales, opac = (t.contiguous().numpy() for t in (g.means, g.quats, g.scales, g.opacities))
            view, k = viewmats[i][None].astype(np.float32), ks[i][None].astype(np.float32)
            n = means.shape[0]
            m2, con = np.empty((1, n, 2), np.float32), np.empty((1, n, 3), np.float32)
            dep, rad = np.empty((1, n), np.float32), np.empty((1, n, 2), np.int32)
            timed(
                "projection",
                project.project_forward,
                *(means, quats, scales, opac, view, k, size, size, rc.NEAR_PLANE, rc.FAR_PLANE, rc.EPS2D),
                *(m2, con, dep, rad),
            )
            campos = (-view[0, :3, :3].T.astype(np.float64) @ view[0, :3, 3])[None]
            cols = np.empty((1, n, 3), np.float32)
            timed("SH colour", sh_kernels.sh_forward, g.sh.contiguous().numpy(), means, campos, g.sh_degree, rad, cols)

            offsets, geom, rows = timed(
                "depth sort + tile binning + gather", binned, m2[0], con[0], dep[0], rad[0], opac, cols[0], tiles
            )
            image, alpha = np.empty((size, size, 3), np.float32), np.empty((size, size), np.float32)
            timed(
                "compositing (forward-only, now)",
                forward.composite_rgb,
                *(False, offsets, geom, rows, bg, size, size, tiles, image, alpha),
            )
            old = np.empty((size, size, 3), np.float32)
            trans, last = np.empty((size, size), np.float32), np.empty((size, size), np.int32)
            timed(
                "compositing (training kernel, before)",
                composite.composite_forward,
                *(False, offsets, geom, rows, 0, bg, size, size, ts, tiles, old, trans, last),
            )
            frames.append(timed("uint8 conversion", to_uint8, image))
    with tempfile.TemporaryDirectory() as tmp:
        c0 = time.process_time()
        write_mp4(Path(tmp) / "x.mp4", frames, 25, threads=1)
        stages["H.264 encode (libx264, 1 thread)"] = time.process_time() - c0
    rows_out = [(name, 1000 * s / len(params)) for name, s in stages.items()]
    rows_out.append(("talk model (loaded; wall, per output frame)", 1000 * talk_s_per_frame))
    return rows_out


def frame_diff(avatar, params, size: int) -> tuple[int, float]:
    """(max abs uint8 difference, PSNR dB) between the frames of the two paths."""
    new = np.stack(list(render_sequence(avatar, params, size, ahead=False))).astype(np.float64)
    with training_kernels():
        old = np.stack(list(render_sequence(avatar, params, size, ahead=False))).astype(np.float64)
    mse = float(np.mean((new - old) ** 2))
    return int(np.abs(new - old).max()), (math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--avatar", type=Path, default=None, help="avatar.safetensors (default: the built-in one)")
    parser.add_argument("--frames", type=int, default=100, help="frames exported per run")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2, help="rounds; each path's best is reported")
    args = parser.parse_args()
    print(f"load average at start: {load()}; cores: {os.cpu_count()}; numba threads: {numba.get_num_threads()}")
    avatar = load_avatar(args.avatar or data_path("default_avatar.safetensors"))
    speech = load_audio(data_path("speech", "sample_en_1.wav"))
    talk_motion(speech, avatar.model_id, None, None, seed=0)  # loads the model
    t0 = time.perf_counter()
    motion = talk_motion(speech, avatar.model_id, None, None, seed=0)
    talk_per_frame = (time.perf_counter() - t0) / len(motion)
    motion = np.concatenate([motion] * (1 + args.frames // len(motion)))[: args.frames]
    params = HeadParams.from_motion(motion)
    n_gauss = avatar.gaussians.parent.shape[0]
    print(f"avatar: {args.avatar or 'built-in default'} ({n_gauss} Gaussians); {args.frames} frames at {args.size}²")

    render_fps(avatar, params.slice(slice(0, 2)), args.size, before=True)  # compile / load the kernels
    render_fps(avatar, params.slice(slice(0, 2)), args.size, before=False)
    for name, ms in breakdown(avatar, params.slice(slice(0, min(30, args.frames))), args.size, talk_per_frame):
        print(f"  {name:<40} {ms:7.2f} ms/frame")
    max_diff, psnr = frame_diff(avatar, params.slice(slice(0, min(25, args.frames))), args.size)
    print(f"new vs previous frames: max abs diff {max_diff} (uint8), PSNR {psnr:.1f} dB")

    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    single = {"now": 0.0, "before": 0.0}
    for _ in range(args.repeats):
        for key in single:
            single[key] = max(single[key], render_fps(avatar, params, args.size, before=key == "before"))
    numba.set_num_threads(threads)
    torch.set_num_threads(torch_threads)
    print(
        f"pure render, 1 thread: {single['now']:.1f} fps; before: {single['before']:.1f} fps; "
        f"{single['now'] / single['before']:.2f}×"
    )

    best = {"now": (0.0, 0.0), "before": (0.0, 0.0)}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for key in best:
                fps, cpu = export_fps(avatar, params, args.size, Path(tmp) / f"{key}.mp4", before=key == "before")
                print(f"  export {key}: {fps:.1f} fps, {1000 * cpu:.0f} CPU ms/frame (load {load()})")
                if fps > best[key][0]:
                    best[key] = (fps, cpu)
    print(f"load average at end: {load()}")
    now, before = best["now"][0], best["before"][0]
    print(f"export {args.size}² fps: {now:.1f}; before: {before:.1f}; speedup: {now / before:.2f}×")


if __name__ == "__main__":
    main()
