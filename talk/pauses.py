"""Lips together in the pauses of speech: a gate on the mouth channels from the audio's voice activity.

On real recordings the built-in model seldom closes its lips (docs/talk.md, "Real speech"): room noise and
codecs keep its phone posteriors away from silence, and it learned closure from synthetic pauses. The gate
brings the columns that part the lips (``TalkConfig.closure_channels``) to their rest (``closure_rest``) in
the motion frames that lie at least ``margin`` seconds from any voice activity (``pitch.voice_activity``: loud
relative to the speech level, or voiced), with a short Gaussian ramp so the lips do not snap shut.

:func:`window_gate` works on one generation window (its audio, left context included), with the speech
level carried from window to window, so ``inference.generate`` and ``stream.TalkStream`` — which run the
same windows — close the same frames.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_dilation, gaussian_filter1d

from splattalk.talk.config import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from splattalk.talk.pitch import RATE, speech_features, voice_activity

MARGIN = 0.05
"""Seconds a frame must lie from voice activity to count as a pause."""
RAMP_FRAMES = 1.0
"""Standard deviation (frames) of the Gaussian that softens the gate's edges."""
QUIETEST_SPEECH_DB = -50.0
"""The speech level is taken to be at least this (dBFS): a window of digital silence or faint hiss at the start of
a stream, with no louder past to compare with, is a pause, not speech at its own level."""


def frame_activity(audio: np.ndarray, n_frames: int) -> np.ndarray:
    """[n_frames] bool voice activity of the 25 fps motion frames of ``audio: [S]`` (16 kHz)."""
    return _activity(audio, n_frames, 0, -np.inf)[0]


def _activity(audio: np.ndarray, n_frames: int, first_sample: int, level_floor: float) -> tuple[np.ndarray, float]:
    """Voice activity of ``n_frames`` motion frames whose first starts at sample ``first_sample``, and the speech
    level (dB) it was judged against (``pitch.speech_features``)."""
    feat = speech_features(audio, level_floor=level_floor)
    act = voice_activity(feat)
    t = (first_sample + (np.arange(n_frames) + 0.5) * SAMPLES_PER_FRAME) / SAMPLE_RATE
    return act[np.clip((t * RATE).astype(int), 0, len(act) - 1)], feat.speech_level_db


def near_speech(active: np.ndarray, margin: float) -> np.ndarray:
    """[T] bool frames within ``margin`` seconds of voice activity ``active: [T]`` (the rest are pauses)."""
    grow = int(round(margin * FPS))
    return binary_dilation(active, structure=np.ones(2 * grow + 1)) if grow else active.copy()


def gate_from_activity(active: np.ndarray, margin: float = MARGIN, ramp_frames: float = RAMP_FRAMES) -> np.ndarray:
    """[T] float gate in [0, 1]: 0 in frames ≥ ``margin`` s from activity, 1 near speech, edges ramped."""
    speech = near_speech(active, margin).astype(np.float64)
    return gaussian_filter1d(speech, ramp_frames, mode="nearest") if ramp_frames > 0 else speech


def window_gate(audio: np.ndarray, n_frames: int, first_sample: int, level_db: float) -> tuple[np.ndarray, float]:
    """Gate ``[n_frames]`` for one window's motion and the speech level to carry on.

    ``audio``: the window's samples (left context first), ``first_sample``: where its first motion frame
    starts, ``level_db``: the loudest speech level of the windows before (−inf at the start). A window of
    room noise alone then does not take its own noise for speech."""
    active, level = _activity(audio, n_frames, first_sample, max(level_db, QUIETEST_SPEECH_DB))
    return gate_from_activity(active), level
