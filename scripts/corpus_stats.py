"""Numbers (and optionally a plot) about a talk corpus: size, pause closure, jaw/voice
correlation by source, per-style motion statistics.

    python scripts/corpus_stats.py --corpus corpus/ [--plot jaw_vs_envelope.png] [--max-clips 400]
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro


@dataclass(frozen=True)
class StatsConfig:
    corpus: Path
    """Corpus folder made by make_talk_corpus.py."""
    plot: Path | None = None
    """Write a PNG of jaw angle vs speech envelope (one TTS clip, one real recording)."""
    max_clips: int = 400
    """Analyse at most this many clips (evenly spread over the manifest)."""


def main() -> None:
    from splattalk.talk.corpus import layout as C
    from splattalk.talk.corpus import speech_checks as S
    from splattalk.talk.corpus.styles import STYLES

    cfg = tyro.cli(StatsConfig)
    records = C.read_manifest(cfg.corpus)
    size = sum(f.stat().st_size for f in (cfg.corpus / "clips").iterdir())
    out: dict = {
        "clips": len(records),
        "hours": round(sum(r.duration for r in records) / 3600, 3),
        "disk_MB": round(size / 1e6, 1),
        "hours_by_source": {},
        "hours_by_split": {},
    }
    for key, attr in (("hours_by_source", "source"), ("hours_by_split", "split")):
        acc: dict = defaultdict(float)
        for r in records:
            acc[getattr(r, attr)] += r.duration / 3600
        out[key] = {k: round(v, 3) for k, v in acc.items()}

    pick = (
        records
        if len(records) <= cfg.max_clips
        else [records[i] for i in np.linspace(0, len(records) - 1, cfg.max_clips).astype(int)]
    )
    closed, pauses, corr, opening = defaultdict(int), defaultdict(int), defaultdict(list), defaultdict(list)
    by_speaker = defaultdict(list)
    style_rot, style_brow, style_blinks, style_minutes = (
        defaultdict(list),
        defaultdict(list),
        defaultdict(int),
        defaultdict(float),
    )
    for rec in pick:
        clip = C.load_clip(cfg.corpus, rec)
        kind = "real" if rec.source == "recording" else "tts"
        c, p = S.pause_closure(clip.audio, clip.motion)
        closed[kind] += c
        pauses[kind] += p
        corr[kind].append(S.jaw_envelope_correlation(clip.audio, clip.motion))
        if kind == "real":
            by_speaker[rec.speaker.split(":")[0]].append(corr[kind][-1])
        opening[kind].append(S.speech_opening(clip.audio, clip.motion))
        rot = np.degrees(clip.motion[:, C.ROTATION])
        style_rot[rec.style].append(rot.std(0))
        style_brow[rec.style].append(clip.motion[:, C.expr_index("brow_inner_up")].mean())
        lid = clip.motion[:, C.expr_index("blink_left")]
        style_blinks[rec.style] += int(((lid[1:] > 0.3) & (lid[:-1] <= 0.3)).sum())
        style_minutes[rec.style] += rec.duration / 60
    out["pause_closure_rate"] = {k: round(closed[k] / max(pauses[k], 1), 3) for k in pauses}
    out["pause_frames"] = dict(pauses)
    out["jaw_envelope_corr_mean"] = {k: round(float(np.nanmean(v)), 3) for k, v in corr.items()}
    out["jaw_envelope_corr_real_by_package"] = {k: round(float(np.nanmean(v)), 3) for k, v in by_speaker.items()}
    out["jaw_open_in_speech_rad"] = {k: round(float(np.nanmean(v)), 3) for k, v in opening.items()}
    out["styles"] = {
        STYLES[s].name: {
            "head_std_deg(nod,turn,roll)": np.round(np.mean(style_rot[s], 0), 2).tolist(),
            "brow_inner_up_mean": round(float(np.mean(style_brow[s])), 3),
            "blinks_per_min": round(style_blinks[s] / max(style_minutes[s], 1e-9), 1),
        }
        for s in sorted(style_rot)
    }
    print(json.dumps(out, indent=2))
    if cfg.plot is not None:
        _plot(cfg, records)


def _plot(cfg: StatsConfig, records) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from splattalk.talk.config import FPS
    from splattalk.talk.corpus import layout as C
    from splattalk.talk.corpus import speech_checks as S

    tts = next(r for r in records if r.source != "recording" and 6.0 < r.duration < 12.0)
    real = [r for r in records if r.source == "recording" and r.split == "heldout" and r.duration > 8.0]
    real = real[0] if real else next(r for r in records if r.source == "recording")
    fig, axes = plt.subplots(2, 1, figsize=(14, 7))
    for ax, rec in zip(axes, (tts, real)):
        clip = C.load_clip(cfg.corpus, rec)
        t = (np.arange(len(clip.motion)) + 0.5) / FPS
        env = S.frame_envelope(clip.audio, len(clip.motion))
        pauses = S.pause_frames(clip.audio, len(clip.motion))
        ax.fill_between(t, 0, 0.3, where=pauses, color="0.9", label="pause (VAD)")
        ax.plot(t, env / max(env.max(), 1e-9) * 0.3, color="tab:gray", label="speech RMS (scaled)")
        ax.plot(t, clip.motion[:, C.JAW.start], color="tab:red", label="jaw (rad)")
        ax.plot(t, 0.3 * clip.motion[:, C.expr_index("lips_press")], color="tab:blue", lw=0.8, label="0.3·lips_press")
        r = S.jaw_envelope_correlation(clip.audio, clip.motion)
        ax.set_title(f"{rec.id} {rec.speaker} ({rec.source}) r(jaw, envelope) = {r:.2f}: {rec.text[:70]}", fontsize=9)
        ax.set_ylim(0, 0.32)
        ax.legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(cfg.plot, dpi=80)
    print(f"wrote {cfg.plot}")


if __name__ == "__main__":
    main()
