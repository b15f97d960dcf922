"""Benchmark the tracker on the embedded sample video (synthetic ground truth) or on any video.

    python scripts/bench_track.py [--video PATH] [--gt sample_gt.npz] [--seconds S] [--run DIR]

Prints the per-stage time split (ms per frame), the accuracy against ground
truth when there is one, with mediapipe's own landmark error as the baseline,
and last a line of the form
``s/frame: X; landmark px: X; jaw deg: X; jitter ratio: X``:

* s/frame: wall time, all-in (decode, landmarks, crop + frame writing, masks,
  fit, export); the QA overlay video is not included (``--overlay`` times it);
* landmark px: the landmark reprojection error, i.e. the mean distance in output
  pixels between the fitted model's projected landmarks and mediapipe's
  detections (the distance to the true landmark positions, and mediapipe's own
  distance to them, are printed above it);
* jaw deg: the largest per-frame jaw-rotation error against the truth;
* jitter ratio: mean |vertex acceleration| of the fit over that of the truth.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from splattalk.assets import data_path
from splattalk.run import RunLayout, Tracks
from splattalk.tracking.config import TrackConfig
from splattalk.tracking.metrics import evaluate
from splattalk.tracking.run import select_head, track


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=data_path("sample", "sample.mp4"))
    parser.add_argument(
        "--gt", type=Path, default=None, help="ground truth (default: sample_gt.npz for the sample video)"
    )
    parser.add_argument("--seconds", type=float, default=None, help="only the first S seconds")
    parser.add_argument("--run", type=Path, default=None, help="run folder (default: a fresh temporary one)")
    parser.add_argument("--overlay", action="store_true", help="also write (and time) the overlay video")
    args = parser.parse_args()
    gt_path = args.gt or (
        data_path("sample", "sample_gt.npz") if args.video == data_path("sample", "sample.mp4") else None
    )

    load = os.getloadavg()
    cfg = TrackConfig(head="default", max_seconds=args.seconds, overlay=args.overlay)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run or Path(tmp) / "run"
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        summary = track(args.video, run_dir, cfg, progress=True)
        wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
        tracks = Tracks.load(RunLayout(run_dir).tracks)
    frames = summary["frames"]
    seconds = summary["seconds"]
    all_in = sum(v for k, v in seconds.items() if k != "overlay")
    print(
        f"\nmachine load (1/5/15 min) before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; after: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs"
    )
    print(
        f"CPU time of this process (all its threads): {cpu:.1f} s = {cpu / frames:.3f} s/frame; the machine is shared, "
        f"so wall time grows with the load above"
    )
    print(
        f"frames: {frames}; wall {wall:.1f} s; per-stage ms/frame: "
        + ", ".join(f"{k} {v / frames * 1000:.0f}" for k, v in seconds.items())
    )
    line = {"s/frame": f"{all_in / frames:.3f}", "landmark px": "n/a", "jaw deg": "n/a", "jitter ratio": "n/a"}
    if gt_path is not None:
        with np.load(gt_path, allow_pickle=False) as data:
            truth = {k: data[k] for k in data.files}
        model, _ = select_head("default")
        m = evaluate(tracks, truth, model)
        print(
            f"landmarks (output px, vs truth): fit {m['landmark_px']:.2f}; "
            f"mediapipe itself {m['landmark_px_mediapipe']:.2f} "
            f"(baseline; ratio fit/mediapipe {m['landmark_px'] / m['landmark_px_mediapipe']:.2f}); "
            f"fit vs detections (reprojection residual) {m['residual_px']:.2f}"
        )
        print(
            f"vertex error after similarity alignment: mean {m['vertex_error_pct']:.2f}% of head width, "
            f"worst frame {m['vertex_error_pct_max']:.2f}%"
        )
        print(
            f"jaw rotation error (deg): mean {m['jaw_deg_mean']:.2f}, p95 {m['jaw_deg_p95']:.2f}, "
            f"max {m['jaw_deg_max']:.2f}"
        )
        print(
            f"jitter (mean |vertex acceleration|) fit / truth: {m['jitter_ratio']:.3f}; "
            f"field of view fit {m['fov_deg_fit']:.1f}° vs truth {m['fov_deg_true']:.1f}°"
        )
        line.update(
            {
                "landmark px": f"{m['residual_px']:.2f}",
                "jaw deg": f"{m['jaw_deg_max']:.2f}",
                "jitter ratio": f"{m['jitter_ratio']:.2f}",
            }
        )
    print("; ".join(f"{k}: {v}" for k, v in line.items()))


if __name__ == "__main__":
    main()
