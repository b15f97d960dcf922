"""Lip-sync metrics on head-model vertices: LVE, FDD, MOD (as ARTalk reports them).

All take vertex sequences ``[T, V, 3]`` (prediction and ground truth, same
head and identity) plus index sets of the region they measure, and return one
number in display units. Vertices are in metres (FLAME and our default head);
ARTalk's tables (after DiffPoseTalk) print LVE and MOD in millimetres and FDD in
units of 10⁻⁵ m — the ``scale`` defaults produce exactly those units.

* **LVE**, lip vertex error (MeshTalk / FaceFormer): per frame the largest L2
  distance between a predicted and a true lip vertex, averaged over frames.
* **FDD**, upper-face dynamics deviation (CodeTalker): for each upper-face
  vertex, dyn = standard deviation over time of its L2 displacement from the
  neutral template; FDD = mean over those vertices of dyn(truth) − dyn(pred).
  Signed, as defined: positive when the prediction moves less than the truth.
* **MOD**, mouth opening difference (DiffPoseTalk): per frame the mouth opening
  = largest distance between paired upper-lip and lower-lip vertices (the
  pairing ARTalk's authors use in their evaluation code); MOD = mean over frames
  of |opening(pred) − opening(truth)|.
"""

from __future__ import annotations

import numpy as np

MM = 1000.0
"""metres → millimetres (LVE, MOD)."""
E5 = 1e5
"""metres → units of 10⁻⁵ m (FDD)."""


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.ndim != 3 or pred.shape[-1] != 3 or pred.shape != gt.shape:
        raise ValueError(f"expected two [T, V, 3] vertex arrays of the same shape, got {pred.shape} and {gt.shape}")
    if pred.shape[0] == 0:
        raise ValueError("empty sequences")
    return pred, gt


def lip_vertex_error(pred: np.ndarray, gt: np.ndarray, lip_idx, scale: float = MM) -> float:
    """LVE: mean over frames of max over ``lip_idx`` of ‖pred − gt‖₂ (``pred, gt: [T, V, 3]``)."""
    pred, gt = _pair(pred, gt)
    idx = np.asarray(lip_idx, np.int64)
    dist = np.linalg.norm(pred[:, idx] - gt[:, idx], axis=-1)  # [T, |lip|]
    return float(dist.max(axis=1).mean() * scale)


def upper_face_dynamics_deviation(
    pred: np.ndarray, gt: np.ndarray, upper_idx, template: np.ndarray, scale: float = E5
) -> float:
    """FDD: mean over ``upper_idx`` of std_t ‖gt − template‖ − std_t ‖pred − template‖ (``template: [V, 3]``)."""
    pred, gt = _pair(pred, gt)
    idx = np.asarray(upper_idx, np.int64)
    template = np.asarray(template, np.float64)[idx]
    dyn_gt = np.linalg.norm(gt[:, idx] - template, axis=-1).std(axis=0)
    dyn_pred = np.linalg.norm(pred[:, idx] - template, axis=-1).std(axis=0)
    return float((dyn_gt - dyn_pred).mean() * scale)


def mouth_opening(vertices: np.ndarray, upper_lip_idx, lower_lip_idx) -> np.ndarray:
    """Per-frame opening ``[T]``: max over pairs i of ‖v[upper_i] − v[lower_i]‖ (``vertices: [T, V, 3]``)."""
    up, lo = np.asarray(upper_lip_idx, np.int64), np.asarray(lower_lip_idx, np.int64)
    if up.shape != lo.shape:
        raise ValueError(f"upper and lower lip index lists must pair up ({up.shape} vs {lo.shape})")
    v = np.asarray(vertices, np.float64)
    return np.linalg.norm(v[:, up] - v[:, lo], axis=-1).max(axis=1)


def mouth_opening_difference(
    pred: np.ndarray, gt: np.ndarray, upper_lip_idx, lower_lip_idx, scale: float = MM
) -> float:
    """MOD: mean over frames of |opening(pred) − opening(gt)|."""
    pred, gt = _pair(pred, gt)
    diff = mouth_opening(pred, upper_lip_idx, lower_lip_idx) - mouth_opening(gt, upper_lip_idx, lower_lip_idx)
    return float(np.abs(diff).mean() * scale)


def lipsync_metrics(pred: np.ndarray, gt: np.ndarray, template: np.ndarray, regions: dict) -> dict[str, float]:
    """All three, with ``regions`` holding ``lips``, ``upper_face``, ``upper_lip`` and ``lower_lip`` index arrays."""
    return {
        "LVE": lip_vertex_error(pred, gt, regions["lips"]),
        "FDD": upper_face_dynamics_deviation(pred, gt, regions["upper_face"], template),
        "MOD": mouth_opening_difference(pred, gt, regions["upper_lip"], regions["lower_lip"]),
    }


# ---- mouth opening over time against real (tracked) mouths --------------------------------------
#
# The real-speech benchmark (scripts/eval_real_lipsync.py) compares one number per frame — how far the
# lips are apart — between a model and the tracked truth: the correlation over time, allowing a small
# audio/video offset, and whether the mouth is closed where the real one is.


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two ``[T]`` sequences (NaN frames left out; NaN if either is constant)."""
    a, b = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"sequences of different lengths: {a.shape[0]} and {b.shape[0]}")
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 2:
        return float("nan")
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


def lagged_pearson(pred: np.ndarray, truth: np.ndarray, max_lag: int = 2, centre: int = 0) -> tuple[float, int]:
    """The best Pearson r of ``pred: [T]`` against ``truth: [T]`` over lags centre−max_lag…centre+max_lag frames,
    and that lag.

    Lag ``k > 0`` pairs ``pred[t]`` with ``truth[t + k]`` (the prediction leads the truth by k frames); only the
    overlapping frames are compared, so every lag sees T − |k| frames. ``centre`` is a known offset between the
    two (a clip whose audio and video are out of sync, :func:`av_offset`); ties go to the lag nearest it.
    """
    pred, truth = np.asarray(pred, np.float64).reshape(-1), np.asarray(truth, np.float64).reshape(-1)
    if pred.shape != truth.shape:
        raise ValueError(f"sequences of different lengths: {pred.shape[0]} and {truth.shape[0]}")
    reach = abs(centre) + max_lag
    if max_lag < 0 or len(pred) <= 2 * reach + 1:
        raise ValueError(
            f"need more than {2 * reach + 1} frames for a lag search of {centre:+d} ±{max_lag}, got {len(pred)}"
        )
    best = (float("nan"), centre)
    for k in range(centre - max_lag, centre + max_lag + 1):
        p, t = (pred[: len(pred) - k], truth[k:]) if k >= 0 else (pred[-k:], truth[: len(truth) + k])
        r = pearson(p, t)
        if np.isfinite(r) and (
            not np.isfinite(best[0]) or r > best[0] or (r == best[0] and abs(k - centre) < abs(best[1] - centre))
        ):
            best = (r, k)
    return best


def av_offset(audio_signal: np.ndarray, mouth: np.ndarray, search: int = 8) -> tuple[int, float]:
    """A clip's audio/video offset in frames, found without any model: the lag within ±``search`` at which the
    loudness envelope ``audio_signal: [T]`` best correlates with the tracked mouth opening ``mouth: [T]`` (as
    :func:`lagged_pearson` reports lags: negative when the video's mouth moves before its sound), and that r.
    A source whose sound was muxed late shows here as a large negative offset; speech itself (lips part a
    little before the sound) accounts for 0 to −1 frame on the synchronised clips we have. A best lag at the
    edge of the search is no peak (a short clip's loudness wanders): then the offset is 0."""
    r, lag = lagged_pearson(audio_signal, mouth, search)
    if abs(lag) == search:  # still rising at the edge: no peak found within the search, so no offset claimed
        return 0, pearson(audio_signal, mouth)
    return lag, r


def shifted(x: np.ndarray, lag: int) -> np.ndarray:
    """``x: [T]`` moved so that it lines up with the truth at ``lag`` (as :func:`lagged_pearson` reports it):
    ``out[t + lag] = x[t]``, edges held."""
    x = np.asarray(x)
    return x[np.clip(np.arange(len(x)) - lag, 0, len(x) - 1)]


def closed_agreement(pred_closed: np.ndarray, true_closed: np.ndarray) -> tuple[float, int]:
    """Of the frames where the real lips are together (``true_closed: [T]`` bool), the fraction where the
    prediction's are too (``pred_closed: [T]`` bool); and how many such frames there were (NaN fraction if none)."""
    pred_closed, true_closed = np.asarray(pred_closed, bool), np.asarray(true_closed, bool)
    if pred_closed.shape != true_closed.shape:
        raise ValueError(f"sequences of different lengths: {pred_closed.shape} and {true_closed.shape}")
    n = int(true_closed.sum())
    return (float((pred_closed & true_closed).sum() / n) if n else float("nan")), n


def loudness_envelope(audio: np.ndarray, frames: int, sample_rate: int = 16_000, fps: int = 25) -> np.ndarray:
    """The RMS of ``audio: [S]`` in each of ``frames`` motion frames ``[T]`` (frame i covers samples
    i·rate/fps … (i+1)·rate/fps; audio missing past the end counts as silence): the loudness baseline."""
    hop = sample_rate // fps
    x = np.zeros(frames * hop, np.float64)
    m = min(len(audio), len(x))
    x[:m] = np.asarray(audio, np.float64).reshape(-1)[:m]
    return np.sqrt((x.reshape(frames, hop) ** 2).mean(axis=1))
