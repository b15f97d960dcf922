"""Eye openness and blinks from mediapipe's eyelid landmarks, and the same measure on a tracked mesh.

Openness of one eye is the mean lid gap of three upper/lower lid pairs over the eye's width (corner to corner),
an "eye aspect ratio": ~0.25–0.35 for an open eye seen from the front, under ~0.1 when it is closed. It is a
ratio of two image distances, so it does not depend on the image scale. The same mediapipe ids name the same
points on the tracked head (its embedded landmarks), which gives the tracked mesh's openness in the same units.

Blinks are short dips of the openness below the clip's own open level (:func:`find_blinks`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from splattalk.head.model import NUM_MEDIAPIPE_LANDMARKS

# (upper lid, lower lid) pairs and (outer, inner) corners, mediapipe ids; "right"/"left" are the subject's sides.
RIGHT_LID_PAIRS = ((160, 144), (159, 145), (158, 153))
RIGHT_CORNERS = (33, 133)
LEFT_LID_PAIRS = ((387, 373), (386, 374), (385, 380))
LEFT_CORNERS = (263, 362)
EYELID_COMPONENTS = ("blink_left", "blink_right")
"""Expression components (by name) that move the eyelids only; the fit gives them their own prior and smoothness.
FLAME's expression components are unnamed PCA directions that mix the lids with the rest of the face: none qualify."""
EYE_POINTS = tuple(
    sorted({i for pair in RIGHT_LID_PAIRS + LEFT_LID_PAIRS for i in pair} | {*RIGHT_CORNERS, *LEFT_CORNERS})
)
"""Every landmark the openness reads."""


def eyelid_components(model) -> np.ndarray:
    """Boolean mask [E] of ``model``'s expression components named in :data:`EYELID_COMPONENTS`."""
    names = getattr(model, "expr_names", None) or ()
    mask = np.zeros(model.num_expr, bool)
    for i, name in enumerate(names[: model.num_expr]):
        mask[i] = name in EYELID_COMPONENTS
    return mask


def eye_openness(points: np.ndarray) -> np.ndarray:
    """Openness [T, 2] (subject's left, right) from landmarks [T, 478, 2 or 3] (pixels; only x, y are used).

    Frames whose points are NaN give NaN."""
    points = np.asarray(points, np.float64)[..., :2]
    if points.ndim != 3 or points.shape[1] != NUM_MEDIAPIPE_LANDMARKS:
        raise ValueError(f"expected landmarks [T, {NUM_MEDIAPIPE_LANDMARKS}, 2], got {points.shape}")
    out = []
    for pairs, (outer, inner) in ((LEFT_LID_PAIRS, LEFT_CORNERS), (RIGHT_LID_PAIRS, RIGHT_CORNERS)):
        gap = np.mean([np.linalg.norm(points[:, a] - points[:, b], axis=-1) for a, b in pairs], axis=0)
        width = np.linalg.norm(points[:, outer] - points[:, inner], axis=-1)
        out.append(gap / np.maximum(width, 1e-9))
    return np.stack(out, -1)


def model_landmarks_478(model, landmarks: np.ndarray) -> np.ndarray:
    """A model's embedded landmarks [T, L, k] placed at their mediapipe ids: [T, 478, k], NaN where not embedded."""
    ids = model.lmk_ids.numpy() if hasattr(model.lmk_ids, "numpy") else np.asarray(model.lmk_ids)
    out = np.full((landmarks.shape[0], NUM_MEDIAPIPE_LANDMARKS, landmarks.shape[-1]), np.nan)
    out[:, ids] = landmarks
    return out


def tracked_openness(model, tracks) -> np.ndarray:
    """Openness [T, 2] of the tracked head in ``tracks`` (a :class:`splattalk.run.Tracks`), from its projected
    embedded landmarks. NaN columns when the model does not embed the eyelid landmarks."""
    from splattalk.tracking.export import posed_vertices  # lazy: torch

    _, landmarks = posed_vertices(model, tracks)
    view = tracks.viewmat.astype(np.float64)
    K = tracks.K.astype(np.float64)
    cam = landmarks @ view[:3, :3].T + view[:3, 3]
    pixels = cam[..., :2] / cam[..., 2:3] * np.diag(K)[:2] + K[:2, 2]
    return eye_openness(model_landmarks_478(model, pixels))


@dataclass(frozen=True)
class Blink:
    start: int
    """First frame below the threshold."""
    end: int
    """Last frame below the threshold (inclusive)."""
    deepest: int
    """Frame of the smallest openness."""
    depth: float
    """Openness at ``deepest`` as a fraction of the open level (0 = fully closed)."""


def open_level(openness: np.ndarray) -> float:
    """The clip's open-eye openness: the 75th percentile of the two eyes' mean (blinks are rare)."""
    mean = np.nanmean(np.asarray(openness, np.float64).reshape(len(openness), -1), axis=1)
    return float(np.nanpercentile(mean, 75))


def find_blinks(openness: np.ndarray, threshold: float = 0.6, max_frames: int = 15) -> list[Blink]:
    """Blinks in an openness curve [T, 2] (or [T]): runs of frames where both eyes' mean openness is below
    ``threshold`` × the clip's open level (:func:`open_level`), at most ``max_frames`` long (longer runs are eyes
    held shut or looking down, not blinks)."""
    openness = np.asarray(openness, np.float64)
    mean = np.nanmean(openness.reshape(len(openness), -1), axis=1)
    level = open_level(openness)
    below = np.nan_to_num(mean, nan=level) < threshold * level
    blinks = []
    t = 0
    while t < len(below):
        if not below[t]:
            t += 1
            continue
        end = t
        while end + 1 < len(below) and below[end + 1]:
            end += 1
        if end - t + 1 <= max_frames:
            deepest = t + int(np.argmin(mean[t : end + 1]))
            blinks.append(Blink(t, end, deepest, float(mean[deepest] / level)))
        t = end + 1
    return blinks


def match_blinks(truth: list[Blink], found: list[Blink], tolerance: int = 2) -> list[Blink | None]:
    """For each blink in ``truth``, the blink in ``found`` overlapping it (within ``tolerance`` frames), or None."""
    out = []
    for blink in truth:
        hits = [b for b in found if b.start <= blink.end + tolerance and b.end >= blink.start - tolerance]
        out.append(hits[0] if hits else None)
    return out
