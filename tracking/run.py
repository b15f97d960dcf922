"""The tracking stage (``splattalk track``): video → run folder (frames, masks, tracks, cameras, overlay), resumable.

Sub-stages, each skipped on rerun when its recorded key (a hash of its inputs
and settings) matches what is on disk, and redone from scratch otherwise:

1. landmarks  decode + mediapipe → ``tracking/landmarks.npz`` (source pixels)
2. frames     decode again, fixed crop → ``frames/*.jpg``, ``masks/*.png``, then ``tracking/frames.json``
3. fit        → ``tracking/tracks.npz``
4. export     → ``tracking/transforms.json``, ``tracking/flame_param/*.npz``
5. overlay    → ``tracking/overlay.mp4`` (its key in the mp4's metadata)

``tracking/config.json`` is written last. Bad input fails before anything is
written; every file is written atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
import zipfile
from pathlib import Path

import av
import cv2
import numpy as np
from tqdm import tqdm

from splattalk import assets
from splattalk.atomic import save_npz, write_bytes, write_json
from splattalk.camera import focal_from_fov, fov_from_focal, intrinsics
from splattalk.errors import SplattalkError
from splattalk.head.default import load_default_head
from splattalk.head.flame import load_flame
from splattalk.run import PER_FRAME, RunLayout, Tracks
from splattalk.tracking.config import TrackConfig
from splattalk.tracking.crop import Crop, plan_crop
from splattalk.tracking.export import write_frame_params, write_transforms
from splattalk.tracking.fit import fit_tracks
from splattalk.tracking.landmarks import detect
from splattalk.tracking.matting import Matter
from splattalk.tracking.offsets import static_offset_field
from splattalk.tracking.overlay import write_overlay_video
from splattalk.tracking.video import Source, iter_frames, open_source, scaled_size, work_scale

FORMAT_VERSION = 1
"""Bump when an output's layout changes: old run folders are then recomputed, not misread."""
MAX_OUTSIDE = 0.25
"""A face with more than this fraction of its landmarks outside the frame counts as not found (it is leaving)."""
DEFAULT_FOV_DEG = 55.0
"""Starting field of view (along the source's longer side) when the camera is unknown: a phone's main camera."""


def _key(*parts) -> str:
    text = json.dumps([FORMAT_VERSION, *parts], sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class _Clock:
    """Seconds per stage, including time spent inside the frame iterators (decode)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def timed(self, iterable, name: str):
        iterator = iter(iterable)
        while True:
            start = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                self.add(name, time.perf_counter() - start)
                return
            self.add(name, time.perf_counter() - start)
            yield item


def select_head(choice: str):
    """The head model for ``--head`` (see ``TrackConfig.head``), and a note on the choice."""
    if choice == "default":
        return load_default_head(), "built-in default head"
    wanted = {
        "flame2023": [assets.FLAME_2023],
        "flame2020": [assets.FLAME_2020],
        "auto": [assets.FLAME_2023, assets.FLAME_2020],
    }[choice]
    found = [(a, a.find()) for a in wanted]
    found = [(a, p) for a, p in found if p is not None]
    if not found:
        if choice == "auto":
            return load_default_head(), "built-in default head (no FLAME file in $SPLATTALK_ASSETS)"
        asset = wanted[0]
        raise SplattalkError(
            f"--head {choice}: {asset.filenames[0]} not found in {assets.assets_dir()}. "
            f"Get it from {asset.where}, or use --head default."
        )
    asset, path = found[0]
    embedding = assets.FLAME_MEDIAPIPE_EMBEDDING.find()
    if embedding is None:
        if choice == "auto":
            return load_default_head(), (
                f"built-in default head (found {path.name} but not "
                f"{assets.FLAME_MEDIAPIPE_EMBEDDING.filenames[0]}, which tracking FLAME needs)"
            )
        raise SplattalkError(
            f"--head {choice}: tracking FLAME needs the mediapipe landmark embedding "
            f"{assets.FLAME_MEDIAPIPE_EMBEDDING.filenames[0]} in {assets.assets_dir()}; it "
            f"{assets.FLAME_MEDIAPIPE_EMBEDDING.where}. Or use --head default."
        )

    return load_flame(path, mediapipe_embedding=embedding), f"FLAME from {path}"


def track(video: str | Path, run_dir: str | Path, cfg: TrackConfig = TrackConfig(), progress: bool = True) -> dict:
    """Run the tracking stage; returns a summary (also written to ``tracking/config.json``)."""
    start = time.perf_counter()
    run_dir = Path(run_dir)
    layout = RunLayout(run_dir)
    clock = _Clock()
    source = open_source(video)
    model, head_note = select_head(cfg.head)
    notes = [f"head model: {head_note}"]

    # 1. landmarks -------------------------------------------------------------------------
    decode_scale = work_scale(source)
    lmk_key = _key(
        "landmarks",
        source.fingerprint(),
        cfg.fps,
        cfg.max_seconds,
        cfg.max_faces,
        *([round(decode_scale, 6)] if decode_scale < 1 else []),  # keys of full-size decodes stay as they were
    )
    det = _load_landmarks(layout.landmarks, lmk_key)
    if det is None:
        _invalidate(layout)  # another input (or a first run): nothing of an earlier run may look current
        detected = _detect(source, cfg, decode_scale, clock, progress)
        notes += [f"warning: {w}" for w in detected.pop("warnings")]
        det, leaving_notes = _drop_faces_leaving(detected, source)
        notes += _check_detections(det, source, cfg) + leaving_notes
        save_npz(layout.landmarks, key=np.str_(lmk_key), **detected)  # as detected: the rule above reapplies
    else:
        det, leaving_notes = _drop_faces_leaving(det, source)
        notes += _check_detections(det, source, cfg) + leaving_notes
        notes.append("landmarks: reused")
    num_frames = len(det["found"])
    leaving = det["leaving"]

    # 2. crop, frames, masks ---------------------------------------------------------------
    crop = plan_crop(det["points"], det["found"], source.width, source.height, cfg.size, cfg.crop_scale, cfg.crop_up)
    if crop.scale > 2.0:
        notes.append(
            f"the head region is only {crop.side:.0f} px in the source and is upscaled {crop.scale:.1f}x to "
            f"{cfg.size} px: expect a blurry avatar (film closer or at a higher resolution)"
        )
    frames_scale = _frames_scale(decode_scale, crop)
    if decode_scale < 1:
        w, h = scaled_size(source.width, source.height, decode_scale)
        fw, fh = scaled_size(source.width, source.height, frames_scale)
        notes.append(
            f"{source.width}x{source.height} video decoded at {w}x{h} for landmarks and {fw}x{fh} for the frames "
            "(downscaled as decoded: one frame in memory at a time)"
        )
    frames_key = _key(
        "frames",
        lmk_key,
        crop.as_array().round(3).tolist(),
        cfg.size,
        cfg.jpeg_quality,
        cfg.masks,
        *([round(frames_scale, 6)] if frames_scale < 1 else []),
    )
    if _frames_done(layout, frames_key, num_frames, cfg.masks):
        notes.append("frames: reused")
    else:
        _write_frames(source, cfg, crop, frames_scale, num_frames, layout, clock, progress)
        write_json(layout.frames_manifest, {"key": frames_key, "count": num_frames, "masks": cfg.masks})

    # 3. fit -------------------------------------------------------------------------------
    focal_src = focal_from_fov(cfg.fov_deg or DEFAULT_FOV_DEG, max(source.width, source.height))
    fit_key = _key(
        "fit",
        frames_key,
        model.model_id,
        dataclasses.asdict(cfg.fit),
        cfg.fov_deg,
        *([np.nonzero(leaving)[0].tolist()] if leaving.any() else []),  # frames the edge rule took out
    )
    tracks = _load_tracks(layout.tracks, fit_key)
    if tracks is None:
        t0 = time.perf_counter()
        tracks = _fit(model, det, crop, focal_src * crop.scale, cfg, progress)
        tracks = tracks.replace(
            key=fit_key,
            crop=crop.as_array(),
            source_size=np.array([source.width, source.height]),
            source_rotation=source.rotation,
        )
        tracks.save(layout.tracks)
        clock.add("fit", time.perf_counter() - t0)
        tracks = Tracks.load(layout.tracks)
    else:
        notes.append("fit: reused")

    # 4. export ----------------------------------------------------------------------------
    t0 = time.perf_counter()
    write_frame_params(layout.frame_params_dir, layout.canonical_params, tracks)
    write_transforms(layout.transforms, tracks, masks=cfg.masks)
    clock.add("export", time.perf_counter() - t0)

    # 5. overlay ---------------------------------------------------------------------------
    if cfg.overlay:
        overlay_key = _key("overlay", fit_key)
        if _overlay_done(layout.overlay, overlay_key, num_frames):
            notes.append("overlay: reused")
        else:
            t0 = time.perf_counter()
            write_overlay_video(layout.overlay, run_dir, model, tracks, overlay_key, progress)
            clock.add("overlay", time.perf_counter() - t0)

    residual = tracks.residual_px
    summary = {
        "video": str(Path(video)),
        "source": {"kind": source.kind, "width": source.width, "height": source.height, "rotation": source.rotation},
        "frames": num_frames,
        "faces_found": int(det["found"].sum()),
        "interpolated_frames": int((~det["found"].astype(bool)).sum()),
        "head_model": tracks.head_model,
        "crop": {"x0": crop.x0, "y0": crop.y0, "side": crop.side, "size": crop.size},
        "focal_px": float(tracks.K[0, 0]),
        "fov_deg": fov_from_focal(float(tracks.K[0, 0]), cfg.size),
        "landmark_residual_px": float(np.nanmean(residual)) if np.isfinite(residual).any() else None,
        "seconds": {k: round(v, 3) for k, v in clock.seconds.items()},
        "seconds_total": round(time.perf_counter() - start, 3),
        "peak_rss_mb": peak_rss_mb(),
        "notes": notes,
        "config": dataclasses.asdict(cfg),
    }
    write_json(layout.tracking_config, summary)
    if progress:
        _print_summary(summary)
    return summary


# -- sub-stages ------------------------------------------------------------------------------------


def _invalidate(layout: RunLayout) -> None:
    """Remove the results of an earlier run of this folder (the frames would be redone anyway)."""
    for folder in (layout.frames_dir, layout.masks_dir, layout.frame_params_dir):
        shutil.rmtree(folder, ignore_errors=True)
    for path in (
        layout.tracking_config,
        layout.frames_manifest,
        layout.tracks,
        layout.transforms,
        layout.overlay,
        layout.canonical_params,
        layout.landmarks,
    ):
        path.unlink(missing_ok=True)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (what ``/usr/bin/time -v`` calls maximum RSS)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)  # bytes on macOS, KiB on Linux


def _load_landmarks(path: Path, key: str) -> dict | None:
    """The detections at ``path`` if the file exists, reads, and carries ``key``; else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            det = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):  # truncated/corrupt: recompute
        return None
    return det if str(det.pop("key", "")) == key else None


def _load_tracks(path: Path, key: str) -> Tracks | None:
    """The tracks at ``path`` if the file exists, is valid, and carries ``key``; else None (then they are refitted)."""
    if not path.is_file():
        return None
    try:
        tracks = Tracks.load(path)
    except SplattalkError:  # truncated/corrupt/older: recompute
        return None
    return tracks if tracks.key == key else None


def _pre_scale(source: Source, scale: float) -> tuple[float, float]:
    """The exact (x, y) factors of a frame decoded at ``scale`` (its size is rounded to whole pixels)."""
    w, h = scaled_size(source.width, source.height, scale) if scale < 1 else (source.width, source.height)
    return w / source.width, h / source.height


def _frames_scale(decode_scale: float, crop: Crop) -> float:
    """Decode scale for the frames pass: the landmarks' one, unless the crop would then hold fewer than
    twice the output's pixels along its side (a small face in a 4K frame keeps its detail)."""
    return min(1.0, max(decode_scale, 2.0 * crop.size / crop.side))


def _detect(source: Source, cfg: TrackConfig, scale: float, clock: _Clock, progress: bool) -> dict:
    warnings: list[str] = []
    frames = clock.timed(iter_frames(source, cfg.fps, cfg.max_seconds, scale, warnings), "decode")
    expected = len(source.images) if source.images else (int(source.duration * cfg.fps) if source.duration else None)
    t0 = time.perf_counter()
    det = detect(frames, expected, max_faces=cfg.max_faces, static=source.kind != "video", progress=progress)
    clock.add("landmarks", time.perf_counter() - t0 - clock.seconds.get("decode", 0.0))
    points = det.points.astype(np.float64)
    sx, sy = _pre_scale(source, scale)
    points[..., 0] /= sx  # back to source pixels (continuous coordinates scale exactly)
    points[..., 1] /= sy
    points[..., 2] /= sx
    return {"points": points.astype(np.float32), "found": det.found, "num_faces": det.num_faces, "warnings": warnings}


def frame_ranges(indices) -> str:
    """'3-7, 12' for [3, 4, 5, 6, 7, 12]."""
    parts, start = [], None
    for i, value in enumerate(indices):
        if start is None:
            start = value
        if i + 1 == len(indices) or indices[i + 1] != value + 1:
            parts.append(f"{start}-{value}" if value > start else f"{start}")
            start = None
    return ", ".join(parts)


def _drop_faces_leaving(det: dict, source: Source) -> tuple[dict, list[str]]:
    """``det`` with faces that are mostly outside the frame marked as not found (``det['leaving']`` says
    where), and a note. mediapipe places all 478 landmarks even on a face half out of the picture; the
    part outside is a guess the fit must not take for a measurement."""
    found = det["found"].astype(bool)
    xy = det["points"][..., :2]
    with np.errstate(invalid="ignore"):  # NaN where no face was found
        outside = (xy[..., 0] < 0) | (xy[..., 0] > source.width) | (xy[..., 1] < 0) | (xy[..., 1] > source.height)
    leaving = found & (outside.mean(1) > MAX_OUTSIDE)
    notes = []
    if leaving.any():
        notes.append(
            f"in frames {frame_ranges(np.nonzero(leaving)[0])} the face is partly out of the frame (over "
            f"{MAX_OUTSIDE:.0%} of its landmarks outside): counted as frames without a face"
        )
    return {**det, "found": found & ~leaving, "leaving": leaving}, notes


def _check_detections(det: dict, source: Source, cfg: TrackConfig) -> list[str]:
    """Raise for unusable input; return notes about what was found."""
    found = det["found"].astype(bool)
    num_frames = len(found)
    what = f"{source.path}"
    if num_frames == 0:
        raise SplattalkError(f"{what} gave no frames (empty video, or --max-seconds too small).")
    if not found.any():
        raise SplattalkError(
            f"no face found in any of the {num_frames} frames of {what}. The face must be visible, roughly "
            f"frontal and at least ~{max(cfg.min_face_px, 60)} px wide "
            "(film closer, or crop the video around the face)."
        )
    widths = np.ptp(det["points"][found, :, 0], axis=1)
    width = float(np.median(widths))
    if width < cfg.min_face_px:
        raise SplattalkError(
            f"the face in {what} is only {width:.0f} px wide; tracking needs at least {cfg.min_face_px} px "
            f"(--min-face-px). Film closer or at a higher resolution."
        )
    if found.mean() < cfg.min_face_fraction:
        raise SplattalkError(
            f"a face was found in only {found.sum()} of {num_frames} frames ({found.mean():.0%}) of {what}; at least "
            f"{cfg.min_face_fraction:.0%} are needed (--min-face-fraction). "
            "Trim the video to where the face is visible."
        )
    notes = [f"face width: median {width:.0f} px in the source"]
    counts = det["num_faces"]
    if (counts > 1).any():
        first = int(np.argmax(counts > 1))
        notes.append(
            f"{int(counts.max())} faces seen (first in frame {first}); tracking the largest one and "
            f"following it from frame to frame"
        )
    if not found.all():
        notes.append(
            f"no face in {int((~found).sum())} frames ({frame_ranges(np.nonzero(~found)[0])}): parameters there "
            "are interpolated (tracks.npz 'valid' is False) and `splattalk fit` leaves those frames out"
        )
        other = np.nonzero(~found & (counts > 0))[0]
        if len(other):
            notes.append(
                f"in frames {frame_ranges(other)} a face was seen but not taken: not the tracked face's size or "
                "place (another person while the tracked one was away), or too unclear to place landmarks on"
            )
    return notes


def _frames_done(layout: RunLayout, key: str, num_frames: int, masks: bool) -> bool:
    try:
        info = json.loads(layout.frames_manifest.read_text())
    except (OSError, ValueError):
        return False
    if info.get("key") != key or info.get("count") != num_frames:
        return False
    files = [layout.frame] + ([layout.mask] if masks else [])
    return all(path(t).is_file() and path(t).stat().st_size > 0 for path in files for t in range(num_frames))


def _write_frames(
    source: Source,
    cfg: TrackConfig,
    crop: Crop,
    scale: float,
    num_frames: int,
    layout: RunLayout,
    clock: _Clock,
    progress: bool,
) -> None:
    layout.frames_manifest.unlink(missing_ok=True)  # the stage is incomplete until rewritten
    matter = None
    if cfg.masks:
        matter = Matter()
    frames = clock.timed(iter_frames(source, cfg.fps, cfg.max_seconds, scale, warnings=[]), "decode")  # said once
    pre_scale = _pre_scale(source, scale)
    try:
        for t, image in tqdm(frames, total=num_frames, desc="frames", unit="frame", disable=not progress):
            if t >= num_frames:
                break
            t0 = time.perf_counter()
            out = crop.apply(image, pre_scale=pre_scale)
            ok, jpg = cv2.imencode(".jpg", out[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
            write_bytes(layout.frame(t), jpg.tobytes())
            clock.add("frames", time.perf_counter() - t0)
            if matter is not None:
                t0 = time.perf_counter()
                ok, png = cv2.imencode(".png", matter(out))
                write_bytes(layout.mask(t), png.tobytes())
                clock.add("masks", time.perf_counter() - t0)
    finally:
        if matter is not None:
            matter.close()
    # files of an earlier, longer run would otherwise look like frames of this one
    for folder, ext in ((layout.frames_dir, ".jpg"), (layout.masks_dir, ".png")):
        for stale in folder.glob(f"*{ext}"):
            if stale.stem.isdigit() and int(stale.stem) >= num_frames:
                stale.unlink()


def _fit(model, det: dict, crop: Crop, focal: float, cfg: TrackConfig, progress: bool) -> Tracks:
    found = det["found"].astype(bool)
    points = crop.to_output(np.nan_to_num(det["points"][..., :2].astype(np.float64)))
    result = fit_tracks(
        model, points, found, cfg.size, cfg.size, cfg.fit, focal, fix_focal=cfg.fov_deg is not None, progress=progress
    )

    K = intrinsics(result.focal, cfg.size, cfg.size)
    return Tracks(
        **{k: getattr(result, k) for k in PER_FRAME},
        shape=result.shape,
        static_offset=static_offset_field(model, result.landmark_offsets),
        K=K.astype(np.float32),
        viewmat=result.viewmat().astype(np.float32),
        width=cfg.size,
        height=cfg.size,
        fps=cfg.fps,
        head_model=model.model_id,
        valid=found,
        interpolated=~found,
        residual_px=result.residual_px.astype(np.float32),
        landmarks2d=np.where(found[:, None, None], points, np.nan).astype(np.float32),
    )


def _overlay_done(path: Path, key: str, num_frames: int) -> bool:
    if not path.is_file():
        return False
    try:
        with av.open(str(path)) as container:
            return container.metadata.get("comment") == key and container.streams.video[0].frames == num_frames
    except Exception:  # noqa: BLE001 - unreadable: redo
        return False


def _print_summary(summary: dict) -> None:
    frames = max(summary["frames"], 1)
    split = ", ".join(f"{k} {v / frames * 1000:.0f}" for k, v in summary["seconds"].items())
    print(
        f"tracked {summary['frames']} frames ({summary['faces_found']} with a face) with {summary['head_model']}; "
        f"landmark residual {summary['landmark_residual_px'] or float('nan'):.2f} px; FOV {summary['fov_deg']:.1f}°"
    )
    for note in summary["notes"]:
        print(f"  {note}")
    print(
        f"  ms/frame: {split}; total {summary['seconds_total']:.1f} s "
        f"({summary['seconds_total'] / frames:.3f} s/frame); peak memory {summary['peak_rss_mb']:.0f} MiB"
    )
