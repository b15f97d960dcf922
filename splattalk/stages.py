"""``splattalk track`` and ``splattalk fit``: the command-line front of the tracking and avatar-fitting stages."""

from __future__ import annotations

import numpy as np

from splattalk.avatar.fit import fit as fit_avatar
from splattalk.commands import FitCommand, TrackCommand
from splattalk.errors import SplattalkError
from splattalk.run import RunLayout, Tracks
from splattalk.tracking.run import frame_ranges
from splattalk.tracking.run import track as track_video


def track(cmd: TrackCommand) -> int:
    track_video(cmd.video, cmd.run, cmd.config())
    return 0


def no_face_note(run) -> str | None:
    """What the fit leaves out: the frames where tracking found no face (None when every frame has one)."""
    try:
        tracks = Tracks.load(RunLayout(run).tracks)
    except SplattalkError:
        return None  # the fit itself says what is wrong with the run folder
    if tracks.valid is None or tracks.valid.all():
        return None
    missing = np.nonzero(~tracks.valid.astype(bool))[0]
    return (
        f"{len(missing)} of {len(tracks)} frames have no face (frames {frame_ranges(missing)}): "
        "their head parameters are interpolated, so the fit neither trains on nor scores them"
    )


def fit(cmd: FitCommand) -> int:
    cfg = cmd.config()
    note = no_face_note(cmd.run)
    if note:
        print(f"fit: {note}")
    summary = fit_avatar(cmd.run, cfg, restart=cmd.restart, progress=not cmd.quiet)
    m = summary["metrics"]["heldout"]
    frames = summary.get("frames", {})
    print(
        f"avatar: {summary['gaussians']} Gaussians; held-out PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f} "
        f"({len(m['frames'])} frames, {cfg.resolution}²); trained on {frames.get('train', '?')} frames"
        + (f", {len(frames['skipped_no_face'])} without a face left out" if frames.get("skipped_no_face") else "")
        + f"; wrote {summary['out']}"
    )
    return 0
