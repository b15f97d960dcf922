"""A stand-in motion source: the jaw follows the loudness of the speech.

Used when no talk model is available (the default model not shipped yet, or
``splattalk view --loudness-only``) and in tests that need deterministic,
visible mouth motion. It streams like ``talk.TalkStream`` (``push`` / ``finish``
returning ``[k, D]`` frames at 25 fps, ⌈S / 640⌉ frames in all) so the viewer
treats both alike. It is not lip-sync: one jaw channel, no visemes.
"""

from __future__ import annotations

import numpy as np

from splattalk.talk.config import SAMPLES_PER_FRAME

JAW_MAX_RAD = 0.30
"""Jaw opening at full loudness (about 17°)."""
REFERENCE_RMS = 0.12
"""Frame RMS that opens the jaw fully (speech normalised to a 0.9 peak sits around 0.1–0.2)."""


class LoudnessStream:
    """``push(chunk)`` → motion frames whose jaw opening follows each frame's RMS (attack instant, release ~80 ms)."""

    def __init__(self, motion_dim: int, open_channel: int | None = None):
        self.motion_dim = motion_dim
        self.open_channel = open_channel
        """Expression channel that parts the lips (the default head's ``mouth_open``), if any."""
        self.pending = np.zeros(0, np.float32)
        self.level = 0.0
        self.closed = False

    def push(self, chunk: np.ndarray) -> np.ndarray:
        self.pending = np.concatenate([self.pending, np.asarray(chunk, np.float32).reshape(-1)])
        n = self.pending.shape[0] // SAMPLES_PER_FRAME
        frames = self._frames(self.pending[: n * SAMPLES_PER_FRAME].reshape(n, SAMPLES_PER_FRAME))
        self.pending = self.pending[n * SAMPLES_PER_FRAME :]
        return frames

    def finish(self) -> np.ndarray:
        if self.closed:
            return np.zeros((0, self.motion_dim), np.float32)
        self.closed = True
        if self.pending.shape[0] == 0:
            return np.zeros((0, self.motion_dim), np.float32)
        last = np.zeros(SAMPLES_PER_FRAME, np.float32)
        last[: self.pending.shape[0]] = self.pending
        return self._frames(last[None])

    def _frames(self, blocks: np.ndarray) -> np.ndarray:
        out = np.zeros((blocks.shape[0], self.motion_dim), np.float32)
        e = self.motion_dim - 6
        rms = np.sqrt((blocks.astype(np.float64) ** 2).mean(axis=1)) if blocks.size else np.zeros(0)
        for i, r in enumerate(rms):
            target = min(1.0, float(r) / REFERENCE_RMS)
            self.level = target if target > self.level else 0.6 * self.level + 0.4 * target
            out[i, e + 3] = JAW_MAX_RAD * self.level
            if self.open_channel is not None:
                out[i, self.open_channel] = 0.6 * self.level
        return out


def mouth_open_channel(expr_names: tuple[str, ...] | None) -> int | None:
    if expr_names and "mouth_open" in expr_names:
        return expr_names.index("mouth_open")
    return None
