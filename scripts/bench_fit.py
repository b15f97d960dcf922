"""Benchmark the avatar fit on the embedded sample: time to 30 dB held-out PSNR, final figures, animate() speed.

    python scripts/bench_fit.py [--run runs/bench_sample] [--resolution 256] [--iterations N] [--backend auto]

Tracks the sample video with our tracker first if ``RUN/tracking/tracks.npz`` is
missing (rendering the sample video too if the repository lacks it), then fits
from scratch (``--restart``) with the CLI's defaults unless told otherwise.
"Time" is wall-clock seconds since the fit started (loading frames and
initialisation included), at the first held-out evaluation that reached 30 dB.
The held-out frames are the last 10 % of the video; PSNR/SSIM are over the whole
frame (render over the background vs the frame composited through its mask).
The last line has the fixed form
``time to 30 dB: X s; held-out PSNR: X dB; SSIM: X; gaussians: N; animate ms: X``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"
    except OSError:
        return "unknown"


def ensure_tracked(run: Path) -> None:
    if (run / "tracking" / "tracks.npz").is_file():
        return
    from splattalk.assets import data_path

    video = data_path("sample", "sample.mp4")
    if not video.is_file():
        print("rendering the sample video (scripts/make_sample_video.py) …", flush=True)
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_sample_video.py")], check=True)
    from splattalk.tracking.config import TrackConfig
    from splattalk.tracking.run import track

    print(f"tracking {video} → {run} …", flush=True)
    track(video, run, TrackConfig())


def animate_ms(avatar_path: Path, run: Path, repeats: int = 50) -> float:
    """Median milliseconds of ``animate()`` for one frame under no_grad (head model LBS + binding)."""
    import torch

    from splattalk.avatar.io import load_avatar
    from splattalk.avatar.model import animate
    from splattalk.head.params import HeadParams
    from splattalk.run import RunLayout, Tracks

    avatar = load_avatar(avatar_path)
    params = HeadParams(**Tracks.load(RunLayout(run).tracks).per_frame())
    times = []
    with torch.no_grad():
        animate(avatar, params.slice(0))  # builds the fast poser, compiles on a fresh checkout
        for i in range(repeats):
            start = time.perf_counter()
            animate(avatar, params.slice(i % len(params)))
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "bench_sample")
    parser.add_argument("--resolution", type=int, default=None)
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--backend", default=None)
    parser.add_argument("--coarse-fraction", type=float, default=None)
    parser.add_argument("--head-only", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--retrack-steps", type=int, default=None)
    parser.add_argument(
        "--demo", action="store_true", help="the demo's settings (splattalk.demo.DEMO_FIT) instead of FitConfig()'s"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args()

    import torch

    from splattalk.avatar.fit import fit
    from splattalk.avatar.fit_config import FitConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    ensure_tracked(args.run)
    given = (
        ("resolution", args.resolution),
        ("iterations", args.iterations),
        ("backend", args.backend),
        ("coarse_fraction", args.coarse_fraction),
        ("head_only", args.head_only),
        ("retrack_steps", args.retrack_steps),
    )
    overrides = {k: v for k, v in given if v is not None}
    if args.demo:
        from splattalk.demo import DEMO_FIT

        base = DEMO_FIT
    else:
        base = FitConfig()
    cfg = dataclasses.replace(base, **overrides)
    print(f"load before: {load_average()}", flush=True)
    start = time.perf_counter()
    summary = fit(args.run, cfg, restart=True, progress=not args.quiet)
    wall = time.perf_counter() - start
    metrics = summary["metrics"]
    for h in metrics["history"]:
        print(
            f"  it {h['iteration']:5d}  {h['seconds']:7.1f} s  held-out PSNR {h['psnr']:.2f} dB  SSIM {h['ssim']:.4f}"
            f"  N {h['gaussians']}"
        )
    ms = animate_ms(args.run / "avatar" / "avatar.safetensors", args.run)
    heldout = metrics["heldout"]
    print(
        f"resolution {cfg.resolution}², {cfg.iterations} iterations, backend {cfg.backend}, "
        f"torch threads {torch.get_num_threads()}; fit wall {wall:.1f} s; train-sample PSNR "
        f"{metrics['train_sample']['psnr']:.2f} dB; load after: {load_average()}"
    )
    t30 = metrics["seconds_to_30db"]
    print(
        f"time to 30 dB: {'never' if t30 is None else f'{t30:.0f}'} s; held-out PSNR: {heldout['psnr']:.1f} dB; "
        f"SSIM: {heldout['ssim']:.3f}; gaussians: {summary['gaussians']}; animate ms: {ms:.1f}"
    )


if __name__ == "__main__":
    main()
