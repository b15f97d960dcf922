"""Fit a rest-closure offset of the talk model's jaw on tracked real mouths (an experiment of issue 18).

    OMP_WAIT_POLICY=PASSIVE python scripts/fit_jaw_offset.py --clips obama_address_1.mp4 … --runs-dir runs/real \
        --out runs/jaw_offset_obama.json
    python scripts/eval_real_lipsync.py --runs-dir runs/real --jaw-offset X --trained-on runs/jaw_offset_obama.json

On real speech the built-in model's lips are almost never together (docs/talk.md, "Real speech"): its mouth rests
a little open. This fits one number, an offset added to the jaw opening (radians about x), on the training clips:
the offset whose inner-lip gap distribution (``head.mouth.mouth_gap`` over the eye-corner span, relative to each
identity's neutral gap; 1st–99th percentiles) is nearest the tracked real gaps' (mean absolute difference of the
quantiles). It uses no timing, so it cannot learn the clips' words, only how far the lips part at rest and in
speech. The JSON written holds the offset and the clips it learned from, a list ``--trained-on`` reads, so the
benchmark scores only clips of other speakers and addresses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

QUANTILES = np.linspace(0.01, 0.99, 99)


@dataclass(frozen=True)
class FitJawOffsetConfig:
    """Fit the jaw rest offset on some real clips' tracked mouths."""

    clips: tuple[str, ...]
    """Clip files (names from scripts/eval_real_lipsync.py's CLIPS) to learn from."""
    runs_dir: Path = Path("runs/real")
    """Where eval_real_lipsync.py cached each clip's tracking run (RUNS_DIR/<clip name>)."""
    real: Path | None = None
    """Folder of real clips (None: ../shared/real next to the repository)."""
    out: Path = Path("runs/jaw_offset.json")
    """JSON to write: {"jaw_offset": X, "clips": [...]} (the clips also work as --trained-on)."""
    offsets: tuple[float, float, float] = (-0.16, 0.02, 0.01)
    """Grid searched: start, stop (inclusive), step, in radians."""


def main(cfg: FitJawOffsetConfig) -> None:
    import json
    import sys

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from eval_real_lipsync import CLIPS, real_folder, track  # the benchmark's own clip list and tracking cache

    from splattalk.atomic import write_json
    from splattalk.head.default import load_default_head
    from splattalk.head.mouth import mouth_gap
    from splattalk.models import resolve_model
    from splattalk.talk.audio import load_audio
    from splattalk.talk.inference import generate

    torch.set_num_threads(1)
    unknown = [c for c in cfg.clips if c not in CLIPS]
    if unknown:
        raise SystemExit(f"error: unknown clips {unknown}; the benchmark knows {sorted(CLIPS)}")
    folder = real_folder(cfg.real)
    model, head = resolve_model(None), load_default_head()
    E = head.num_expr
    data = []
    for name in cfg.clips:
        tracks = track(folder / name, cfg.runs_dir / Path(name).stem)
        identity = {"shape": tracks["shape"], "static_offset": tracks["static_offset"]}
        neutral = float(mouth_gap(head, np.zeros((1, E)), np.zeros((1, 3)), **identity)[0])
        truth = mouth_gap(head, tracks["expr"], tracks["jaw"], **identity) - neutral
        truth = truth[tracks["valid"].astype(bool)]
        motion = generate(model, load_audio(folder / name, max_bytes=None))
        data.append((motion, identity, neutral, truth))
    real = np.quantile(np.concatenate([d[3] for d in data]), QUANTILES)
    start, stop, step = cfg.offsets
    grid = np.round(np.arange(start, stop + step / 2, step), 6)
    distance = []
    for offset in grid:
        gaps = []
        for motion, identity, neutral, _ in data:
            jaw = motion[:, E + 3 : E + 6].copy()
            jaw[:, 0] += offset
            gaps.append(mouth_gap(head, motion[:, :E], jaw, **identity) - neutral)
        distance.append(float(np.abs(np.quantile(np.concatenate(gaps), QUANTILES) - real).mean()))
        print(f"jaw offset {offset:+.3f}: gap quantile distance {distance[-1]:.4f}", flush=True)
    best = float(grid[int(np.argmin(distance))])
    write_json(cfg.out, {"jaw_offset": best, "clips": list(cfg.clips), "distance": min(distance)})
    print(
        f"wrote {cfg.out}: jaw offset {best:+.3f} rad (distance {min(distance):.4f}, at 0: "
        f"{distance[int(np.argmin(np.abs(grid)))]:.4f}); learned from {json.dumps(list(cfg.clips))}"
    )


if __name__ == "__main__":
    main(tyro.cli(FitJawOffsetConfig))
