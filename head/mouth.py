"""How far the lips are apart: the inner-lip gap of a posed head, and the same measure on mediapipe landmarks.

The gap is measured between mediapipe face-mesh points (so it reads any head model that embeds
mediapipe's landmarks: the default head, whose face *is* mediapipe's mesh, and FLAME with its
mediapipe embedding), normalised by the outer eye-corner distance (landmarks 33/263) so that it
does not depend on the face's size or the camera's distance.

* :func:`mouth_gap` — on a head model posed with expression + jaw (no head rotation: the gap is
  taken along the head's own up axis, ``+y``). Per inner-lip pair (upper, lower) the vertical
  separation ``(upper − lower)·y`` is averaged over the central :data:`INNER_LIP_PAIRS` and clipped
  at 0: lips that press into each other are closed, not "negatively open". Reading the posed
  vertices (rather than the jaw angle or the ``mouth_open`` coefficient alone) counts every way the
  model can part or close the lips — jaw, ``mouth_open``, ``lips_press``, rolls, funnel — with the
  geometry a viewer sees.
* :func:`landmark_gap` — on mediapipe's detected landmarks (2D image points), the check the
  issue's figures were measured with: ``|p13 − p14| / |p33 − p263|``.
"""

from __future__ import annotations

import numpy as np

INNER_LIP_PAIRS = ((13, 14), (82, 87), (312, 317), (81, 178), (311, 402))
"""mediapipe inner-lip landmarks (upper, lower) around the mouth's centre; on the default head each pair
coincides with the mouth closed."""
EYE_CORNERS = (33, 263)
"""mediapipe outer eye corners (subject's right, left): the face-size reference."""
UP = np.array([0.0, 1.0, 0.0])
"""The head's up axis in model coordinates (FLAME and the default head: y up)."""


def _columns(lmk_ids: np.ndarray, wanted) -> np.ndarray:
    """Positions in a model's landmark array of the mediapipe ids ``wanted``."""
    lmk_ids = np.asarray(lmk_ids, np.int64)
    where = {int(k): i for i, k in enumerate(lmk_ids)}
    missing = [int(w) for w in wanted if int(w) not in where]
    if missing:
        raise ValueError(f"the head model does not embed mediapipe landmarks {missing}: it cannot measure the lip gap")
    return np.array([where[int(w)] for w in wanted], np.int64)


def gap_from_landmarks3d(landmarks: np.ndarray, lmk_ids: np.ndarray) -> np.ndarray:
    """``landmarks: [T, L, 3]`` in head coordinates (no head rotation), ``lmk_ids: [L]`` their mediapipe ids →
    the normalised inner-lip gap ``[T]`` (≥ 0)."""
    landmarks = np.asarray(landmarks, np.float64)
    upper = _columns(lmk_ids, [u for u, _ in INNER_LIP_PAIRS])
    lower = _columns(lmk_ids, [lo for _, lo in INNER_LIP_PAIRS])
    eyes = _columns(lmk_ids, EYE_CORNERS)
    vertical = ((landmarks[:, upper] - landmarks[:, lower]) @ UP).mean(axis=1)
    eye = np.linalg.norm(landmarks[:, eyes[0]] - landmarks[:, eyes[1]], axis=-1)
    return np.clip(vertical, 0.0, None) / eye


def mouth_gap(
    model,
    expr: np.ndarray,
    jaw: np.ndarray,
    shape: np.ndarray | None = None,
    static_offset: np.ndarray | None = None,
    batch: int = 256,
) -> np.ndarray:
    """The normalised inner-lip gap ``[T]`` of ``model`` (a :class:`~splattalk.head.model.HeadModel`) posed with
    ``expr: [T, E]`` and ``jaw: [T, 3]`` (axis-angle) for the identity ``shape: [S]`` (+ ``static_offset: [V, 3]``
    added to the template, as the tracker writes it); head rotation, neck and eyes stay at zero."""
    import torch  # lazily: keeps `splattalk --help` fast

    expr, jaw = np.asarray(expr, np.float32), np.asarray(jaw, np.float32)
    if expr.ndim != 2 or jaw.ndim != 2 or jaw.shape[1] != 3 or len(expr) != len(jaw):
        raise ValueError(f"expected expr [T, E] and jaw [T, 3] of the same length, got {expr.shape} and {jaw.shape}")
    offset = None
    if static_offset is not None and np.any(static_offset):
        offset = torch.as_tensor(np.asarray(static_offset, np.float32))
    lmk_ids = model.lmk_ids.cpu().numpy()
    out = []
    with torch.no_grad():
        for i in range(0, len(expr), batch):
            e, j = torch.as_tensor(expr[i : i + batch]), torch.as_tensor(jaw[i : i + batch])
            s = None if shape is None else torch.as_tensor(np.asarray(shape, np.float32))
            if offset is None:
                lm = model(shape=s, expr=e, jaw=j).landmarks
            else:
                lm = _with_offset(model, offset, s, e, j)
            out.append(gap_from_landmarks3d(lm.cpu().numpy(), lmk_ids))
    return np.concatenate(out) if out else np.zeros(0)


def _with_offset(model, offset, shape, expr, jaw):
    """Landmarks of ``model`` whose template carries ``offset`` (the tracker's per-vertex identity detail)."""
    template = model.v_template
    try:
        model.v_template = template + offset.to(template)
        return model(shape=shape, expr=expr, jaw=jaw).landmarks
    finally:
        model.v_template = template


def landmark_gap(points: np.ndarray) -> np.ndarray:
    """mediapipe landmarks ``points: [T, 478, D]`` (image or 3D) → ``|p13 − p14| / |p33 − p263|`` ``[T]``
    (NaN where a frame's landmarks are missing)."""
    p = np.asarray(points, np.float64)
    gap = np.linalg.norm(p[:, 13] - p[:, 14], axis=-1)
    eye = np.linalg.norm(p[:, EYE_CORNERS[0]] - p[:, EYE_CORNERS[1]], axis=-1)
    return gap / eye
