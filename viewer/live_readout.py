"""Talk live with lip shapes: the talk model's mouth read-out on a sliding buffer, without lookahead.

The built-in talk model's mouth comes mostly from its read-out (``talk/readout.py``: a small MLP over the
audio front-end's phone posteriors, ±12 frames, the edge frame repeated past a window's end). Run live, the
front-end encodes the newest 3 s of microphone audio (its 1-s context and :data:`WINDOW_FRAMES` frames, the
newest frame last; it was trained on a 4-s window) and the read-out reads the last frame, whose "future" is the
edge frame repeated — no lookahead, so no added latency. Measured on ``sample_en_1.wav`` against the model's
offline motion, one 40-ms message at a time: jaw correlation 0.78 (5 s: 0.79; 2 s: 0.78, but noise right after
silence then reads as speech for a frame or two; the loudness jaw: 0.40; 0.75 with the two-read-out speech onset
of ``live_audio.LiveMic``), ~20 % cheaper than 5 s (docs/live.md).

The read-out knows no silence from quiet speech well, so its mouth is scaled by a voice-activity level from
the loudness gate (``live_audio.LiveMouth``) and by how unlike silence the front-end finds the frame (its
silence posterior): silence and steady noise keep the mouth closed.
"""

from __future__ import annotations

import numpy as np

from splattalk.talk.config import SAMPLES_PER_FRAME

WINDOW_FRAMES = 50
"""Frames encoded after the front-end's 1-s context (2 s; fewer cost less but let a noise onset through)."""
SIL_INDEX = 0
"""Index of silence in the front-end's phone posteriors (``talk.dataset.PHONE_SET[0]``)."""
SPEECH_RANGE = (0.3, 0.7)
"""1 − P(silence) below the first: no mouth; above the second: all of it. Steady noise right after silence
passes the loudness gate for a few seconds (the noise floor takes time to rise) but mostly reads as silence."""


class ReadoutMouth:
    """The newest frame's mouth ``[D]`` (read-out channels set, the rest zero) from the newest audio."""

    def __init__(self, model):
        if getattr(model, "readout", None) is None:
            raise ValueError("this talk model has no mouth read-out (trained without --audio-posteriors)")
        self.model = model
        cfg = model.cfg
        self.motion_dim = cfg.motion_dim
        self.channels = list(model.readout.channels)
        self.need = cfg.context_samples + min(cfg.window_samples, WINDOW_FRAMES * SAMPLES_PER_FRAME)
        self.buffer = np.zeros(self.need, np.float32)
        self.twist = slice(cfg.expr_dim + 4, None) if cfg.jaw_open_only else None

    def push(self, audio: np.ndarray) -> None:
        """Append float audio ``[n]`` (16 kHz); only the newest ``context + window`` samples are kept."""
        audio = np.asarray(audio, np.float32).reshape(-1)[-self.need :]
        self.buffer = np.concatenate([self.buffer[audio.shape[0] :], audio])

    def reset(self) -> None:
        self.buffer[:] = 0.0

    def mouth(self) -> tuple[np.ndarray, float]:
        """``(mouth row [D], speech)``: speech = 1 − the front-end's posterior of silence for the newest frame."""
        import torch

        with torch.inference_mode():
            feat = self.model.audio_encoder(torch.from_numpy(self.buffer)[None])
            values = self.model.readout(feat)[0, -1].float().numpy()
            silence = float(feat[0, -1, SIL_INDEX])
        row = np.zeros(self.motion_dim, np.float32)
        row[self.channels] = values
        if self.twist is not None:
            row[self.twist] = 0.0
        return row, 1.0 - silence


def speech_gain(speech: float) -> float:
    """How much of the read-out's mouth to show for a frame the front-end finds ``speech`` (1 − P(silence)) likely."""
    return float(np.clip((speech - SPEECH_RANGE[0]) / (SPEECH_RANGE[1] - SPEECH_RANGE[0]), 0.0, 1.0))


def readout_factory(model):
    """``() → ReadoutMouth`` for a talk model with a read-out (one buffer per session, the model shared), else None."""
    if model is None or getattr(model, "readout", None) is None:
        return None
    return lambda: ReadoutMouth(model)
