"""``splattalk track`` and ``splattalk fit``: the command-line front of the tracking and avatar-fitting stages."""

from __future__ import annotations

from splattalk.commands import FitCommand, TrackCommand


def track(cmd: TrackCommand) -> int:
    from splattalk.tracking.run import track as track_video  # lazy: mediapipe, cv2

    track_video(cmd.video, cmd.run, cmd.config())
    return 0


def fit(cmd: FitCommand) -> int:
    from splattalk.avatar.fit import fit as fit_avatar  # lazy: torch

    cfg = cmd.config()
    summary = fit_avatar(cmd.run, cfg, restart=cmd.restart, progress=not cmd.quiet)
    m = summary["metrics"]["heldout"]
    print(
        f"avatar: {summary['gaussians']} Gaussians; held-out PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f} "
        f"({len(m['frames'])} frames, {cfg.resolution}²); wrote {summary['out']}"
    )
    return 0
