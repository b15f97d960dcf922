"""``splattalk track`` and ``splattalk fit``: the command-line front of the tracking and avatar-fitting stages."""

from __future__ import annotations

from splattalk.avatar.fit import fit as fit_avatar
from splattalk.commands import FitCommand, TrackCommand
from splattalk.tracking.run import track as track_video


def track(cmd: TrackCommand) -> int:
    track_video(cmd.video, cmd.run, cmd.config())
    return 0


def fit(cmd: FitCommand) -> int:
    cfg = cmd.config()
    summary = fit_avatar(cmd.run, cfg, restart=cmd.restart, progress=not cmd.quiet)
    m = summary["metrics"]["heldout"]
    print(
        f"avatar: {summary['gaussians']} Gaussians; held-out PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f} "
        f"({len(m['frames'])} frames, {cfg.resolution}²); wrote {summary['out']}"
    )
    return 0
