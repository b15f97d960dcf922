"""Accuracy figures of a fit against synthetic ground truth (the sample video's known parameters)."""

from __future__ import annotations

import numpy as np

from splattalk.run import PER_FRAME, Tracks
from splattalk.tracking.export import pose, posed_vertices


def similarity_align(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``source`` [V, 3] moved onto ``target`` [V, 3] by the best rotation, scale and translation (Umeyama)."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    s, t = source - mu_s, target - mu_t
    u, sing, vt = np.linalg.svd(t.T @ s)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    rot = u @ fix @ vt
    scale = (sing * np.diag(fix)).sum() / (s**2).sum()
    return scale * s @ rot.T + mu_t


def aligned_vertex_error(fit: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-frame mean vertex distance [T] after a per-frame similarity alignment. fit, truth: [T, V, 3]."""
    return np.array([np.linalg.norm(similarity_align(f, g) - g, axis=-1).mean() for f, g in zip(fit, truth)])


def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle [T] in degrees of the rotation between axis-angle vectors a [T, 3] and b [T, 3]."""
    import cv2

    out = np.empty(len(a))
    for i, (x, y) in enumerate(zip(a, b)):
        rel = cv2.Rodrigues(np.asarray(x, np.float64))[0].T @ cv2.Rodrigues(np.asarray(y, np.float64))[0]
        out[i] = np.degrees(np.arccos(np.clip((np.trace(rel) - 1) / 2, -1, 1)))
    return out


def jitter(vertices: np.ndarray) -> float:
    """Mean |acceleration| of the vertices [T, V, 3] (units per frame²)."""
    acc = vertices[2:] - 2 * vertices[1:-1] + vertices[:-2]
    return float(np.linalg.norm(acc, axis=-1).mean())


def evaluate(tracks: Tracks, truth: dict, model) -> dict:
    """Compare a run's ``tracks.npz`` with the sample video's ground truth ``sample_gt.npz``.

    The truth's camera is moved into the run's output frames through the crop
    (``tracks.crop``). Returns landmark errors in output pixels (fit vs truth,
    and mediapipe's raw detections vs truth as the baseline), the mean vertex
    error after a per-frame similarity alignment in % of the head's width, the jaw
    rotation error in degrees, and the jitter ratio (mean |acceleration| of the
    vertices in camera space, fit / truth).
    """
    num = len(tracks)
    x0, y0, side = (float(v) for v in tracks.crop)
    scale = float(tracks.width) / side
    to_out = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale], [0, 0, 1.0]])
    k_true = to_out @ truth["K"].astype(np.float64)

    v_fit, l_fit = posed_vertices(model, tracks)
    v_true, l_true = pose(model, truth["shape"], {k: truth[k][:num] for k in PER_FRAME})
    view_fit, k_fit = tracks.viewmat.astype(np.float64), tracks.K.astype(np.float64)
    view_true = truth["viewmat"].astype(np.float64)

    def project(points, view, K):
        cam = points @ view[:3, :3].T + view[:3, 3]
        return cam[..., :2] / cam[..., 2:3] * np.diag(K)[:2] + K[:2, 2], cam

    p_fit, _ = project(l_fit, view_fit, k_fit)
    p_true, _ = project(l_true, view_true, k_true)
    valid = tracks.valid.astype(bool)
    detected = tracks.landmarks2d[:, model.lmk_ids.numpy()].astype(np.float64)
    head_width = float(np.ptp(v_true[0, :, 0]))
    vertex_err = aligned_vertex_error(v_fit, v_true)
    jaw = rotation_angle_deg(tracks.jaw, truth["jaw"][:num])
    _, cam_fit = project(v_fit, view_fit, k_fit)
    _, cam_true = project(v_true, view_true, k_true)
    return {
        "frames": num,
        "landmark_px": float(np.linalg.norm(p_fit - p_true, axis=-1).mean()),
        "landmark_px_mediapipe": float(np.linalg.norm(detected[valid] - p_true[valid], axis=-1).mean()),
        "residual_px": float(np.linalg.norm(p_fit[valid] - detected[valid], axis=-1).mean()),
        "vertex_error_pct": float(vertex_err.mean() / head_width * 100),
        "vertex_error_pct_max": float(vertex_err.max() / head_width * 100),
        "jaw_deg_mean": float(jaw.mean()),
        "jaw_deg_p95": float(np.percentile(jaw, 95)),
        "jaw_deg_max": float(jaw.max()),
        "jitter_ratio": jitter(cam_fit) / jitter(cam_true) if num > 2 else float("nan"),
        "fov_deg_fit": float(np.degrees(2 * np.arctan(float(tracks.width) / (2 * k_fit[0, 0])))),
        "fov_deg_true": float(np.degrees(2 * np.arctan(float(tracks.width) / (2 * k_true[0, 0])))),
    }
