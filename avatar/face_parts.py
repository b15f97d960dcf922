"""mediapipe landmark groups of the face parts that matter most to a viewer (eyes and mouth), by landmark id.

The head models embed mediapipe's 478 landmarks, so these ids pick the same parts on the tracked mesh: the
face-region score (:mod:`.heldout`) and the head cut (:mod:`.headmask`) use them.
"""

from __future__ import annotations

from splattalk.head.landmark_groups import LEFT_EYE_CONTOUR, LEFT_IRIS, LIPS, RIGHT_EYE_CONTOUR, RIGHT_IRIS

RIGHT_EYE = RIGHT_EYE_CONTOUR + RIGHT_IRIS
"""mediapipe's subject-right eyelid contour and iris."""
LEFT_EYE = LEFT_EYE_CONTOUR + LEFT_IRIS
MOUTH = LIPS
"""mediapipe's lip contours (FACEMESH_LIPS): the hull covers the lips and the mouth opening."""
FACE_PARTS = {"right_eye": RIGHT_EYE, "left_eye": LEFT_EYE, "mouth": MOUTH}
