"""Foreground matte (person vs background) per frame, from mediapipe's selfie segmentation.

The mediapipe wheel ships ``selfie_segmentation.tflite`` (square 256×256 input,
the "general" model) and runs it offline. It separates the whole person
(head, hair, neck, shoulders) from the background, which is what the avatar
fit needs. The soft output is kept as 8-bit alpha.
"""

from __future__ import annotations

import numpy as np


class Matter:
    """A mediapipe selfie-segmentation graph (state), hence a class."""

    def __init__(self):
        import mediapipe as mp  # lazy: mediapipe is slow to import; only matting needs it

        self._graph = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Alpha [H, W] uint8 (255 = person) of an RGB frame [H, W, 3]."""
        mask = self._graph.process(image).segmentation_mask
        if mask is None:
            return np.zeros(image.shape[:2], np.uint8)
        return (np.clip(mask, 0, 1) * 255 + 0.5).astype(np.uint8)

    def close(self) -> None:
        self._graph.close()
