"""Prosody → non-verbal motion: head nods/turns on pitch accents, blinks, brows.

Pitch accents are found acoustically (peaks of F0 and loudness within voiced
speech), so the same code labels TTS and real recordings. Head rotation is the
sum of (1) a nod per accent, sometimes with a turn or tilt, (2) a slow pose that
follows intonation (higher pitch → chin up), (3) smooth random drift and (4) the
style's resting pose; motion is larger while speaking than in pauses. Blinks are
a renewal process that prefers pauses. All randomness comes from the caller's
generator.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

from splattalk.talk.config import FPS
from splattalk.talk.corpus.layout import EXPR_NAMES, N_EXPR
from splattalk.talk.corpus.styles import MotionStyle
from splattalk.talk.pitch import RATE, SpeechFeatures, voice_activity

_DEG = np.pi / 180.0


def pitch_accents(feat: SpeechFeatures, min_gap: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Times (s) [A] and strengths in [0, 1] [A] of pitch accents: prominent F0/loudness peaks."""
    voiced = feat.voiced
    if voiced.sum() < 5:
        return np.zeros(0), np.zeros(0)
    semis = np.zeros(len(voiced))
    semis[voiced] = 12.0 * np.log2(feat.f0[voiced] / np.median(feat.f0[voiced]))
    semis = gaussian_filter1d(semis, 3) / np.maximum(gaussian_filter1d(voiced.astype(float), 3), 1e-3)
    loud = gaussian_filter1d(feat.energy_db - feat.speech_level_db, 4)
    score = np.where(voiced, 0.5 * np.clip(semis / 3.0, -2, 2) + 0.5 * np.clip(loud / 6.0, -2, 2), -2.0)
    score = gaussian_filter1d(score, 2)
    peaks, props = find_peaks(score, prominence=0.25, distance=max(1, int(min_gap * RATE)))
    keep = voiced[peaks]
    peaks, prom = peaks[keep], props["prominences"][keep]
    return peaks / RATE, np.clip(prom / 1.5, 0.2, 1.0)


def _bump(t: np.ndarray, onset: float, rise: float) -> np.ndarray:
    """Smooth gamma-shaped pulse starting at ``onset`` with zero slope, peaking (value 1) ``rise`` s later."""
    x = np.maximum(t - onset, 0.0) / rise
    return x**2 * np.exp(2.0 * (1.0 - x))


def smooth_noise(n: int, frames_per_cycle: float, rng: np.random.Generator) -> np.ndarray:
    """[n] zero-mean, unit-std noise, low-passed to a time scale of ``frames_per_cycle`` frames."""
    sigma = max(frames_per_cycle / 4.0, 1.0)
    pad = int(4 * sigma)
    x = gaussian_filter1d(rng.standard_normal(n + 2 * pad), sigma)[pad : pad + n]
    # Scale by the filter's own gain (Gaussian-smoothed unit white noise has std
    # 1 / sqrt(2 sqrt(pi) sigma)), not by this sample's std: a short clip holds only part
    # of a cycle and would be blown up.
    return x * np.sqrt(2.0 * np.sqrt(np.pi) * sigma)


def _activity_at(feat: SpeechFeatures, times: np.ndarray) -> np.ndarray:
    act = gaussian_filter1d(voice_activity(feat).astype(float), 0.3 * RATE)
    return np.interp(times, feat.times, act)


def head_rotation(
    feat: SpeechFeatures,
    times: np.ndarray,
    style: MotionStyle,
    rng: np.random.Generator,
    accents: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """[T, 3] head rotation (axis-angle, radians) at frame ``times: [T]``."""
    acc_t, acc_s = pitch_accents(feat) if accents is None else accents
    n = len(times)
    rot = np.zeros((n, 3))
    personal = rng.uniform(0.7, 1.3)  # this speaker's own expressiveness
    for t0, s in zip(acc_t, acc_s):
        onset = t0 - rng.uniform(0.05, 0.2)  # head movement starts a little before the accent peak
        rot[:, 0] += personal * style.nod_deg * _DEG * s * rng.uniform(0.6, 1.2) * _bump(times, onset, 0.2)
        if rng.random() < style.turn_prob:
            rise = rng.uniform(0.3, 0.5)
            rot[:, 1] += personal * style.turn_deg * _DEG * s * rng.choice([-1, 1]) * _bump(times, onset, rise)
            rot[:, 2] += personal * style.roll_deg * _DEG * s * rng.choice([-1, 1]) * _bump(times, onset, rise)
    # Nods come back up: remove the slow offset a run of accents would otherwise build up.
    rot -= gaussian_filter1d(rot, 0.8 * FPS, axis=0, mode="nearest")
    # Head pitch follows intonation: smoothed F0 in octaves around the median, held through
    # unvoiced gaps, chin up (negative x) when the voice goes up.
    if feat.voiced.sum() > 5:
        octv = np.zeros(len(feat.f0))
        octv[feat.voiced] = np.log2(feat.f0[feat.voiced] / np.median(feat.f0[feat.voiced]))
        w = gaussian_filter1d(feat.voiced.astype(float), 0.25 * RATE)
        octv = gaussian_filter1d(octv, 0.25 * RATE) / np.maximum(w, 1e-3) * np.clip(w * 3, 0, 1)
        rot[:, 0] -= style.f0_deg_per_octave * _DEG * np.interp(times, feat.times, octv)
    activity = _activity_at(feat, times)
    drift_frames = style.drift_seconds * FPS
    for axis, weight in enumerate((1.0, 1.3, 0.7)):
        rot[:, axis] += style.drift_deg * weight * _DEG * (0.5 + 0.5 * activity) * smooth_noise(n, drift_frames, rng)
    pose = np.array(style.pose_deg) * _DEG + rng.normal(0.0, 1.5, 3) * _DEG
    return rot + pose[None, :]


def blinks(
    times: np.ndarray, style: MotionStyle, rng: np.random.Generator, pauses: np.ndarray | None = None
) -> np.ndarray:
    """[T, 2] eyelid closure (left, right) in [0, 1]: ~150 ms blinks every 2–6 s, sometimes half.

    ``pauses: [P]`` are pause start times; a blink due shortly before a pause moves into it.
    """
    n = len(times)
    out = np.zeros((n, 2))
    if n == 0:
        return out
    end = times[-1] + 1.0 / FPS
    t = rng.uniform(0.3, style.blink_seconds)
    while t < end:
        if pauses is not None and len(pauses):
            ahead = pauses[(pauses >= t) & (pauses < t + 0.8)]
            if len(ahead):
                t = float(ahead[0]) + rng.uniform(0.0, 0.1)
        amp = 1.0 if rng.random() < 0.85 else rng.uniform(0.4, 0.7)
        close, hold, open_ = rng.uniform(0.04, 0.06), rng.uniform(0.01, 0.03), rng.uniform(0.07, 0.1)
        # Put the closed instant on a frame so the 25 fps motion shows the full closure.
        peak = np.round(t * FPS) / FPS if rng.random() < 0.7 else t
        lid = np.zeros(n)
        rising = (times >= peak - close) & (times < peak)
        lid[rising] = 0.5 - 0.5 * np.cos(np.pi * (times[rising] - (peak - close)) / close)
        lid[(times >= peak) & (times <= peak + hold)] = 1.0
        falling = (times > peak + hold) & (times < peak + hold + open_)
        lid[falling] = 0.5 + 0.5 * np.cos(np.pi * (times[falling] - peak - hold) / open_)
        out[:, 0] = np.maximum(out[:, 0], amp * lid)
        out[:, 1] = np.maximum(out[:, 1], amp * lid * rng.uniform(0.92, 1.0))
        t += float(np.clip(rng.gamma(4.0, style.blink_seconds / 4.0), 2.0, 6.0) if style.blink_seconds else 1e9)
    return out


def face_expression(
    feat: SpeechFeatures,
    times: np.ndarray,
    style: MotionStyle,
    rng: np.random.Generator,
    accents: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """[T, 26] upper-face and resting expression (brows, eyes, smile) driven by accents and style."""
    acc_t, acc_s = pitch_accents(feat) if accents is None else accents
    n = len(times)
    ex = np.zeros((n, N_EXPR))
    col = {name: i for i, name in enumerate(EXPR_NAMES)}
    brow = np.zeros(n)
    for t0, s in zip(acc_t, acc_s):
        if rng.random() < style.brow_prob * (0.5 + s):
            # max, not sum: a raised brow stays raised through a run of accents, it does not climb
            brow = np.maximum(brow, style.brow_gain * s * rng.uniform(0.6, 1.3) * _bump(times, t0 - 0.15, 0.2))
    brow = np.clip(brow, 0.0, 1.0)
    slow = smooth_noise(n, 4 * FPS, rng)
    ex[:, col["brow_inner_up"]] = brow + 0.03 * np.abs(slow)
    ex[:, col["brow_outer_up"]] = 0.8 * brow
    ex[:, col["eyes_wide"]] = 0.3 * brow
    smile = np.clip(style.smile * (1.0 + 0.3 * smooth_noise(n, 5 * FPS, rng)), 0.0, 1.0)
    ex[:, col["smile"]] = smile
    ex[:, col["cheek_raise"]] = 0.5 * smile
    ex[:, col["squint_left"]] = ex[:, col["squint_right"]] = 0.2 * smile
    down = np.clip(style.brow_down * (1.0 + 0.2 * smooth_noise(n, 4 * FPS, rng)) - 0.5 * brow, 0.0, 1.0)
    ex[:, col["brow_down"]] = down
    ex[:, col["brow_in"]] = 0.6 * down
    ex[:, col["frown"]] = 0.3 * down
    return ex
