"""``splattalk export``: render the avatar speaking into an mp4 with sound."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from splattalk.errors import SplattalkError
from splattalk.head.params import MOTION_FPS, HeadParams
from splattalk.viewer.commands import ExportCommand


def avatar_path(run: Path) -> Path:
    """RUN folder or avatar file → the avatar file."""
    return run if run.suffix == ".safetensors" else run / "avatar" / "avatar.safetensors"


def tracks_path(run: Path) -> Path | None:
    path = (run.parent.parent if run.suffix == ".safetensors" else run) / "tracking" / "tracks.npz"
    return path if path.is_file() else None


def load_motion(path: Path, head_model: str) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as data:
            motion = np.asarray(data["motion"], np.float32)
            source_model = str(data["head_model"]) if "head_model" in data.files else None
    except (OSError, ValueError, KeyError) as err:
        raise SplattalkError(f"cannot read motion from {path} ({err}); make one with `splattalk talk AUDIO --out {path}`") from None
    if source_model is not None and source_model != head_model:
        raise SplattalkError(f"{path} is motion for head model {source_model!r}, but the avatar uses {head_model!r}")
    return motion


def talk_motion(audio: np.ndarray, head_model: str, checkpoint: Path | None, style_path: Path | None, seed: int) -> np.ndarray:
    """Speech [S] at 16 kHz → motion [T, D] with the default (or given) talk model."""
    import torch

    from splattalk.talk.cli import resolve_model
    from splattalk.talk.inference import generate
    from splattalk.talk.style import load_style_clip

    model = resolve_model(checkpoint)
    if model.cfg.head_model != head_model:
        raise SplattalkError(
            f"the talk model makes motion for head model {model.cfg.head_model!r} but the avatar uses {head_model!r}: "
            + ("the official ARTalk checkpoint needs an avatar fitted with FLAME 2020" if model.cfg.head_model == "flame2020" else "pass a matching --checkpoint")
        )
    if model.cfg.audio_encoder != "wav2vec2":
        torch.set_num_threads(1)
    style = load_style_clip(style_path, model.cfg.motion_dim, model.cfg.style_frames) if style_path else None
    return generate(model, audio, style=style, seed=seed, progress=True)


def resample_motion(motion: np.ndarray, fps: int) -> np.ndarray:
    """Linear resampling of a 25 fps motion [T, D] to ``fps``."""
    if fps == MOTION_FPS:
        return motion
    t_src = np.arange(len(motion)) / MOTION_FPS
    n = int(round(len(motion) * fps / MOTION_FPS))
    t_dst = np.arange(n) / fps
    return np.stack([np.interp(t_dst, t_src, motion[:, d]) for d in range(motion.shape[1])], 1).astype(np.float32)


def scale_motion(motion: np.ndarray, expr_dim: int, expression: float = 1.0, head: float = 1.0) -> np.ndarray:
    """Scale expression + jaw (``expression``) and the head rotation (``head``) of a motion [T, E+6]."""
    out = motion.copy()
    out[:, :expr_dim] *= expression
    out[:, expr_dim + 3 :] *= expression
    out[:, expr_dim : expr_dim + 3] *= head
    return out


def render_frames(avatar, params: HeadParams, viewmats: np.ndarray, ks: np.ndarray, size: int, background, backend: str = "auto"):
    """Yield uint8 RGB frames [size, size, 3] of the avatar for each frame of ``params``."""
    import torch

    from splattalk.avatar.model import animate
    from splattalk.avatar.render import rasterize

    bg = torch.tensor(background, dtype=torch.float32)
    with torch.no_grad():
        for i in range(len(params)):
            g = animate(avatar, params.slice(i)).frame(0)
            rgb, _ = rasterize(
                g.means, g.quats, g.scales, g.opacities, g.sh, torch.from_numpy(viewmats[i]), torch.from_numpy(ks[i]),
                size, size, bg, backend=backend, sh_degree=g.sh_degree,
            )
            yield (rgb.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()


def export_clip(
    avatar,
    motion: np.ndarray,
    out: Path,
    audio: np.ndarray | None = None,
    *,
    resolution: int = 512,
    fps: int = MOTION_FPS,
    camera: str = "front",
    background=(1.0, 1.0, 1.0),
    tracks: HeadParams | None = None,
    tracked_camera=None,
    backend: str = "auto",
    progress: bool = True,
) -> int:
    """Render ``motion`` [T, E+6] (25 fps) on ``avatar`` into ``out`` with ``audio`` (16 kHz) muxed. Returns frames written."""
    from tqdm import tqdm

    from splattalk.avatar.model import posed_vertices
    from splattalk.viewer.camera import camera_path
    from splattalk.viewer.video import write_mp4

    if resolution % 2:
        raise SplattalkError(f"--resolution must be even for H.264 (got {resolution})")
    motion = resample_motion(motion, fps)
    base = tracks.slice(0) if (camera == "tracked" and tracks is not None) else None
    params = HeadParams.from_motion(motion, base=base)
    if camera == "tracked" and tracked_camera is None:
        raise SplattalkError("--camera tracked needs the run's tracking (RUN/tracking/tracks.npz)")
    import torch

    with torch.no_grad():
        rest = posed_vertices(avatar, HeadParams.zeros(1, params.expr.shape[1]))[0].numpy()
    viewmats, ks = camera_path(camera, len(params), rest, resolution, resolution, tracked=tracked_camera, fps=fps)
    frames = render_frames(avatar, params, viewmats, ks, resolution, background, backend)
    if progress:
        frames = tqdm(frames, total=len(params), desc="export", unit="frame")
    return write_mp4(out, frames, fps, audio)


def run(cmd: ExportCommand) -> int:
    from splattalk.avatar.io import load_avatar

    if cmd.drive is not None:  # reenactment: splattalk/reenact.py
        from splattalk.reenact import run_export

        return run_export(cmd)
    if cmd.audio is None and cmd.motion is None:
        raise SplattalkError("give --audio (speech to speak) or --motion (a motion .npz), or both")
    avatar = load_avatar(avatar_path(cmd.run))
    audio = None
    if cmd.audio is not None:
        from splattalk.talk.audio import load_audio

        audio = load_audio(cmd.audio)
    start = time.perf_counter()
    if cmd.motion is not None:
        motion = load_motion(cmd.motion, avatar.model_id)
    else:
        motion = talk_motion(audio, avatar.model_id, cmd.checkpoint, cmd.style, cmd.seed)
    motion = scale_motion(motion, avatar.head.num_expr, cmd.expression_scale, cmd.head_motion_scale)
    tracks, tracked_camera = None, None
    tp = tracks_path(cmd.run)
    if tp is not None:
        tracks = HeadParams.from_npz(tp)
        with np.load(tp, allow_pickle=False) as data:
            if {"viewmat", "K", "width", "height"} <= set(data.files):
                tracked_camera = (data["viewmat"], data["K"], int(data["width"]), int(data["height"]))
    name = (cmd.audio or cmd.motion).stem
    out = cmd.out or (cmd.run if cmd.run.is_dir() else cmd.run.parent) / "exports" / f"{name}.mp4"
    n = export_clip(
        avatar, motion, out, audio, resolution=cmd.resolution, fps=cmd.fps, camera=cmd.camera,
        background=cmd.background, tracks=tracks, tracked_camera=tracked_camera, backend=cmd.backend,
    )
    elapsed = time.perf_counter() - start
    print(f"wrote {out}: {n} frames at {cmd.fps} fps ({n / cmd.fps:.1f} s) in {elapsed:.1f} s ({n / elapsed:.1f} frames/s)")
    return 0
