"""Reenactment: drive one avatar with another video's tracked expressions, jaw, eyes and head motion.

A *driver* is a run folder made by ``splattalk track`` (read directly) or a
video, which is tracked first with the avatar's head model into a cache run
folder (reused on the next call). Its per-frame parameters are resampled to
the motion frame rate and retargeted onto the avatar:

* expression, jaw and eye rotations are copied as they are (they live in the
  head model's shared spaces; the avatar keeps its own identity shape);
* head rotation, neck and translation are taken *relative* to the driver's
  mean pose and applied on top of the avatar's own base pose (its tracked
  frame 0, or facing the camera), so the avatar moves like the driver does
  without taking over where the driver sat in its frame.

The result is a motion array ``[T, E + 6]`` (expression, relative rotation,
jaw — what ``HeadParams.from_motion`` composes with the base pose, and what the
viewer's scales act on) plus *extras* ``[T, 12]`` (neck, translation, eyes,
absolute) that a motion array cannot carry.

This module belongs to the application package because it joins two stages
the lower packages keep apart: tracking (for a driving video) and the
avatar/viewer side that renders the result.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from splattalk.avatar.io import load_avatar
from splattalk.avatar.sequence import write_sequence
from splattalk.errors import SplattalkError
from splattalk.head.params import MOTION_FPS, HeadParams, scale_motion
from splattalk.run import RunLayout, Tracks, avatar_path, tracks_path
from splattalk.talk.audio import load_audio
from splattalk.tracking.config import TrackConfig
from splattalk.tracking.run import track

EXTRAS_DIM = 12
"""Per-frame values a motion row cannot carry: neck [3], translation [3], eyes [6]."""
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".m4v"}


@dataclass
class Driver:
    """A driving performance at :data:`MOTION_FPS`."""

    params: HeadParams
    """[T] the driver's tracked parameters, resampled to 25 fps"""
    head_model: str
    audio: np.ndarray | None
    """[S] 16 kHz mono sound of the driving video (None when it cannot be found)"""
    run: Path
    """The driving run folder (the given one, or the cache a video was tracked into)"""
    source_fps: float

    @property
    def duration(self) -> float:
        return len(self.params) / MOTION_FPS


# -- finding and loading a driver ------------------------------------------------------------------


def _head_choice(model_id: str) -> str:
    """The ``splattalk track --head`` value that gives ``model_id``."""
    for choice in ("flame2023", "flame2020"):
        if model_id.startswith(choice):
            return choice
    return "default"


def default_cache(source: Path, out: Path | None) -> Path:
    """Where a driving video is tracked when no cache folder is given: next to the output, else next to the video."""
    folder = out.parent if out is not None else source.parent
    return folder / f"drive-{source.stem}"


def driving_run(
    source: Path,
    head_model: str,
    cache: Path | None = None,
    out: Path | None = None,
    progress: bool = True,
) -> Path:
    """``source`` (a run folder or a video) → a run folder with ``tracking/tracks.npz``;
    a video is tracked first (resumable)."""
    source = Path(source)
    if source.is_dir():
        if not (source / "tracking" / "tracks.npz").is_file():
            raise SplattalkError(
                f"--drive {source}: a folder must be a run made by `splattalk track` (no tracking/tracks.npz in it)"
            )
        return source
    if not source.is_file():
        raise SplattalkError(f"--drive {source}: no such video or run folder")
    if source.suffix.lower() not in VIDEO_SUFFIXES:
        raise SplattalkError(
            f"--drive {source}: expected a video ({', '.join(sorted(VIDEO_SUFFIXES))}) or a run folder"
        )

    run = Path(cache) if cache is not None else default_cache(source, out)
    # no mattes, no overlay: reenactment only needs the parameters (and a rerun with the same settings resumes)
    track(
        source,
        run,
        TrackConfig(head=_head_choice(head_model), masks=False, overlay=False),
        progress=progress,
    )
    return run


def load_driver(
    source: Path,
    head_model: str,
    num_expr: int,
    cache: Path | None = None,
    out: Path | None = None,
    progress: bool = True,
) -> Driver:
    """Track (if a video) and read a driver; refuses one of another head model.
    Sound: the video's, if it can be found."""
    source = Path(source)
    run = driving_run(source, head_model, cache, out, progress)
    data = Tracks.load(RunLayout(run).tracks)  # a missing or broken file is a clear SplattalkError
    model, fps = data.head_model, float(data.fps)
    if model is not None and model != head_model:
        raise SplattalkError(
            f"the driving run {run} was tracked with head model {model!r} but the avatar uses {head_model!r}: "
            f"track the driving video again with `splattalk track VIDEO --run RUN --head {_head_choice(head_model)}`, "
            "or pass the video itself to --drive (it is then tracked with the avatar's head model)"
        )
    params = HeadParams(**data.per_frame())
    if params.expr.shape[1] != num_expr:
        raise SplattalkError(
            f"the driving run {run} has {params.expr.shape[1]} expression coefficients "
            f"but the avatar's head model has {num_expr}"
        )
    if len(params) < 2:
        raise SplattalkError(f"the driving run {run} has {len(params)} frame(s); reenactment needs at least 2")
    if not np.isfinite(fps) or fps <= 0:
        raise SplattalkError(f"the driving run's {RunLayout(run).tracks} has a frame rate of {fps}")
    video = source if source.is_file() else _source_video(run)
    audio = _video_audio(video) if video is not None else None
    return Driver(resample_params(params, fps, MOTION_FPS), model or head_model, audio, run, fps)


def _source_video(run: Path) -> Path | None:
    """The video a run was tracked from (``tracking/config.json``), if it is still there."""
    try:
        video = Path(json.loads((run / "tracking" / "config.json").read_text())["video"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return video if video.is_file() else None


def _video_audio(video: Path) -> np.ndarray | None:
    try:
        return load_audio(video, max_bytes=None)
    except SplattalkError:
        return None  # a video without sound: the export is silent


# -- resampling and retargeting --------------------------------------------------------------------


def resample_params(params: HeadParams, fps: float, target_fps: float = MOTION_FPS) -> HeadParams:
    """Parameters at ``fps`` → ``target_fps`` over the same duration.

    Linear in every coefficient, except the global head rotation, which is
    interpolated along the shortest arc (slerp); jaw, neck and eye angles are small
    enough for linear interpolation of their axis-angle vectors.
    """
    if abs(fps - target_fps) < 1e-6:
        return params

    n = len(params)
    t_src, t_dst = _times(n, fps, target_fps)

    def lin(a: np.ndarray) -> np.ndarray:
        return resample_rows(a, fps, target_fps)

    rot = Slerp(t_src, Rotation.from_rotvec(params.rot.astype(np.float64)))(t_dst).as_rotvec().astype(np.float32)
    return HeadParams(
        lin(params.expr),
        lin(params.jaw),
        lin(params.neck),
        rot,
        lin(params.transl),
        lin(params.eyes),
    )


def retarget(
    driver: HeadParams, base: HeadParams | None = None, reference: HeadParams | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Driver parameters ``[T]`` → (motion ``[T, E + 6]``, extras ``[T, 12]``) for an avatar at ``base``
    (frame 0; None: facing the camera).

    The motion's rotation is the driver's rotation relative to the mean head
    orientation of ``reference`` (frames of the driver; None: all of it); neck and
    translation are offsets from the reference's mean, translation turned from the
    driver's head frame into the avatar's. A live mirror passes its first frames.
    """
    e = driver.expr.shape[1]
    reference = driver if reference is None else reference
    rots = Rotation.from_rotvec(driver.rot.astype(np.float64))
    ref = Rotation.from_rotvec(reference.rot.astype(np.float64)).mean()
    rel = (ref.inv() * rots).as_rotvec().astype(np.float32)
    base_rot = Rotation.from_rotvec(base.rot[0].astype(np.float64)) if base is not None else Rotation.identity()
    offsets = (
        (base_rot * ref.inv()).apply((driver.transl - reference.transl.mean(0)).astype(np.float64)).astype(np.float32)
    )
    base_transl = base.transl[0] if base is not None else np.zeros(3, np.float32)
    base_neck = base.neck[0] if base is not None else np.zeros(3, np.float32)
    neck = driver.neck - reference.neck.mean(0) + base_neck
    motion = np.concatenate([driver.expr, rel, driver.jaw], 1).astype(np.float32)
    extras = np.concatenate([neck, offsets + base_transl, driver.eyes], 1).astype(np.float32)
    assert motion.shape[1] == e + 6 and extras.shape[1] == EXTRAS_DIM
    return motion, extras


MOUTH_PREFIXES = ("mouth", "lip", "upper_lip", "lower_lip", "lips", "jaw")
"""Expression channels (by name) that :func:`scale_mouth` counts as the mouth."""


def scale_mouth(motion: np.ndarray, expr_names, gain: float) -> np.ndarray:
    """Multiply the jaw and the mouth's named expression channels of ``motion`` ``[T, E + 6]`` by ``gain``.

    Head models with unnamed (PCA) expressions, such as FLAME, only get the jaw scaled.
    """
    if gain == 1.0:
        return motion
    out = np.array(motion, np.float32, copy=True)
    e = out.shape[1] - 6
    names = list(expr_names)[:e]
    mouth = [i for i, name in enumerate(names) if str(name).startswith(MOUTH_PREFIXES)]
    out[:, mouth] *= gain
    out[:, e + 3 :] *= gain
    return out


def apply_extras(params: HeadParams, extras: np.ndarray) -> HeadParams:
    """Neck, translation and eyes of ``params`` ``[T]`` replaced by ``extras`` ``[T, 12]`` (in place; returned)."""
    extras = np.asarray(extras, np.float32)
    params.neck = extras[:, 0:3].copy()
    params.transl = extras[:, 3:6].copy()
    params.eyes = extras[:, 6:12].copy()
    return params


def driven_params(motion: np.ndarray, extras: np.ndarray, base: HeadParams | None = None) -> HeadParams:
    """What the renderer poses: ``from_motion(motion, base)`` with the driver's neck, translation and eyes."""
    return apply_extras(HeadParams.from_motion(motion, base), extras)


def _times(n: int, fps: float, target_fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Sample times of ``n`` frames at ``fps`` and of the same duration at ``target_fps`` (held at the last frame)."""
    t_src = np.arange(n) / fps
    m = max(1, round(n * target_fps / fps))
    return t_src, np.minimum(np.arange(m) / target_fps, t_src[-1])


def resample_rows(rows: np.ndarray, fps: float, target_fps: float) -> np.ndarray:
    """Linear resampling of rows ``[T, D]`` from ``fps`` to ``target_fps``."""
    if abs(fps - target_fps) < 1e-6:
        return np.asarray(rows, np.float32)
    t_src, t_dst = _times(len(rows), fps, target_fps)
    return np.stack([np.interp(t_dst, t_src, rows[:, d]) for d in range(rows.shape[1])], 1).astype(np.float32)


# -- export ------------------------------------------------------------------------------------------


def export_driven(
    avatar,
    motion: np.ndarray,
    extras: np.ndarray,
    out: Path,
    audio: np.ndarray | None = None,
    *,
    resolution: int = 512,
    fps: int = MOTION_FPS,
    camera: str = "front",
    background=(1.0, 1.0, 1.0),
    base: HeadParams | None = None,
    tracked_camera=None,
    backend: str = "auto",
    progress: bool = True,
) -> int:
    """Render a retargeted performance (25 fps ``motion`` + ``extras``) into ``out`` with ``audio`` (16 kHz).
    Returns frames written."""
    params = driven_params(
        resample_rows(motion, MOTION_FPS, fps),
        resample_rows(extras, MOTION_FPS, fps),
        base,
    )
    return write_sequence(
        avatar,
        params,
        out,
        audio,
        size=resolution,
        fps=fps,
        camera=camera,
        rest=HeadParams.from_motion(np.zeros_like(motion[:1]), base),
        background=background,
        tracked=tracked_camera,
        backend=backend,
        progress=progress,
        desc="reenact",
    )


def run_export(cmd) -> int:
    """``splattalk export RUN --drive VIDEO_OR_RUN`` (``cmd``: the export command's config)."""
    if cmd.motion is not None:
        raise SplattalkError("--drive and --motion both give the motion: pass one of them")
    avatar = load_avatar(avatar_path(cmd.run))
    default_out = (cmd.run if cmd.run.is_dir() else cmd.run.parent) / "exports" / f"drive-{Path(cmd.drive).stem}.mp4"
    out = cmd.out or default_out
    start = time.perf_counter()
    driver = load_driver(cmd.drive, avatar.model_id, avatar.head.num_expr, cmd.drive_cache, out)
    audio = driver.audio
    if cmd.audio is not None:
        audio = load_audio(cmd.audio)
    tp = tracks_path(cmd.run)
    tracked = Tracks.load(tp) if tp is not None else None
    tracks = HeadParams(**tracked.per_frame()) if tracked is not None else None
    tracked_camera = tracked.camera if tracked is not None else None
    base = tracks.slice(0) if (cmd.camera == "tracked" and tracks is not None) else None
    motion, extras = retarget(driver.params, base)
    motion = scale_motion(motion, avatar.head.num_expr, cmd.expression_scale, cmd.head_motion_scale)
    motion = scale_mouth(motion, avatar.head.expr_names, cmd.drive_mouth_gain)
    n = export_driven(
        avatar,
        motion,
        extras,
        out,
        audio,
        resolution=cmd.resolution,
        fps=cmd.fps,
        camera=cmd.camera,
        background=cmd.background,
        base=base,
        tracked_camera=tracked_camera,
        backend=cmd.backend,
    )
    elapsed = time.perf_counter() - start
    sound = (
        "with the driver's sound"
        if driver.audio is not None and cmd.audio is None
        else ("with --audio" if cmd.audio else "silent")
    )
    print(
        f"wrote {out}: {n} frames at {cmd.fps} fps ({n / cmd.fps:.1f} s), driven by {driver.run} "
        f"({driver.source_fps:g} fps source), {sound}, in {elapsed:.1f} s"
    )
    return 0


def view_drive(
    source: Path,
    cache: Path | None,
    avatar,
    base: HeadParams | None,
    log=print,
    mouth_gain: float = 1.0,
) -> tuple:
    """``splattalk view RUN --drive …``: the driven clip every tab plays, (audio, motion, extras, label)."""
    driver = load_driver(Path(source), avatar.model_id, avatar.head.num_expr, cache)
    motion, extras = retarget(driver.params, base.slice(0) if base is not None else None)
    motion = scale_mouth(motion, avatar.head.expr_names, mouth_gain)
    sound = "with its sound" if driver.audio is not None else "silent (no sound found)"
    log(
        f"drive: {driver.run} ({len(motion)} frames, {driver.duration:.1f} s, "
        f"{driver.source_fps:g} fps source), {sound}"
    )
    return driver.audio, motion, extras, f"driven by {Path(source).name}"
