"""``splattalk export``: render the avatar speaking into an mp4 with sound.

Imported when the command runs (``splattalk.cli`` loads it lazily), so torch and the
talk model's modules are imported at the top. The orchestration only: speech → motion (the talk model,
:func:`talk_motion`), motion →
frames (:func:`splattalk.avatar.sequence.render_sequence`), frames + speech → mp4
(:func:`splattalk.mp4.write_mp4`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from splattalk.avatar.io import load_avatar
from splattalk.avatar.sequence import write_sequence
from splattalk.commands import ExportCommand
from splattalk.errors import SplattalkError
from splattalk.head.params import MOTION_FPS, HeadParams, resample_motion, scale_motion
from splattalk.models import check_head_model, default_threads, for_run, resolve_model, run_style
from splattalk.reenact import run_export
from splattalk.run import RunLayout, Tracks, avatar_path, tracks_path
from splattalk.talk.audio import load_audio
from splattalk.talk.inference import generate
from splattalk.talk.style import load_style_clip


def load_motion(path: Path, head_model: str) -> np.ndarray:
    """The motion [T, D] of a ``splattalk talk`` .npz, checked against the avatar's ``head_model``."""
    try:
        with np.load(path, allow_pickle=False) as data:
            motion = np.asarray(data["motion"], np.float32)
            source_model = str(data["head_model"]) if "head_model" in data.files else None
    except (OSError, ValueError, KeyError) as err:
        raise SplattalkError(
            f"cannot read motion from {path} ({err}); make one with `splattalk talk AUDIO --out {path}`"
        ) from None
    if source_model is not None and source_model != head_model:
        raise SplattalkError(f"{path} is motion for head model {source_model!r}, but the avatar uses {head_model!r}")
    return motion


def talk_motion(
    audio: np.ndarray,
    head_model: str,
    checkpoint: Path | None,
    style_path: Path | None,
    seed: int,
    run: Path | None = None,
    use_run_style: bool = True,
) -> np.ndarray:
    """Speech [S] at 16 kHz → motion [T, D] with the default (or given) talk model; with ``run``, its mouth
    adapted to the run's person if ``splattalk adapt RUN`` was run, and (unless ``style_path`` is given or
    ``use_run_style`` is off) the style of the run's own tracked motion."""
    model = for_run(resolve_model(checkpoint), run, checkpoint)
    check_head_model(model, head_model)
    threads = default_threads(model)
    if threads is not None:
        torch.set_num_threads(threads)
    if style_path:
        style = load_style_clip(style_path, model.cfg.motion_dim, model.cfg.style_frames)
    else:
        style = run_style(run, model) if use_run_style else None
    return generate(model, audio, style=style, seed=seed, progress=True)


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
    """Render ``motion`` [T, E+6] (25 fps) on ``avatar`` into ``out`` with ``audio`` (16 kHz) muxed.
    Returns frames written."""
    motion = resample_motion(motion, MOTION_FPS, fps)
    base = tracks.slice(0) if (camera == "tracked" and tracks is not None) else None
    params = HeadParams.from_motion(motion, base=base)
    return write_sequence(
        avatar,
        params,
        out,
        audio,
        size=resolution,
        fps=fps,
        camera=camera,
        background=background,
        tracked=tracked_camera,
        backend=backend,
        progress=progress,
    )


def run(cmd: ExportCommand) -> int:
    if cmd.drive is not None:  # reenactment: another video's tracked motion drives the avatar
        return run_export(cmd)
    if cmd.audio is None and cmd.motion is None:
        raise SplattalkError("give --audio (speech to speak) or --motion (a motion .npz), or both")
    avatar = load_avatar(avatar_path(cmd.run))
    audio = None
    if cmd.audio is not None:
        audio = load_audio(cmd.audio)
    start = time.perf_counter()
    if cmd.motion is not None:
        motion = load_motion(cmd.motion, avatar.model_id)
    else:
        run_dir = RunLayout.of_avatar(cmd.run).root
        motion = talk_motion(
            audio, avatar.model_id, cmd.checkpoint, cmd.style, cmd.seed, run=run_dir, use_run_style=cmd.run_style
        )
    motion = scale_motion(motion, avatar.head.num_expr, cmd.expression_scale, cmd.head_motion_scale)
    tracks, tracked_camera = None, None
    tracks_file = tracks_path(cmd.run)
    if tracks_file is not None:
        run_tracks = Tracks.load(tracks_file)
        tracks, tracked_camera = HeadParams(**run_tracks.per_frame()), run_tracks.camera
    name = (cmd.audio or cmd.motion).stem
    out = cmd.out or (cmd.run if cmd.run.is_dir() else cmd.run.parent) / "exports" / f"{name}.mp4"
    n = export_clip(
        avatar,
        motion,
        out,
        audio,
        resolution=cmd.resolution,
        fps=cmd.fps,
        camera=cmd.camera,
        background=cmd.background,
        tracks=tracks,
        tracked_camera=tracked_camera,
        backend=cmd.backend,
    )
    elapsed = time.perf_counter() - start
    print(
        f"wrote {out}: {n} frames at {cmd.fps} fps ({n / cmd.fps:.1f} s) "
        f"in {elapsed:.1f} s ({n / elapsed:.1f} frames/s)"
    )
    return 0
