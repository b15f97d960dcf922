"""mediapipe landmark groups of the face parts that matter most to a viewer (eyes and mouth), by landmark id.

The head models embed mediapipe's 478 landmarks, so these ids pick the same parts on the tracked mesh: the
face-region score (:mod:`.heldout`) and the head cut (:mod:`.headmask`) use them.
"""

from __future__ import annotations

RIGHT_EYE = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246, 468, 469, 470, 471, 472)
"""mediapipe's subject-right eyelid contour (FACEMESH_RIGHT_EYE) and iris."""
LEFT_EYE = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466, 473, 474, 475, 476, 477)
MOUTH = (
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
"""mediapipe's lip contours (FACEMESH_LIPS): the hull covers the lips and the mouth opening."""
FACE_PARTS = {"right_eye": RIGHT_EYE, "left_eye": LEFT_EYE, "mouth": MOUTH}
