"""Named groups of mediapipe's 478 face landmarks, and the fit's per-landmark weights."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from splattalk.head.model import NUM_MEDIAPIPE_LANDMARKS

CHIN = (58, 136, 148, 149, 150, 152, 172, 176, 288, 365, 377, 378, 379, 397, 400)
"""The face-oval points below the mouth corners: the jaw line, which moves with the jaw."""
RIGHT_IRIS = tuple(range(468, 473))
"""Subject's right iris: centre 468, then four points on its rim."""
LEFT_IRIS = tuple(range(473, 478))


@lru_cache(maxsize=1)
def mediapipe_regions() -> dict[str, np.ndarray]:
    """Landmark indices per facial part, from mediapipe's own face-mesh connection sets."""
    from mediapipe.python.solutions import face_mesh_connections as conn

    def points(*sets) -> np.ndarray:
        return np.array(sorted({i for s in sets for edge in s for i in edge}), dtype=np.int64)

    oval = points(conn.FACEMESH_FACE_OVAL)
    return {
        "contour": np.setdiff1d(oval, CHIN),
        "chin": np.array(CHIN, dtype=np.int64),
        "lips": points(conn.FACEMESH_LIPS),
        "eyes": points(conn.FACEMESH_LEFT_EYE, conn.FACEMESH_RIGHT_EYE),
        "iris": np.array(RIGHT_IRIS + LEFT_IRIS, dtype=np.int64),
        "brows": points(conn.FACEMESH_LEFT_EYEBROW, conn.FACEMESH_RIGHT_EYEBROW),
        "nose": points(conn.FACEMESH_NOSE),
    }


def landmark_weights(fit) -> np.ndarray:
    """Per-landmark weight [478] from a :class:`~splattalk.tracking.config.FitConfig`."""
    weights = np.full(NUM_MEDIAPIPE_LANDMARKS, fit.weight_other, dtype=np.float32)
    for name, ids in mediapipe_regions().items():
        weights[ids] = getattr(fit, f"weight_{name}")
    return weights


def stable_landmarks() -> np.ndarray:
    """Landmarks that expressions barely move (eye corners, nose, upper contour): for the rigid start."""
    regions = mediapipe_regions()
    return np.concatenate([regions["nose"], regions["contour"], [33, 133, 362, 263]])
