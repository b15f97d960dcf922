"""Phones → visemes → mouth parameters, blended with Cohen–Massaro coarticulation.

Every phone becomes one of 15 visemes (the Oculus/MPEG-4-style set). Each viseme
has a target for the jaw angle and the mouth expression coefficients, and a
*dominance* per articulator group: lip closure/opening, lip rounding/spreading,
and the jaw. A segment's dominance is highest over the middle of the segment and
decays exponentially away from it (faster after the segment than before it, so
the mouth anticipates). Each parameter at time t is the dominance-weighted mean
of all targets, so bilabial closure (very dominant on the lips, not on rounding)
wins over its vowels while a neighbouring ``oo`` still rounds an ``m`` or ``s``.
The result is smooth by construction: no steps anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from splattalk.talk.config import SIL
from splattalk.talk.corpus.layout import EXPR_NAMES, N_EXPR
from splattalk.talk.corpus.phones import Segmentation

VISEMES = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")

PHONE_TO_VISEME = {
    SIL: "sil",
    "P": "PP",
    "B": "PP",
    "M": "PP",
    "F": "FF",
    "V": "FF",
    "TH": "TH",
    "DH": "TH",
    "T": "DD",
    "D": "DD",
    "K": "kk",
    "G": "kk",
    "NG": "kk",
    "HH": "kk",
    "CH": "CH",
    "JH": "CH",
    "SH": "CH",
    "ZH": "CH",
    "S": "SS",
    "Z": "SS",
    "N": "nn",
    "L": "nn",
    "R": "RR",
    "ER": "RR",
    "AA": "aa",
    "AE": "aa",
    "AH": "aa",
    "EH": "E",
    "IH": "ih",
    "IY": "ih",
    "Y": "ih",
    "AO": "oh",
    "UH": "ou",
    "UW": "ou",
    "W": "ou",
}
DIPHTHONGS = {"AY": ("aa", "ih"), "AW": ("aa", "ou"), "OY": ("oh", "ih"), "EY": ("E", "ih"), "OW": ("oh", "ou")}
"""Diphthongs glide between two visemes (first half, second half)."""
TRANSPARENT = {"HH": 0.15}
"""Phones that barely shape the mouth: their dominance is scaled down so neighbours show through."""

LIPS = ("mouth_open", "lips_press", "lower_lip_roll", "upper_lip_raise", "lower_lip_depress")
ROUND = ("mouth_pucker", "mouth_funnel", "mouth_stretch")
MOUTH_PARAMS = LIPS + ROUND
"""Expression components driven by articulation (the rest come from prosody and style)."""
_OPENING = ("mouth_open", "lower_lip_depress")  # scaled with loudness like the jaw


@dataclass(frozen=True)
class Viseme:
    """Target mouth shape of one viseme and how strongly it holds it."""

    jaw: float
    """Jaw opening, radians about x."""
    expr: dict
    """Targets of the :data:`MOUTH_PARAMS` it sets (others target 0)."""
    dominance: tuple[float, float, float]
    """Strength on the (lips, rounding, jaw) groups."""
    before: float = 0.09
    """Anticipatory decay length, seconds (dominance ×1/e this far before the core)."""
    after: float = 0.06
    """Carry-over decay length, seconds."""


TARGETS = {
    "sil": Viseme(0.012, {"lips_press": 0.15}, (2.0, 0.6, 2.0), 0.05, 0.05),
    "PP": Viseme(0.015, {"lips_press": 0.9}, (12.0, 0.3, 10.0), 0.06, 0.04),
    "FF": Viseme(0.05, {"lower_lip_roll": 0.75, "upper_lip_raise": 0.2}, (8.0, 0.3, 4.0), 0.06, 0.04),
    "TH": Viseme(0.09, {"mouth_open": 0.2, "upper_lip_raise": 0.1}, (2.0, 0.3, 1.5)),
    "DD": Viseme(0.08, {"mouth_open": 0.15}, (0.8, 0.25, 1.0)),
    "kk": Viseme(0.11, {"mouth_open": 0.15}, (0.6, 0.2, 0.8)),
    "CH": Viseme(
        0.06, {"mouth_funnel": 0.7, "mouth_pucker": 0.15, "mouth_open": 0.15, "upper_lip_raise": 0.15}, (1.5, 3.0, 1.5)
    ),
    "SS": Viseme(0.035, {"mouth_stretch": 0.35, "mouth_open": 0.12, "upper_lip_raise": 0.1}, (1.5, 1.2, 2.5)),
    "nn": Viseme(0.07, {"mouth_open": 0.12}, (0.7, 0.25, 0.9)),
    "RR": Viseme(0.08, {"mouth_funnel": 0.35, "mouth_pucker": 0.25, "mouth_open": 0.1}, (1.0, 1.5, 1.0)),
    "aa": Viseme(0.24, {"mouth_open": 0.5, "mouth_stretch": 0.1, "lower_lip_depress": 0.2}, (1.0, 1.0, 1.3)),
    "E": Viseme(0.15, {"mouth_open": 0.35, "mouth_stretch": 0.35}, (1.0, 1.0, 1.2)),
    "ih": Viseme(0.09, {"mouth_open": 0.25, "mouth_stretch": 0.5}, (1.0, 1.2, 1.0)),
    "oh": Viseme(0.18, {"mouth_funnel": 0.65, "mouth_open": 0.3}, (1.0, 2.5, 1.2), 0.13, 0.07),
    "ou": Viseme(0.07, {"mouth_pucker": 0.8, "mouth_funnel": 0.25, "mouth_open": 0.05}, (1.0, 3.0, 1.0), 0.15, 0.08),
}


def viseme_segments(seg: Segmentation) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Viseme labels, start, end [V] and dominance scale [V] of a phone segmentation."""
    labels, starts, ends, scale = [], [], [], []
    for phone, s, e in zip(seg.labels, seg.start, seg.end):
        if phone in DIPHTHONGS:
            a, b = DIPHTHONGS[phone]
            mid = s + 0.5 * (e - s)
            labels += [a, b]
            starts += [s, mid]
            ends += [mid, e]
            scale += [1.0, 1.0]
            continue
        labels.append(PHONE_TO_VISEME.get(phone, "nn"))
        starts.append(s)
        ends.append(e)
        scale.append(TRANSPARENT.get(phone, 1.0))
    return labels, np.array(starts, float), np.array(ends, float), np.array(scale, float)


def articulate(
    seg: Segmentation,
    times: np.ndarray,
    gain: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    amplitude: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Jaw angle [N] and expression coefficients [N, 26] (mouth columns) at ``times: [N]`` seconds.

    ``gain: [N]`` scales opening (jaw, mouth_open, lower_lip_depress) with loudness and
    speaking rate; ``amplitude`` scales all targets (style, speaker); ``rng`` jitters
    each segment's target a little (no two ``a``\\ s are identical).
    """
    labels, start, end, scale = viseme_segments(seg)
    n_seg = len(labels)
    jaw_t = np.array([TARGETS[v].jaw for v in labels])
    expr_t = np.array([[TARGETS[v].expr.get(p, 0.0) for p in MOUTH_PARAMS] for v in labels]).reshape(n_seg, -1)
    dom = np.array([TARGETS[v].dominance for v in labels]).reshape(n_seg, 3) * scale[:, None]
    before = np.array([TARGETS[v].before for v in labels])
    after = np.array([TARGETS[v].after for v in labels])
    dur = end - start
    is_sil = np.array([v == "sil" for v in labels], dtype=bool)
    # Short pauses between words only half close the mouth; long ones close it.
    dom[is_sil] *= np.clip((dur[is_sil] - 0.05) / 0.25, 0.15, 1.0)[:, None]
    if rng is not None and n_seg:
        jitter = rng.normal(1.0, 0.08, size=n_seg).clip(0.8, 1.2)
        jaw_t = jaw_t * np.where(is_sil, 1.0, jitter)
        expr_t = expr_t * np.where(is_sil, 1.0, jitter)[:, None]
        pause_jaw = rng.uniform(0.0, 0.02, size=n_seg)
        jaw_t = np.where(is_sil, pause_jaw, jaw_t)
    jaw_t = jaw_t * np.where(is_sil, 1.0, amplitude)
    expr_t = expr_t * np.where(is_sil, 1.0, amplitude)[:, None]

    centre = 0.5 * (start + end)
    if gain is not None:  # scale each segment's target, so closures stay closed however loud
        g = np.where(is_sil, 1.0, np.interp(centre, times, gain))
        jaw_t = jaw_t * g
        for name in _OPENING:
            expr_t[:, MOUTH_PARAMS.index(name)] *= g
    core = np.where(is_sil, np.maximum(0.5 * dur - 0.06, 0.0), 0.3 * dur)  # plateau half-width
    groups = [0 if p in LIPS else 1 for p in MOUTH_PARAMS]
    out = np.zeros((len(times), N_EXPR))
    jaw = np.zeros(len(times))
    reach = 1.5  # seconds beyond which a segment's dominance is negligible (e^-10)
    for c0 in range(0, len(times), 256):  # chunks keep memory at O(chunk x nearby segments)
        t = times[c0 : c0 + 256]
        near = (end > t[0] - reach) & (start < t[-1] + reach)
        if not near.any():
            near = np.ones(n_seg, dtype=bool)
        tau = t[None, :] - centre[near, None]  # [V, n]
        dist = np.maximum(np.abs(tau) - core[near, None], 0.0)
        width = np.where(tau < 0, before[near, None], after[near, None])
        weights = np.exp(-dist / width)[:, :, None] * dom[near, None, :] + 1e-12  # [V, n, 3]
        for k, name in enumerate(MOUTH_PARAMS):
            w = weights[:, :, groups[k]]
            out[c0 : c0 + 256, EXPR_NAMES.index(name)] = (w * expr_t[near, k : k + 1]).sum(0) / w.sum(0)
        w = weights[:, :, 2]
        jaw[c0 : c0 + 256] = (w * jaw_t[near, None]).sum(0) / w.sum(0)
    return jaw, out


def rate_gain(seg: Segmentation, times: np.ndarray, window: float = 1.0) -> np.ndarray:
    """[N] opening gain from the local speaking rate: fast speech undershoots its targets."""
    speech = np.array([lab != SIL for lab in seg.labels])
    centres = 0.5 * (seg.start + seg.end)[speech]
    if len(centres) == 0:
        return np.ones(len(times))
    counts = np.abs(times[:, None] - centres[None, :]) < window / 2
    rate = counts.sum(1) / window  # phones per second
    speaking = rate > 0
    gain = np.ones(len(times))
    gain[speaking] = np.clip((rate[speaking] / 12.0) ** -0.3, 0.8, 1.15)
    return gain
