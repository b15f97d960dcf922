"""Audio-referenced checks of mouth motion: does the mouth close in pauses and follow the voice?

Usable on any (audio, motion) pair — corpus ground truth or a model's output — so
training/eval can report the same numbers on real recordings.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from splattalk.talk.config import FPS, SAMPLE_RATE
from splattalk.talk.corpus.layout import EXPR_NAMES, JAW
from splattalk.talk.pauses import frame_activity, near_speech

CLOSED_JAW = 0.05
"""Jaw opening (rad) below which the mouth counts as closed (with lips not parted)."""
CLOSED_LIPS = 0.1
"""mouth_open coefficient below which the lips count as together."""


def frame_envelope(audio: np.ndarray, n_frames: int) -> np.ndarray:
    """[T] RMS amplitude of ``audio: [S]`` (16 kHz) per 1/25 s motion frame."""
    hop = SAMPLE_RATE // FPS
    x = np.zeros(n_frames * hop, np.float64)
    m = min(len(audio), len(x))
    x[:m] = audio[:m]
    return np.sqrt((x.reshape(n_frames, hop) ** 2).mean(1))


def pause_frames(audio: np.ndarray, n_frames: int, margin: float = 0.15) -> np.ndarray:
    """[T] bool frames inside pauses, at least ``margin`` seconds from any speech."""
    return ~near_speech(frame_activity(audio, n_frames), margin)


def mouth_closed(motion: np.ndarray) -> np.ndarray:
    """[T] bool: jaw nearly shut and lips not parted."""
    return (motion[:, JAW.start] < CLOSED_JAW) & (motion[:, EXPR_NAMES.index("mouth_open")] < CLOSED_LIPS)


def pause_closure(audio: np.ndarray, motion: np.ndarray) -> tuple[int, int]:
    """(closed pause frames, pause frames) of ``motion: [T, 32]`` against its ``audio``."""
    pauses = pause_frames(audio, len(motion))
    return int((pauses & mouth_closed(motion)).sum()), int(pauses.sum())


def speech_opening(audio: np.ndarray, motion: np.ndarray) -> float:
    """Mean jaw opening (rad) over voice-active frames."""
    active = frame_activity(audio, len(motion))
    return float(motion[active, JAW.start].mean()) if active.any() else float("nan")


def jaw_envelope_correlation(audio: np.ndarray, motion: np.ndarray, smooth_frames: float = 1.0) -> float:
    """Pearson correlation between jaw opening and the (lightly smoothed) speech RMS envelope."""
    env = gaussian_filter1d(frame_envelope(audio, len(motion)), smooth_frames)
    jaw = motion[:, JAW.start].astype(np.float64)
    if env.std() < 1e-9 or jaw.std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(env, jaw)[0, 1])
