"""Temporal helpers: filling frames without a detection, smoothing 1-D signals over time."""

from __future__ import annotations

import numpy as np


def interpolate_missing(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Linear interpolation over time of the frames where ``valid`` [T] is False.

    values: [T, ...]; frames before the first / after the last valid one hold
    its value. Returns a new array; all-invalid input is returned unchanged.
    """
    values = np.array(values, dtype=np.float64, copy=True)
    valid = np.asarray(valid, bool)
    if valid.all() or not valid.any():
        return values
    times = np.arange(len(values))
    flat = values.reshape(len(values), -1)
    for column in range(flat.shape[1]):
        flat[~valid, column] = np.interp(times[~valid], times[valid], flat[valid, column])
    return flat.reshape(values.shape)


def gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian filter along the first axis (edges reflected). values: [T, ...]; sigma in frames."""
    values = np.asarray(values, dtype=np.float64)
    if sigma <= 0 or len(values) < 2:
        return values.copy()
    half = int(np.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(
        values, [(half, half)] + [(0, 0)] * (values.ndim - 1), mode="reflect" if len(values) > half else "edge"
    )
    out = np.zeros_like(values)
    for i, k in enumerate(kernel):
        out += k * padded[i : i + len(values)]
    return out
