"""Ground-truth motion for a speech clip: articulation + prosody + blinks, in one array.

``synthesize_motion`` turns audio and its phone segmentation into ``[T, 32]``
motion for the default head at 25 fps: mouth from visemes with coarticulation
(:mod:`talk.visemes`), its opening scaled by local loudness and speaking rate;
head rotation, brows and blinks from prosody and the style (:mod:`talk.prosody`).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d

from splattalk.talk.config import FPS, SAMPLE_RATE, SIL
from splattalk.talk.corpus.layout import EXPR, EXPR_NAMES, JAW, MOTION_DIM, ROTATION, n_frames
from splattalk.talk.corpus.phones import Segmentation
from splattalk.talk.corpus.prosody import blinks, face_expression, head_rotation, pitch_accents
from splattalk.talk.corpus.styles import MotionStyle
from splattalk.talk.corpus.visemes import articulate, rate_gain
from splattalk.talk.pitch import RATE, SpeechFeatures, speech_features


def frame_times(n: int) -> np.ndarray:
    """[n] time (s) each motion frame shows: the centre of its 1/25 s of audio."""
    return (np.arange(n) + 0.5) / FPS


def soft_limit(x: np.ndarray, knee: float, ceiling: float) -> np.ndarray:
    """Identity below ``knee``, then a smooth approach to ``ceiling`` (a wide-open jaw is ~0.35 rad)."""
    span = ceiling - knee
    return np.where(x <= knee, np.maximum(x, 0.0), knee + span * np.tanh((x - knee) / span))


def loudness_gain(feat: SpeechFeatures, times: np.ndarray) -> np.ndarray:
    """[N] opening gain from syllable-level loudness relative to the clip's speech level."""
    upper = maximum_filter1d(feat.energy_db, int(0.15 * RATE))
    upper = gaussian_filter1d(upper, 0.05 * RATE)
    gain = np.clip(2.0 ** ((upper - feat.speech_level_db) / 12.0), 0.6, 1.35)
    return np.interp(times, feat.times, gain)


def synthesize_motion(
    audio: np.ndarray,
    seg: Segmentation,
    style: MotionStyle,
    rng: np.random.Generator,
    feat: SpeechFeatures | None = None,
) -> np.ndarray:
    """[T, 32] float32 motion for ``audio: [S]`` (16 kHz) whose phones are ``seg``.

    T = round(duration * 25). Deterministic given ``rng``'s state.
    """
    # One generator per component, so a change in one (say, one more pitch accent) does not
    # reshuffle the others' random draws.
    rng_mouth, rng_head, rng_face, rng_blink, rng_side = (np.random.default_rng(s) for s in rng.integers(2**62, size=5))
    duration = len(audio) / SAMPLE_RATE
    n = n_frames(duration)
    times = frame_times(n)
    feat = speech_features(audio) if feat is None else feat
    fine = (np.arange(int(np.ceil(duration * RATE))) + 0.5) / RATE
    gain = np.clip(loudness_gain(feat, fine) * rate_gain(seg, fine), 0.6, 1.3)
    amplitude = style.mouth_gain * rng_mouth.uniform(0.88, 1.12)  # this speaker's articulation
    jaw_f, mouth_f = articulate(seg, fine, gain, rng_mouth, amplitude)
    jaw = np.interp(times, fine, jaw_f)
    mouth = np.stack([np.interp(times, fine, mouth_f[:, k]) for k in range(mouth_f.shape[1])], axis=1)

    accents = pitch_accents(feat)
    rot = head_rotation(feat, times, style, rng_head, accents)
    face = face_expression(feat, times, style, rng_face, accents)
    pauses = np.array([s for lab, s, e in zip(seg.labels, seg.start, seg.end) if lab == SIL and e - s >= 0.25])
    lids = blinks(times, style, rng_blink, pauses)

    motion = np.zeros((n, MOTION_DIM))
    expr = mouth + face
    expr[:, EXPR_NAMES.index("blink_left")] = lids[:, 0]
    expr[:, EXPR_NAMES.index("blink_right")] = lids[:, 1]
    side = rng_side.normal(0.0, 0.04)  # a slightly lopsided mouth, per speaker
    expr[:, EXPR_NAMES.index("mouth_left" if side > 0 else "mouth_right")] += abs(side)
    motion[:, EXPR] = np.clip(expr, 0.0, 1.0)
    motion[:, ROTATION] = rot
    motion[:, JAW.start] = soft_limit(jaw, knee=0.25, ceiling=0.35)
    return motion.astype(np.float32)
