"""Render the embedded sample video: the default head speaking and moving, with known parameters.

Writes ``splattalk/data/sample/sample.mp4`` (H.264, yuv420p, 25 fps, 512², ~10 s)
and ``sample_gt.npz`` (every per-frame parameter, the identity shape, the camera),
deterministically from ``--seed``. The motion is smooth and random but shaped
like speech: syllables at 3–5 Hz in phrases separated by pauses, lip shapes per
syllable, blinks every 2–5 s, smiles, brow raises, saccadic gaze, and head
rotation up to ±20° yaw / ±10° pitch / ±5° roll with a little translation.

    python scripts/make_sample_video.py [--seconds 10] [--seed 0] [--out splattalk/data/sample]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from splattalk.atomic import save_npz
from splattalk.camera import focal_from_fov, intrinsics, look_at
from splattalk.head.default import EXPR_NAMES, load_default_head, load_texture
from splattalk.head.raster import render_mesh
from splattalk.mp4 import write_mp4

FPS = 25
SIZE = 512
FOV_DEG = 25.0
CAMERA_EYE = np.array([0.0, 0.01, 0.62])
CAMERA_TARGET = np.array([0.0, -0.012, -0.03])
BACKGROUND_TOP = np.array([0.78, 0.80, 0.83])
BACKGROUND_BOTTOM = np.array([0.62, 0.64, 0.68])


def _idx(name: str) -> int:
    return EXPR_NAMES.index(name)


def _smooth_noise(rng: np.random.Generator, n: int, fps: float, cutoff_hz: float) -> np.ndarray:
    """Unit-variance low-pass noise [n]: white noise through a Gaussian kernel of width ~1/cutoff."""
    sigma = fps / (2 * np.pi * cutoff_hz)
    half = int(4 * sigma) + 1
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    x = np.convolve(rng.normal(size=n + 2 * half), kernel, mode="valid")[:n]
    return x / np.sqrt((kernel**2).sum())  # unit variance in expectation, whatever the length


def _bump(t: np.ndarray, centre: float, width: float) -> np.ndarray:
    """Raised-cosine bump of full width ``width`` seconds, peak 1 at ``centre``."""
    u = np.clip((t - centre) / width * 2, -1, 1)
    return 0.5 * (1 + np.cos(np.pi * u))


def _plateau(t: np.ndarray, start: float, end: float, ramp: float) -> np.ndarray:
    """0 → 1 over ``ramp`` seconds from ``start``, hold, 1 → 0 ending at ``end``."""
    up = np.clip((t - start) / ramp, 0, 1)
    down = np.clip((end - t) / ramp, 0, 1)
    s = np.minimum(up, down)
    return s * s * (3 - 2 * s)


def speech_motion(rng: np.random.Generator, num_frames: int, fps: float = FPS) -> dict[str, np.ndarray]:
    """Per-frame parameters of the default head, shaped like someone talking (see module docstring)."""
    t = np.arange(num_frames) / fps
    duration = num_frames / fps
    expr = np.zeros((num_frames, len(EXPR_NAMES)))
    jaw = np.zeros((num_frames, 3))

    # phrases of 1.2–3 s at 3–5 syllables/s, separated by 0.3–0.9 s pauses
    syllables: list[tuple[float, float, float]] = []
    cursor = rng.uniform(0.2, 0.5)
    while cursor < duration - 0.4:
        phrase_end = min(cursor + rng.uniform(1.2, 3.0), duration - 0.2)
        rate = rng.uniform(3.0, 5.0)
        while cursor < phrase_end:
            syllables.append((cursor, rng.uniform(0.6, 1.0) / rate * 1.6, rng.uniform(0.3, 1.0)))
            cursor += rng.uniform(0.8, 1.2) / rate
        cursor = phrase_end + rng.uniform(0.3, 0.9)
    lip_shapes = ("mouth_stretch", "mouth_pucker", "mouth_funnel", "upper_lip_raise", "lower_lip_depress")
    for centre, width, loud in syllables:
        bump = _bump(t, centre, width)
        jaw[:, 0] = np.maximum(jaw[:, 0], loud * rng.uniform(0.06, 0.18) * bump)  # conversational: up to ~10°
        expr[:, _idx("mouth_open")] = np.maximum(expr[:, _idx("mouth_open")], loud * rng.uniform(0.2, 0.6) * bump)
        shape = lip_shapes[rng.integers(len(lip_shapes))]
        expr[:, _idx(shape)] += rng.uniform(0.2, 0.7) * bump
        if rng.random() < 0.25:  # a bilabial: lips pressed between syllables
            expr[:, _idx("lips_press")] += 0.6 * _bump(t, centre + width / 2, 0.12)
    jaw[:, 1] = 0.01 * _smooth_noise(rng, num_frames, fps, 0.7)  # slight lateral jaw drift
    expr[:, _idx("mouth_left")] += 0.15 * np.clip(_smooth_noise(rng, num_frames, fps, 0.3), 0, None)
    expr[:, _idx("mouth_right")] += 0.15 * np.clip(-_smooth_noise(rng, num_frames, fps, 0.3), 0, None)

    # a couple of smiles, brow raises on emphasis
    for _ in range(2):
        start = rng.uniform(0, max(duration - 2.5, 0.1))
        smile = _plateau(t, start, start + rng.uniform(1.2, 2.5), 0.4) * rng.uniform(0.5, 0.9)
        expr[:, _idx("smile")] += smile
        expr[:, _idx("cheek_raise")] += 0.6 * smile
    for _ in range(int(duration / 2.5)):
        raise_ = _bump(t, rng.uniform(0, duration), rng.uniform(0.5, 1.0)) * rng.uniform(0.4, 0.9)
        expr[:, _idx("brow_inner_up")] += raise_
        expr[:, _idx("brow_outer_up")] += 0.8 * raise_
    start = rng.uniform(0, max(duration - 1.5, 0.1))
    frown = _plateau(t, start, start + 1.0, 0.3) * 0.5
    expr[:, _idx("brow_down")] += frown
    expr[:, _idx("brow_in")] += frown

    # blinks every 2–5 s (close in ~80 ms, reopen in ~150 ms)
    blink_at = rng.uniform(0.3, 1.5)
    while blink_at < duration:
        closing = np.clip((t - (blink_at - 0.08)) / 0.08, 0, 1)
        opening = np.clip(((blink_at + 0.15) - t) / 0.15, 0, 1)
        blink = np.where(t < blink_at, closing, opening)
        for side in ("blink_left", "blink_right"):
            expr[:, _idx(side)] = np.maximum(expr[:, _idx(side)], blink)
        blink_at += rng.uniform(2.0, 5.0)
    expr = np.clip(expr, 0.0, 1.0)

    # head rotation: smooth random, capped; the root joint is at the neck base (FLAME's convention)
    limits = np.radians([10.0, 20.0, 5.0])  # pitch (x), yaw (y), roll (z)
    rot = np.stack([np.tanh(0.6 * _smooth_noise(rng, num_frames, fps, 0.35)) for _ in range(3)], 1) * limits
    rot[:, 0] += 0.02 * np.convolve(jaw[:, 0], np.ones(5) / 5, mode="same")  # nods with emphasis
    transl = np.stack([_smooth_noise(rng, num_frames, fps, 0.25) for _ in range(3)], 1) * np.array([0.006, 0.004, 0.01])

    # gaze: fixations with fast saccades, both eyes together
    gaze = np.zeros((num_frames, 2))
    cursor, target = 0.0, np.zeros(2)
    while cursor < duration:
        new = np.radians([rng.uniform(-6, 6), rng.uniform(-12, 12)])
        move = np.clip((t - cursor) / 0.05, 0, 1)[:, None]
        gaze = np.where((t >= cursor)[:, None], target + (new - target) * move, gaze)
        target, cursor = new, cursor + rng.uniform(0.5, 2.0)
    eyes = np.concatenate([gaze, np.zeros((num_frames, 1)), gaze, np.zeros((num_frames, 1))], 1)

    return {
        "expr": expr.astype(np.float32),
        "jaw": jaw.astype(np.float32),
        "neck": np.zeros((num_frames, 3), np.float32),
        "rot": rot.astype(np.float32),
        "transl": transl.astype(np.float32),
        "eyes": eyes.astype(np.float32),
    }


def background(size: int) -> np.ndarray:
    ramp = np.linspace(0, 1, size)[:, None, None]
    return (BACKGROUND_TOP * (1 - ramp) + BACKGROUND_BOTTOM * ramp).repeat(size, 1).astype(np.float32)


def render_frames(
    model,
    params: dict[str, np.ndarray],
    shape: np.ndarray,
    K: np.ndarray,
    viewmat: np.ndarray,
    rng: np.random.Generator,
    supersample: int = 2,
):
    """Yield uint8 RGB frames [SIZE, SIZE, 3]."""
    texture = load_texture()
    uvs, uv_faces, faces = model.uvs.numpy(), model.uv_faces.numpy(), model.faces_np
    bg = background(SIZE)
    with torch.no_grad():
        out = model(
            shape=torch.from_numpy(shape),
            expr=torch.from_numpy(params["expr"]),
            rotation=torch.from_numpy(params["rot"]),
            neck=torch.from_numpy(params["neck"]),
            jaw=torch.from_numpy(params["jaw"]),
            eyes=torch.from_numpy(params["eyes"]),
            translation=torch.from_numpy(params["transl"]),
        )
    for verts in out.vertices.numpy():
        r = render_mesh(
            verts,
            faces,
            viewmat,
            K,
            SIZE,
            SIZE,
            texture=texture,
            uvs=uvs,
            uv_faces=uv_faces,
            shading=0.55,
            background=(0, 0, 0),
            supersample=supersample,
        )
        rgb = r.rgb + bg * (1 - r.alpha[..., None])  # rgb is premultiplied over a black background
        rgb = rgb + rng.normal(0, 1.2 / 255, rgb.shape)  # a little sensor noise
        yield (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "splattalk" / "data" / "sample"
    )
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    num_frames = int(round(args.seconds * FPS))
    model = load_default_head()
    shape = np.clip(rng.normal(0, 1.0, model.num_shape), -2, 2).astype(np.float32)
    params = speech_motion(rng, num_frames)
    K = intrinsics(focal_from_fov(FOV_DEG, SIZE), SIZE, SIZE)
    viewmat = look_at(CAMERA_EYE, CAMERA_TARGET)

    start = time.perf_counter()
    frames = tqdm(render_frames(model, params, shape, K, viewmat, rng), total=num_frames, desc="render", unit="frame")
    write_mp4(args.out / "sample.mp4", frames, FPS, crf=20, preset="slow", threads=1)
    save_npz(
        args.out / "sample_gt.npz",
        shape=shape,
        **params,
        K=K.astype(np.float32),
        viewmat=viewmat.astype(np.float32),
        width=np.int32(SIZE),
        height=np.int32(SIZE),
        fps=np.float32(FPS),
        head_model=np.str_(model.model_id),
        seed=np.int32(args.seed),
        convention=np.str_(
            "viewmat: world→camera, OpenCV (x right, y down, z forward); world = head-model frame "
            "(metres, y up, +z where the face looks); pixel centres at +0.5; eyes = [left, right] axis-angle"
        ),
    )
    size_kb = (args.out / "sample.mp4").stat().st_size / 1024
    print(
        f"wrote {args.out / 'sample.mp4'} ({num_frames} frames, {size_kb:.0f} KiB) and sample_gt.npz "
        f"in {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
