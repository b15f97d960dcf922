"""Benchmark the avatar on real talking-head clips: track, fit with the defaults, score held-out frames at 512².

    python scripts/bench_real_avatar.py [--clips a b ...] [--runs-dir DIR] [--iterations N] [--resolution R]
                                        [--coarse-fraction F] [--head-only]
                                        [--score-resolution 512] [--refit]

Clips (from ``../shared/real``, see its SOURCES.md) are the ones with more than
256² of face: ``obama_address_uncropped`` (450², 20 s: the longest and the one
closest to a phone selfie video), ``obama_sentence_answers`` and
``obama_sentence_yemen`` (1280×720 cuts, 4–5 s: different lighting/framing and
little training data). The 256² clips (``obama_address_*``, ``reagan_address``)
are left out by default: scored at 512² their truth is an upscaled image.

Each clip is tracked into ``RUNS/<clip>`` (reused when done), fitted from
scratch with ``FitConfig()``'s settings (``--iterations``/``--resolution``
override them: quick tries), and its held-out frames (the last 10 %, never
trained) are rendered at ``--score-resolution`` and compared with the frames
composited through their masks (``avatar.heldout``): PSNR and SSIM over the
head (the truth cut to the tracked head mesh down to the collar, as
``FitConfig.head_only`` cuts the training targets; the same cut truth for every
avatar, however it was fitted; the body no avatar here models goes to the
background) and over the face region (both eyes and the mouth, convex hulls of
the tracked mesh's embedded landmarks, grown a little). The whole-frame PSNR
against the uncut matte (shoulders and clothes included) is printed too. "fit s" is the fit's
own wall clock (loading and initialisation included), mean over the clips; on a
shared machine it is inflated by the other jobs (the load average is printed).
Last line, fixed form:
``real held-out PSNR: X dB; SSIM: X; face PSNR: X dB; fit s: X; clips: N``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
REAL = next(
    (p for p in (ROOT.parent / "shared" / "real", ROOT.parents[1] / "shared" / "real") if p.is_dir()),
    ROOT.parent / "shared" / "real",
)
"""``../shared/real`` next to the checkout (or one level further up, for a worktree in a subfolder)."""
DEFAULT_CLIPS = ("obama_address_uncropped", "obama_sentence_answers", "obama_sentence_yemen")


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"
    except OSError:
        return "unknown"


def find_clip(name: str, real: Path) -> Path:
    for ext in ("mp4", "mpg", "mov"):
        path = real / f"{name}.{ext}"
        if path.is_file():
            return path
    raise SystemExit(f"clip {name!r} not found in {real} (see its SOURCES.md)")


def finished_fit(folder: Path) -> dict:
    """The summary of the fit already in ``folder`` (RUN/avatar: config.json + metrics.json)."""
    try:
        summary = json.loads((folder / "config.json").read_text())
        summary["metrics"] = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError) as err:
        raise SystemExit(f"--score-only: no finished fit in {folder} ({err})") from None
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="+", default=list(DEFAULT_CLIPS), help="clip names in --real (no extension)")
    parser.add_argument("--max-clips", type=int, default=None, help="only the first this many clips (quick tries)")
    parser.add_argument("--real", type=Path, default=REAL, help="folder of the real clips")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "real", help="run folders go to RUNS/<clip>")
    parser.add_argument("--iterations", type=int, default=None, help="fit iterations (default: FitConfig's)")
    parser.add_argument("--resolution", type=int, default=None, help="fit resolution (default: FitConfig's)")
    parser.add_argument("--score-resolution", type=int, default=512, help="side of the scored renders")
    parser.add_argument(
        "--coarse-fraction",
        type=float,
        default=None,
        help="coarse-to-fine share of the iterations (default: FitConfig's)",
    )
    parser.add_argument(
        "--head-only",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="cut the training targets to the tracked head (default: FitConfig's)",
    )
    parser.add_argument(
        "--refit", action="store_true", help="refit even if a finished fit with the same settings exists"
    )
    parser.add_argument("--tag", default="", help="suffix of the results file RUNS/bench_real_avatar<tag>.json")
    parser.add_argument(
        "--score-only",
        action="store_true",
        help="score the avatars already in RUNS/<clip>/avatar (no tracking or fitting)",
    )
    parser.add_argument(
        "--avatar-dir",
        default="avatar",
        help="with --score-only: the folder in RUNS/<clip> holding the avatar (a kept copy of an earlier fit)",
    )
    parser.add_argument(
        "--sheet",
        type=Path,
        default=None,
        help="also write a contact sheet (truth | render | error ×4, face region outlined; held-out frames)",
    )
    parser.add_argument(
        "--sheet-frames", type=int, default=1, help="held-out frames per clip on the sheet (spread evenly)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()

    if not args.real.is_dir():
        print(f"skipped: no real clips at {args.real} (see shared/real/SOURCES.md)")
        return
    clips = args.clips[: args.max_clips] if args.max_clips else args.clips
    from splattalk.avatar.fit import fit
    from splattalk.avatar.fit_config import FitConfig
    from splattalk.avatar.heldout import contact_rows, score_heldout
    from splattalk.avatar.retrack import apply_rows
    from splattalk.head.params import HeadParams
    from splattalk.run import RunLayout, Tracks
    from splattalk.tracking.config import TrackConfig
    from splattalk.tracking.run import track

    given = (
        ("resolution", args.resolution),
        ("iterations", args.iterations),
        ("coarse_fraction", args.coarse_fraction),
        ("head_only", args.head_only),
    )
    overrides = {k: v for k, v in given if v is not None}
    cfg = dataclasses.replace(FitConfig(), **overrides)
    print(
        f"fit: resolution {cfg.resolution}², {cfg.iterations} iterations; scored at {args.score_resolution}²; "
        f"load before: {load_average()}",
        flush=True,
    )
    results, sheet = [], []
    for name in clips:
        run = args.runs_dir / name
        start = time.perf_counter()
        if args.score_only:
            summary = finished_fit(run / args.avatar_dir)
        else:
            if not (run / "tracking" / "tracks.npz").is_file():
                print(f"tracking {name} → {run} …", flush=True)
                track(find_clip(name, args.real), run, TrackConfig(overlay=False))
            summary = fit(run, cfg, restart=args.refit, progress=not args.quiet)
        wall = time.perf_counter() - start
        test = summary["metrics"]["heldout"]["frames"]
        picks = (
            [test[round(j)] for j in np.linspace(0, len(test) - 1, args.sheet_frames)]
            if args.sheet_frames > 1
            else [test[len(test) // 2]]
        )
        avatar_file = run / args.avatar_dir / "avatar.safetensors"
        score, kept = score_heldout(run, avatar_file, args.score_resolution, keep=picks)
        tracked_score = score
        retracked = summary["metrics"].get("heldout_retracked")
        rows_file = run / args.avatar_dir / "retracked.npz"
        if retracked and rows_file.is_file():  # the held-out frames posed by the photometrically refined tracks
            with np.load(rows_file) as rows:
                refined = apply_rows(HeadParams(**Tracks.load(RunLayout(run).tracks).per_frame()), dict(rows))
            score, kept = score_heldout(run, avatar_file, args.score_resolution, keep=picks, render_params=refined)
        for r in score.per_frame:
            if r["frame"] in kept:
                label = (
                    f"{name}, {summary['config']['resolution']}px fit: {r['psnr']:.1f} dB, "
                    f"face {r['face_psnr']:.1f} dB,"
                )
                sheet.append(contact_rows({r["frame"]: kept[r["frame"]]}, label))
        fit_s = summary["fit_seconds"] + (retracked["seconds"] if retracked else 0.0)
        row = {
            "clip": name,
            "psnr": score.psnr,
            "ssim": score.ssim,
            "frame_psnr": score.frame_psnr,
            "frame_ssim": score.frame_ssim,
            "face_psnr": score.face_psnr,
            "face_ssim": score.face_ssim,
            "face_fraction": score.face_fraction,
            "retracked": bool(retracked),
            "tracked_psnr": tracked_score.psnr,
            "tracked_ssim": tracked_score.ssim,
            "tracked_face_psnr": tracked_score.face_psnr,
            "retrack_s": retracked["seconds"] if retracked else None,
            "fit_s": fit_s,
            "gaussians": summary["gaussians"],
            "frames": summary["frames"],
            "fit_res_heldout_psnr": summary["metrics"]["heldout"]["psnr"],
            "train_psnr": summary["metrics"]["train_sample"]["psnr"],
            "wall_this_run": round(wall, 1),
        }
        results.append(row)
        print(
            f"  {name}: {row['frames']['train']}+{row['frames']['heldout']} frames; held-out {score.psnr:.2f} dB / "
            f"SSIM {score.ssim:.4f} (whole frame with the body: {score.frame_psnr:.2f} dB / {score.frame_ssim:.4f}); "
            f"face {score.face_psnr:.2f} dB / SSIM {score.face_ssim:.4f} "
            f"(mask {100 * score.face_fraction:.1f} % of the frame); at fit res {row['fit_res_heldout_psnr']:.2f} dB, "
            f"train sample {row['train_psnr']:.2f} dB; {row['gaussians']} Gaussians; fit {fit_s:.0f} s"
            + (
                f" (held-out tracks refined in {retracked['seconds']:.0f} s; with the tracker's own tracks "
                f"{tracked_score.psnr:.2f} dB / {tracked_score.ssim:.4f}, face {tracked_score.face_psnr:.2f} dB)"
                if retracked
                else ""
            ),
            flush=True,
        )
    if args.sheet is not None:
        import cv2

        from splattalk.atomic import write_bytes

        _, png = cv2.imencode(".png", np.concatenate(sheet, axis=0)[:, :, ::-1])
        write_bytes(args.sheet, png.tobytes())
        print(f"contact sheet: {args.sheet}")
    out = args.runs_dir / f"bench_real_avatar{args.tag}.json"
    from splattalk.atomic import write_json

    write_json(
        out,
        {
            "config": dataclasses.asdict(cfg),
            "score_resolution": args.score_resolution,
            "clips": results,
            "load_after": load_average(),
        },
    )
    keys = ("psnr", "ssim", "frame_psnr", "face_psnr", "fit_s", "tracked_psnr", "tracked_ssim", "tracked_face_psnr")
    mean = {k: sum(r[k] for r in results) / len(results) for k in keys}
    print(f"whole-frame PSNR (body included, which no avatar here models): {mean['frame_psnr']:.1f} dB")
    retracked_clips = sum(r["retracked"] for r in results)
    print(
        f"with the tracker's own tracks on the held-out frames: PSNR {mean['tracked_psnr']:.1f} dB; "
        f"SSIM: {mean['tracked_ssim']:.3f}; face PSNR: {mean['tracked_face_psnr']:.1f} dB "
        f"(the line below poses {retracked_clips} of {len(results)} clips' held-out frames with photometrically "
        "refined tracks, the avatar frozen: FitConfig.retrack_steps)"
    )
    print(
        f"per-clip results in {out}; load after: {load_average()} (fit times inflated by other jobs on a busy machine)"
    )
    print(
        f"real held-out PSNR: {mean['psnr']:.1f} dB; SSIM: {mean['ssim']:.3f}; face PSNR: {mean['face_psnr']:.1f} dB; "
        f"fit s: {mean['fit_s']:.0f}; clips: {len(results)}"
    )


if __name__ == "__main__":
    sys.exit(main())
