"""Named groups of mediapipe's 478 face landmarks, and the fit's per-landmark weights.

The index sets are mediapipe's own (``face_mesh_connections``: the points of
FACEMESH_FACE_OVAL, _LIPS, _LEFT/RIGHT_EYE, _EYEBROW, _NOSE), written out so
that fitting does not import mediapipe; a test checks them against mediapipe.
"""

from __future__ import annotations

import numpy as np

from splattalk.head.model import NUM_MEDIAPIPE_LANDMARKS

FACE_OVAL = (
    10,
    21,
    54,
    58,
    67,
    93,
    103,
    109,
    127,
    132,
    136,
    148,
    149,
    150,
    152,
    162,
    172,
    176,
    234,
    251,
    284,
    288,
    297,
    323,
    332,
    338,
    356,
    361,
    365,
    377,
    378,
    379,
    389,
    397,
    400,
    454,
)
LIPS = (
    0,
    13,
    14,
    17,
    37,
    39,
    40,
    61,
    78,
    80,
    81,
    82,
    84,
    87,
    88,
    91,
    95,
    146,
    178,
    181,
    185,
    191,
    267,
    269,
    270,
    291,
    308,
    310,
    311,
    312,
    314,
    317,
    318,
    321,
    324,
    375,
    402,
    405,
    409,
    415,
)
EYES = (
    7,
    33,
    133,
    144,
    145,
    153,
    154,
    155,
    157,
    158,
    159,
    160,
    161,
    163,
    173,
    246,
    249,
    263,
    362,
    373,
    374,
    380,
    381,
    382,
    384,
    385,
    386,
    387,
    388,
    390,
    398,
    466,
)
"""Both eyelid contours."""
BROWS = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107, 276, 282, 283, 285, 293, 295, 296, 300, 334, 336)
NOSE = (1, 2, 4, 5, 6, 19, 45, 48, 64, 94, 97, 98, 115, 168, 195, 197, 220, 275, 278, 294, 326, 327, 344, 440)
CHIN = (58, 136, 148, 149, 150, 152, 172, 176, 288, 365, 377, 378, 379, 397, 400)
"""The face-oval points below the mouth corners: the jaw line, which moves with the jaw."""
RIGHT_IRIS = tuple(range(468, 473))
"""Subject's right iris: centre 468, then four points on its rim."""
LEFT_IRIS = tuple(range(473, 478))
EYE_CORNERS = (33, 133, 362, 263)


def mediapipe_regions() -> dict[str, np.ndarray]:
    """Landmark indices per facial part."""

    def ids(values) -> np.ndarray:
        return np.array(sorted(values), dtype=np.int64)

    return {
        "contour": ids(set(FACE_OVAL) - set(CHIN)),
        "chin": ids(CHIN),
        "lips": ids(LIPS),
        "eyes": ids(EYES),
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
