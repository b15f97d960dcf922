"""Lips together in pauses: a gate on the mouth channels from the audio's voice activity.

On real recordings the built-in model almost never closes its lips (docs/talk.md, "Real speech"): room
noise and codecs keep its phone posteriors away from silence. :func:`close_in_pauses` scales the mouth
and jaw channels towards zero in the frames the voice-activity detector calls pauses (at least
``margin`` seconds from speech), with a short Gaussian ramp so the lips do not snap. Opt-in; measured
with ``scripts/eval_real_lipsync.py --close-in-pauses``. It lives with training, not the model, because it is
an experiment that needs the corpus' voice-activity detector (the model never imports corpus code).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from splattalk.talk.corpus.speech_checks import pause_frames


def close_in_pauses(
    motion: np.ndarray, audio: np.ndarray, channels, margin: float = 0.05, ramp_frames: float = 1.0
) -> np.ndarray:
    """``motion: [T, D]`` (25 fps) for ``audio: [S]`` (16 kHz) → a copy with ``channels`` (mouth and jaw columns)
    multiplied by a gate that is 0 inside pauses and 1 in speech, smoothed by a Gaussian of ``ramp_frames``."""
    motion = np.array(motion, np.float32, copy=True)
    if len(motion) == 0:
        return motion
    speech = (~pause_frames(audio, len(motion), margin=margin)).astype(np.float64)
    gate = gaussian_filter1d(speech, ramp_frames) if ramp_frames > 0 else speech
    cols = list(channels)
    motion[:, cols] *= gate[:, None].astype(np.float32)
    return motion
