"""Blinks in tracked runs: mediapipe's eye openness against the tracked mesh's, per clip.

    python scripts/eval_blinks.py RUN [RUN ...] [--refit] [--save DIR]

For each run folder (``tracking/tracks.npz``, which holds mediapipe's landmarks in output pixels) it computes
the eye openness (lid gap over eye width, :mod:`splattalk.tracking.eyes`) from mediapipe's landmarks and from
the tracked head's embedded landmarks, the correlation r of the two (mean of both eyes), the blinks mediapipe's
lids show and whether the tracked mesh shows each one (a dip below 0.6 of its open level overlapping it ±2
frames), and the tracked mesh's blinks that mediapipe does not show.

``--refit`` fits the run's landmarks again, twice in the same process: with the current ``LandmarkFitConfig()``
and with the eyelid settings before blinks were tuned (every expression component's prior and smoothness, the
skin around the eyes at ``weight_other``), both at the run's focal length; ``--save DIR`` writes the refitted
tracks as ``DIR/<run name>/tracking/tracks.npz`` (for rendering an avatar with them). The last line is
the summary over all clips, the old settings' figures after the new ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from splattalk.head.default import load_default_head
from splattalk.run import PER_FRAME, Tracks
from splattalk.tracking.config import LandmarkFitConfig
from splattalk.tracking.eyes import eye_openness, find_blinks, match_blinks, open_level, tracked_openness
from splattalk.tracking.fit import fit_tracks
from splattalk.tracking.offsets import static_offset_field

OLD = {"eyelid_prior": 1.0, "smooth_eyelids": 0.5, "eyelid_range": 0.0, "weight_eye_surround": 0.5}
"""The eyelid settings before blinks were tuned (``weight_eye_surround`` was ``weight_other``)."""


def score(model, tracks: Tracks) -> dict:
    detected_curve = eye_openness(tracks.landmarks2d)
    tracked_curve = tracked_openness(model, tracks)
    a, b = np.nanmean(detected_curve, 1), tracked_curve.mean(1)
    ok = np.isfinite(a) & np.isfinite(b)
    detected, tracked = find_blinks(detected_curve), find_blinks(tracked_curve)
    hits = match_blinks(detected, tracked)
    level = open_level(tracked_curve)
    return {
        "r": float(np.corrcoef(a[ok], b[ok])[0, 1]),
        "blinks": len(detected),
        "caught": sum(h is not None for h in hits),
        "extra": len(tracked) - len({id(h) for h in hits if h is not None}),
        "detected_depth": [round(x.depth, 2) for x in detected],
        "tracked_depth": [round(float(b[x.start : x.end + 1].min() / level), 2) for x in detected],
        "frames": [x.deepest for x in detected],
    }


def refit(model, tracks: Tracks, cfg: LandmarkFitConfig) -> Tracks:
    points = np.nan_to_num(tracks.landmarks2d.astype(np.float64))
    result = fit_tracks(
        model, points, tracks.valid, int(tracks.width), int(tracks.height), cfg, float(tracks.K[0, 0]), True, False
    )
    return tracks.replace(
        **{k: getattr(result, k) for k in PER_FRAME},
        shape=result.shape,
        static_offset=static_offset_field(model, result.landmark_offsets),
        viewmat=result.viewmat().astype(np.float32),
        residual_px=result.residual_px.astype(np.float32),
    )


def line(name: str, s: dict) -> str:
    return (
        f"{name:<28} r {s['r']:.3f}  blinks {s['blinks']:>2}  caught {s['caught']:>2}  extra {s['extra']}  "
        f"closed to (mediapipe | tracked, of open) {list(zip(s['detected_depth'], s['tracked_depth']))}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--refit", action="store_true", help="refit with the current and the old eyelid settings")
    parser.add_argument("--save", type=Path, help="with --refit: write the refitted tracks under this folder")
    args = parser.parse_args()
    model = load_default_head()
    totals: dict[str, list[dict]] = {}
    for run in args.runs:
        tracks = Tracks.load(run / "tracking" / "tracks.npz")
        if tracks.head_model != model.model_id:
            raise SystemExit(f"{run}: tracked with {tracks.head_model}; this script reads default-head runs")
        name = run.name
        if not args.refit:
            totals.setdefault("cached", []).append(s := score(model, tracks))
            print(line(name, s), flush=True)
            continue
        for label, cfg in (("new", LandmarkFitConfig()), ("old", dataclasses.replace(LandmarkFitConfig(), **OLD))):
            t0 = time.perf_counter()
            fitted = refit(model, tracks, cfg)
            s = score(model, fitted)
            totals.setdefault(label, []).append(s)
            print(line(f"{name} ({label})", s) + f"  fit {time.perf_counter() - t0:.0f} s", flush=True)
            if label == "new" and args.save:
                out = args.save / name / "tracking" / "tracks.npz"
                out.parent.mkdir(parents=True, exist_ok=True)
                fitted.save(out)

    def summary(rows: list[dict]) -> str:
        return (
            f"caught {sum(r['caught'] for r in rows)}/{sum(r['blinks'] for r in rows)}, "
            f"extra {sum(r['extra'] for r in rows)}, mean r {np.mean([r['r'] for r in rows]):.3f}"
        )

    parts = [f"{label}: {summary(rows)}" for label, rows in totals.items()]
    print(f"blinks over {len(args.runs)} clips: " + "; ".join(parts))


if __name__ == "__main__":
    main()
