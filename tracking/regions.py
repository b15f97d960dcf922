"""The fit's landmark groups and per-landmark weights.

The index sets themselves are mediapipe's, kept once in :mod:`splattalk.head.landmark_groups` (the avatar uses
them too); a test checks them against mediapipe.
"""

from __future__ import annotations

import numpy as np

from splattalk.head.landmark_groups import (
    BROWS,
    CHIN,
    EYE_CORNERS,
    EYE_SURROUND,
    EYES,
    FACE_OVAL,
    LEFT_IRIS,
    LIPS,
    NOSE,
    RIGHT_IRIS,
)
from splattalk.head.model import NUM_MEDIAPIPE_LANDMARKS


def mediapipe_regions() -> dict[str, np.ndarray]:
    """Landmark indices per facial part."""

    def ids(values) -> np.ndarray:
        return np.array(sorted(values), dtype=np.int64)

    return {
        "contour": ids(set(FACE_OVAL) - set(CHIN)),
        "chin": ids(CHIN),
        "lips": ids(LIPS),
        "eyes": ids(EYES),
        "eye_surround": ids(EYE_SURROUND),
        "iris": ids(RIGHT_IRIS + LEFT_IRIS),
        "brows": ids(BROWS),
        "nose": ids(NOSE),
    }


def landmark_weights(fit) -> np.ndarray:
    """Per-landmark weight [478] from a :class:`~splattalk.tracking.config.FitConfig`."""
    weights = np.full(NUM_MEDIAPIPE_LANDMARKS, fit.weight_other, dtype=np.float32)
    for name, ids in mediapipe_regions().items():
        weights[ids] = getattr(fit, f"weight_{name}")
    return weights


def stable_landmarks() -> np.ndarray:
    """Landmarks that expressions barely move (nose, upper contour, eye corners): for the rigid start."""
    regions = mediapipe_regions()
    return np.concatenate([regions["nose"], regions["contour"], EYE_CORNERS])
