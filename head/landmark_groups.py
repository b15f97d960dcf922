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
EYE_SURROUND = (
    *(22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 56, 110, 112, 113, 117, 118, 119, 120, 121, 124, 128, 190),
    *(221, 222, 223, 224, 225, 228, 229, 230, 231, 232, 233, 244, 247),
    *(252, 253, 254, 255, 256, 257, 258, 259, 260, 261, 286, 339, 341, 342, 346, 347, 348, 349, 350, 414),
    *(441, 442, 443, 444, 445, 448, 449, 450, 451, 452, 453, 467),
)
"""The face-mesh points on the skin around the eyes, off the lid contours and brows: the two rings of mesh
around each eye and the upper-lid crease. mediapipe moves them about a third as far as the lids in a blink, while
the default head's blink component drags them with the lids (each moves more than 2 % of the eye's width at
``blink`` = 1), so the tracker weighs them little (:mod:`splattalk.tracking.regions`)."""
