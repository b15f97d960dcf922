"""Savitzky–Golay post-smoothing of motion, whole-sequence and incremental (same numbers).

ARTalk smooths every channel with window 5 / order 2 and the global rotation
with window 9 / order 3 (scipy's default ``interp`` edge mode: the first and
last half-window frames come from a polynomial fit to the first/last window).

A sequence shorter than a window is smoothed with the largest odd window that
fits (or not at all if that is not above the order). :class:`StreamSmoother`
gives the same frames as :func:`smooth_motion` on the whole sequence while
holding back only half the largest window (4 frames, 160 ms) and keeping a
bounded tail.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter

from splattalk.talk.config import TalkConfig


def _groups(cfg: TalkConfig) -> list[tuple[slice, int, int]]:
    E = cfg.expr_dim
    return [
        (slice(0, cfg.motion_dim), cfg.smooth_window, cfg.smooth_order),
        (slice(E, E + 3), cfg.pose_smooth_window, cfg.pose_smooth_order),
    ]


def _savgol(x: np.ndarray, window: int, order: int) -> np.ndarray:
    n = x.shape[0]
    w = min(window, n if n % 2 else n - 1)
    if w <= order:
        return x.copy()
    return savgol_filter(x, w, order, axis=0, mode="interp")


def smooth_motion(motion: np.ndarray, cfg: TalkConfig) -> np.ndarray:
    """Smooth ``motion: [T, D]`` as ARTalk does; later groups override earlier ones on shared channels."""
    out = np.array(motion, dtype=np.float64, copy=True)
    for channels, window, order in _groups(cfg):
        out[:, channels] = _savgol(np.asarray(motion, dtype=np.float64)[:, channels], window, order)
    return out.astype(np.float32)


class StreamSmoother:
    """Incremental :func:`smooth_motion`: push raw frames, get smoothed frames once they are final."""

    def __init__(self, cfg: TalkConfig):
        self.cfg = cfg
        self.span = max(cfg.smooth_window, cfg.pose_smooth_window)
        self.half = (self.span - 1) // 2
        self.tail = np.zeros((0, cfg.motion_dim), np.float32)
        self.tail_start = 0
        self.emitted = 0

    @property
    def seen(self) -> int:
        return self.tail_start + self.tail.shape[0]

    def push(self, frames: np.ndarray) -> np.ndarray:
        """Add raw frames ``[n, D]``; return the smoothed frames that no later frame can change."""
        self.tail = np.concatenate([self.tail, np.asarray(frames, np.float32)])
        if self.seen < self.span:
            return self.tail[:0]
        out = self._smoothed(self.emitted, self.seen - self.half)
        self._trim()
        return out

    def finish(self) -> np.ndarray:
        """The remaining frames, with the end-of-sequence edge fit."""
        if self.seen <= self.emitted:
            return self.tail[:0]
        if self.seen < self.span:  # the whole (short) sequence is still here
            out = smooth_motion(self.tail, self.cfg)[self.emitted - self.tail_start :]
            self.emitted = self.seen
            return out
        return self._smoothed(self.emitted, self.seen, at_end=True)

    def _smoothed(self, start: int, end: int, at_end: bool = False) -> np.ndarray:
        if end <= start:
            return self.tail[:0]
        lo = max(start - self.half, 0)
        if at_end:
            lo = min(lo, max(self.seen - self.span, 0))
        smoothed = smooth_motion(self.tail[lo - self.tail_start :], self.cfg)
        self.emitted = end
        return smoothed[start - lo : end - lo]

    def _trim(self) -> None:
        # Keep the left context of the next frame to emit, and the last `span` frames for the end fit.
        keep = max(min(self.emitted - self.half, self.seen - self.span), 0)
        if keep > self.tail_start:
            self.tail = self.tail[keep - self.tail_start :]
            self.tail_start = keep
