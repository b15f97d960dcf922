"""Named groups of mediapipe's 478 face landmarks, by landmark id.

The index sets are mediapipe's own (``face_mesh_connections``: the points of FACEMESH_FACE_OVAL, _LIPS,
_LEFT/RIGHT_EYE, _EYEBROW, _NOSE, and the iris points), written out so that nothing here imports mediapipe (a
test checks them against it). The head models embed these landmarks, so the same ids name the same parts on a
tracked mesh: the tracker weights them (:mod:`splattalk.tracking.regions`), the avatar scores and cuts by them
(:mod:`splattalk.avatar.face_parts`).
"""

from __future__ import annotations

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
RIGHT_EYE_CONTOUR = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246)
"""Subject's right eyelid contour (FACEMESH_RIGHT_EYE)."""
LEFT_EYE_CONTOUR = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
"""Subject's left eyelid contour (FACEMESH_LEFT_EYE)."""
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
