"""Contact sheet: a real clip's frames next to our avatar speaking the same audio at the same instants.

    OMP_WAIT_POLICY=PASSIVE python scripts/lipsync_sheet.py RUN [--out docs/lipsync_sheet.png]

RUN is a fitted run of a real talking-head clip (``splattalk track`` + ``splattalk fit``; the docs' sheet uses
``obama_address_uncropped.mp4`` of ../shared/real). Its speech (the video the run was tracked from) drives the talk
model exactly as ``splattalk export RUN`` would: the run's adapted mouth read-out when ``splattalk adapt RUN`` made
one, the style from the run's own tracked motion. The avatar is posed with the model's expression + jaw and the
tracked head pose and camera of each frame, so real and rendered tiles show the same view; tiles are cut around
the mouth from the tracked landmarks. A video whose sound is off its picture (``splattalk.adapt.sync_offset``) has ours
moved by that offset to the picture's time (our mouth follows the sound).

Row 1: the real frames; row 2: our avatar at the same instants. Below: the inner-lip gap over time
(``head.mouth.mouth_gap``, over the eye-corner span; the benchmark's measure) of the tracked truth and of ours,
with the instants marked and the "lips together" line of ``scripts/eval_real_lipsync.py``. The instants lie in the
last ``--holdout`` of the clip (the seconds ``splattalk adapt`` held out; it learned from the rest): half where the
real lips are most closed, half where they are most open (:func:`pick_instants`), so the sheet shows how our mouth
meets both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro


@dataclass(frozen=True)
class SheetConfig:
    """Contact sheet of a real clip and our avatar speaking its audio."""

    run: tyro.conf.Positional[Path]
    """A fitted run of a real clip (tracking/ + avatar/)."""
    out: Path = Path("docs/lipsync_sheet.png")
    """PNG to write."""
    tiles: int = 8
    """Instants shown."""
    holdout: float = 0.3
    """The instants lie in this last share of the clip (what `splattalk adapt` held out)."""
    tile_px: int = 160
    """Side of a tile in the sheet."""
    closed_margin: float = 0.035
    """Lips together within this of the neutral gap (eye-corner spans; eval_real_lipsync's CLOSED_MARGIN)."""


def pick_instants(truth: np.ndarray, first: int, last: int, count: int, spacing: int = 8) -> np.ndarray:
    """``count`` frames in ``[first, last)`` of ``truth`` ``[T]``: half where the real lips are most closed, half
    where most open (at least ``spacing`` frames apart), in time order."""
    chosen: list[int] = []
    for want, order in (
        (count // 2, np.argsort(truth[first:last])),
        (count - count // 2, np.argsort(-truth[first:last])),
    ):
        taken = 0
        for i in order + first:
            if taken == want:
                break
            if all(abs(int(i) - c) >= spacing for c in chosen):
                chosen.append(int(i))
                taken += 1
    return np.array(sorted(chosen))


def main(cfg: SheetConfig) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from PIL import Image

    from splattalk.adapt import sync_offset
    from splattalk.avatar.io import load_avatar
    from splattalk.avatar.sequence import render_frames
    from splattalk.head.default import load_default_head
    from splattalk.head.mouth import mouth_gap
    from splattalk.head.params import HeadParams
    from splattalk.models import check_head_model, for_run, resolve_model, run_style
    from splattalk.run import RunLayout, Tracks
    from splattalk.talk.audio import load_audio
    from splattalk.talk.corpus.tracks import tracked_video
    from splattalk.talk.inference import generate
    from splattalk.talk.metrics import shifted

    torch.set_num_threads(1)
    layout = RunLayout(cfg.run)
    tracks = Tracks.load(layout.tracks)
    arrays = tracks.to_arrays()
    avatar = load_avatar(layout.avatar)
    video = tracked_video(cfg.run)
    audio = load_audio(video, max_bytes=None)
    model = for_run(resolve_model(None), cfg.run)
    check_head_model(model, avatar.model_id)
    motion = generate(model, audio, style=run_style(cfg.run, model))
    E = avatar.head.num_expr
    T = min(len(tracks), len(motion))

    head = load_default_head()
    identity = {"shape": arrays["shape"], "static_offset": arrays.get("static_offset")}
    truth = mouth_gap(head, arrays["expr"][:T], arrays["jaw"][:T], **identity)
    # a video whose sound is off its picture: ours follows the sound, so it is moved to the picture's time
    offset = sync_offset(audio, truth)
    motion = shifted(motion, offset)
    ours = mouth_gap(head, motion[:T, :E], motion[:T, E + 3 : E + 6], **identity)
    neutral = float(mouth_gap(head, np.zeros((1, E)), np.zeros((1, 3)), **identity)[0])
    closed = neutral + cfg.closed_margin

    first = int(T * (1 - cfg.holdout))
    instants = pick_instants(truth, first, T, cfg.tiles)
    per_frame = tracks.per_frame()
    params = HeadParams(**{k: v[instants] for k, v in per_frame.items()})
    params.expr, params.jaw = motion[instants, :E].copy(), motion[instants, E + 3 : E + 6].copy()
    viewmat, K, width, height = tracks.camera
    if width != height:
        raise SystemExit(f"error: {layout.tracks} has a {width}×{height} image; the sheet needs the square crop")
    n = len(instants)
    rendered = list(
        render_frames(avatar, params, np.repeat(viewmat[None], n, 0), np.repeat(K[None], n, 0), width, (1, 1, 1))
    )

    lmk = arrays["landmarks2d"]
    tiles_real, tiles_ours = [], []
    for k, i in enumerate(instants):
        mouth = lmk[i, [13, 14]].mean(0)
        side = 1.3 * np.linalg.norm(lmk[i, 33] - lmk[i, 263])
        box = (mouth[0] - side / 2, mouth[1] - side / 2, mouth[0] + side / 2, mouth[1] + side / 2)
        real = Image.open(layout.frame(int(i))).convert("RGB")
        for image, row in ((real, tiles_real), (Image.fromarray(rendered[k]), tiles_ours)):
            row.append(np.asarray(image.resize((width, height)).crop(tuple(map(int, box))).resize((cfg.tile_px,) * 2)))

    fig = plt.figure(figsize=(1.3 * n, 5.2), dpi=110)
    grid = fig.add_gridspec(3, n, height_ratios=[1, 1, 1.25], hspace=0.12, wspace=0.04)
    for k, i in enumerate(instants):
        for r, (row, name) in enumerate(((tiles_real, "real"), (tiles_ours, "ours"))):
            ax = fig.add_subplot(grid[r, k])
            ax.imshow(row[k])
            ax.set_xticks([]), ax.set_yticks([])
            if k == 0:
                ax.set_ylabel(name, fontsize=9)
            if r == 0:
                ax.set_title(f"{i / 25:.2f} s", fontsize=8)
            together = (truth if r == 0 else ours)[i] < closed
            ax.text(4, 14, "closed" if together else "", color="yellow", fontsize=7, weight="bold")
    ax = fig.add_subplot(grid[2, :])
    t = np.arange(T) / 25
    ax.axvspan(t[first], t[T - 1], color="0.93", label="held out by adapt")
    ax.plot(t, truth, color="black", lw=1.0, label="real (tracked)")
    moved = f" (moved {abs(offset) * 40} ms: the video's sound is off its picture)" if offset else ""
    ax.plot(t, ours, color="tab:red", lw=1.0, label="ours" + moved)
    ax.axhline(closed, color="tab:blue", lw=0.8, ls="--", label="lips together below")
    for i in instants:
        ax.axvline(i / 25, color="0.5", lw=0.6, ls=":")
    ax.set_xlim(0, t[-1])
    ax.set_xlabel("seconds", fontsize=8)
    ax.set_ylabel("inner-lip gap / eye span", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, ncol=2 if offset else 4, loc="upper right")
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(cfg.out, bbox_inches="tight")
    agree = (ours[truth < closed] < closed).mean() if (truth < closed).any() else float("nan")
    r = float(np.corrcoef(truth[first:T], ours[first:T])[0, 1])
    print(
        f"wrote {cfg.out}: instants {instants.tolist()}; audio/video offset {offset:+d} frames (ours moved by it); "
        f"held-out r {r:.2f} (no further lag search); lips together: real "
        f"{(truth < closed).mean():.2f}, ours {(ours < closed).mean():.2f} of frames, agreement {agree:.2f}"
    )


if __name__ == "__main__":
    main(tyro.cli(SheetConfig))
