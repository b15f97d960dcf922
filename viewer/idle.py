"""Idle motion: what the avatar does while nothing plays — blinks and a small head sway.

A pure function of time (and a seed), so every session animates smoothly
without state and tests can check it exactly.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

BLINK_SECONDS = 0.18
"""Duration of one blink (close and open)."""
BLINK_INTERVAL = (2.5, 5.5)
"""Range of the pause between blinks, seconds."""
SWAY_DEG = (1.2, 1.8, 0.8)
"""Amplitude of the sway about x (nod), y (turn) and z (roll), degrees."""
SWAY_PERIODS = ((7.3, 11.9), (9.1, 13.7), (8.3, 17.1))
"""Two incommensurate periods (s) per axis: the sway never visibly repeats."""


@lru_cache(maxsize=8)
def blink_times(seed: int, until: float) -> np.ndarray:
    """Start times (s) of the blinks in [0, until)."""
    rng = np.random.default_rng(seed)
    n = int(until / BLINK_INTERVAL[0]) + 2
    gaps = rng.uniform(*BLINK_INTERVAL, size=n)
    starts = np.cumsum(gaps) - gaps[0] + 1.0
    return starts[starts < until]


def blink_amount(t: float, seed: int = 0) -> float:
    """Eyelid closure in [0, 1] at time ``t`` (s): a raised-cosine pulse per blink."""
    period = 600.0  # blink schedule repeats every 10 minutes
    tau = t % period
    starts = blink_times(seed, period)
    k = np.searchsorted(starts, tau, side="right") - 1
    if k < 0:
        return 0.0
    phase = (tau - starts[k]) / BLINK_SECONDS
    return float(0.5 - 0.5 * np.cos(2 * np.pi * phase)) if 0.0 <= phase <= 1.0 else 0.0


def idle_motion(t: float, motion_dim: int, blink_ids: tuple[int, ...] = (), seed: int = 0) -> np.ndarray:
    """One motion row ``[D]`` (expression, rotation, jaw) for time ``t`` seconds.

    ``blink_ids``: expression channels that close the eyes (empty for heads
    without named blinks, e.g. FLAME: then only the head sways).
    """
    row = np.zeros(motion_dim, np.float32)
    e = motion_dim - 6
    closure = blink_amount(t, seed)
    for i in blink_ids:
        row[i] = closure
    for axis, (amp, (p1, p2)) in enumerate(zip(SWAY_DEG, SWAY_PERIODS)):
        phase = 2 * np.pi * (t / p1 + 0.3 * axis) + seed
        row[e + axis] = np.radians(amp) * (0.7 * np.sin(phase) + 0.3 * np.sin(2 * np.pi * t / p2 + axis))
    return row


def blink_channels(expr_names: tuple[str, ...] | None) -> tuple[int, ...]:
    """Indices of the blink expressions of a head model (by name), if it names them."""
    if not expr_names:
        return ()
    return tuple(i for i, name in enumerate(expr_names) if name.startswith("blink"))
