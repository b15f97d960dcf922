"""Configuration of the tracking stage (light: no torch/mediapipe at import, so ``--help`` is instant)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

OUTPUT_FPS = 25.0
"""Frame rate of every run folder: the motion model and the avatar both work at 25 fps."""


@dataclass(frozen=True)
class LandmarkFitConfig:
    """Landmark fitting: robust reprojection loss + priors + temporal smoothness,
    Levenberg–Marquardt over all frames."""

    iterations: int = 8
    """Levenberg–Marquardt iterations of the joint stage (all parameters); a third of that after each offsets update."""
    rigid_iterations: int = 5
    """Iterations of the first stage (pose, focal, identity on the stable landmarks; expressions at zero)."""
    sigma_px: float = 3.0
    """Scale of the robust (pseudo-Huber) landmark loss in output pixels: residuals far above it count linearly."""
    weight_contour: float = 0.3
    """Face-oval landmarks above the mouth: mediapipe places them least reliably."""
    weight_chin: float = 1.0
    """Chin and jaw-line part of the oval: it carries the jaw opening."""
    weight_lips: float = 2.0
    weight_eyes: float = 2.0
    """Eyelid landmarks (blinks, squints)."""
    weight_eye_surround: float = 0.1
    """The skin around the eyes off the lid contours (:data:`splattalk.head.landmark_groups.EYE_SURROUND`): at
    ``weight_other`` these points held the tracked lids half open in a blink (docs/tracking.md, "Blinks")."""
    weight_iris: float = 1.0
    """Iris landmarks: they only move the eye rotations."""
    weight_brows: float = 1.0
    weight_nose: float = 1.0
    weight_other: float = 0.5
    """The dense remaining face-mesh points (cheeks, forehead), which mediapipe infers from the rest."""
    shape_prior: float = 0.02
    """L2 prior on identity coefficients (against the per-frame mean of the per-landmark pixel loss)."""
    expr_prior: float = 1.0
    """L2 prior on expression coefficients (10× on negative values: components are one-sided activations)."""
    eyelid_prior: float = 0.03
    """``expr_prior`` for the eyelid components (blink, squint, eyes_wide on a head that names them,
    :data:`splattalk.tracking.eyes.EYELID_COMPONENTS`): with the general prior a real blink closed the tracked
    lids only a third of the way (docs/tracking.md, "Blinks")."""
    eyelid_range: float = 10.0
    """Penalty on eyelid components above 1.0 (fully closed; past it the lids would cross), per unit²."""
    jaw_prior: float = 0.2
    """L2 prior on jaw rotation (radians); sideways/twist components and closing past rest get 50× this."""
    eyes_prior: float = 0.5
    """L2 prior on eye rotations (radians) and 10× on the left/right difference (vergence)."""
    offset_prior: float = 0.3
    """L2 prior (mean over landmarks, per mm²) on static per-landmark offsets: identity detail beyond the
    shape space, which absorbs how mediapipe sees this face so that expressions stay dynamic. 0 = none."""
    offset_rounds: int = 1
    """Alternations between the offsets and the other parameters."""
    focal_prior: float = 0.05
    """Prior on log focal length around the starting field of view (0 = free)."""
    smooth_rotation: float = 10.0
    """Penalty on head-rotation acceleration, per (degree/frame²)²."""
    smooth_translation: float = 4.0
    """Penalty on head-translation acceleration, per (mm/frame²)²."""
    smooth_jaw: float = 0.01
    """Penalty on jaw-rotation acceleration, per (degree/frame²)² (speech moves the jaw fast)."""
    smooth_eyes: float = 0.001
    """Penalty on eye-rotation acceleration, per (degree/frame²)² (saccades are fast)."""
    smooth_expr: float = 0.5
    """Penalty on expression-coefficient acceleration."""
    smooth_eyelids: float = 0.0
    """``smooth_expr`` for the eyelid components: a blink closes and reopens in 2–5 frames at 25 fps, which an
    acceleration penalty flattens; the lid landmarks themselves are steady enough."""
    velocity_fraction: float = 0.1
    """Velocity penalty, as a fraction of the acceleration penalty of each group."""
    chunk_frames: int = 1500
    """Frames optimised jointly; longer videos are fitted in overlapping chunks (identity shared)."""


@dataclass(frozen=True)
class TrackConfig:
    """Video → per-frame head-model parameters and one fixed camera (see shared/DESIGN.md, run folder)."""

    head: Literal["auto", "default", "flame2020", "flame2023"] = "auto"
    """Head model: the built-in default head, or FLAME from $SPLATTALK_ASSETS
    (auto: FLAME 2023/2020 if found with its mediapipe embedding, else default)."""
    size: int = 512
    """Side of the square output frames (pixels)."""
    fps: float = OUTPUT_FPS
    """Output frame rate: videos are resampled by timestamps; a folder of images is taken as frames at this rate."""
    max_seconds: float | None = None
    """Only use the first this many seconds of the video."""
    crop_scale: float = 2.0
    """Crop side as a multiple of the face size (landmark extent), before covering the head's range of motion."""
    crop_up: float = 0.15
    """Shift of the crop centre upwards, in face sizes (room for the hair)."""
    min_face_px: int = 40
    """Faces narrower than this (landmark extent, source pixels) are refused: too little detail for an avatar.
    Faces from ~60 px up that mediapipe's face mesh misses are found by its full-range detector and tracked
    on an upscaled region; detections below ~60 px do not happen, which is reported as no face."""
    min_face_fraction: float = 0.5
    """Fail when fewer than this fraction of frames have a face; the others are interpolated."""
    max_faces: int = 4
    """How many faces mediapipe looks for per frame; the largest is tracked."""
    fov_deg: float | None = None
    """Field of view along the source's longer side, in degrees, if known (then fixed);
    else estimated from the motion, starting from 55° (a phone's main camera)."""
    jpeg_quality: int = 95
    """Quality of the written frames."""
    masks: bool = True
    """Write foreground mattes (mediapipe selfie segmentation) to RUN/masks."""
    overlay: bool = True
    """Write RUN/tracking/overlay.mp4 (frame + mesh wireframe + landmarks) for checking the fit."""
    fit: LandmarkFitConfig = field(default_factory=LandmarkFitConfig)
    """Landmark fitting settings."""
