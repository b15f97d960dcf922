"""Live tracking: one webcam frame at a time → head-model parameters, fast enough to puppeteer an avatar.

The offline tracker (:mod:`~splattalk.tracking.run`) fits a whole clip at once. Here
frames arrive one by one and only the newest matters, so each frame gets

1. mediapipe's face mesh in its tracking mode (``static_image_mode=False``: after
   the first detection it follows the face from the previous frame's landmarks,
   ~3 ms at 320 px on one core instead of a detection every frame);
2. the landmark fit of :mod:`~splattalk.tracking.fit` on that one frame, with the
   identity shape given (the avatar's) and the camera fixed, warm-started from the
   previous frame's result (the first frame starts from PnP), and a few
   Levenberg–Marquardt iterations;
3. a One-Euro filter on the parameters: still faces stay still, fast motion
   (speech) is followed with little lag.

:class:`LiveTracker` holds that state for one stream (one browser tab); it is
what ``splattalk view`` hands the viewer as its "Mirror me" tracker.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from splattalk.camera import focal_from_fov
from splattalk.head.params import HeadParams
from splattalk.tracking.config import LandmarkFitConfig
from splattalk.tracking.fit import IRIS, SOLVER_GROUPS, Problem
from splattalk.tracking.landmark_model import LandmarkModel
from splattalk.tracking.regions import landmark_weights, stable_landmarks


@dataclass(frozen=True)
class LiveTrackConfig:
    """Settings of the live (per-frame) tracker."""

    fov_deg: float = 60.0
    """Field of view along the frame's longer side (a laptop webcam's is 55–70°)."""
    iterations: int = 1
    """Levenberg–Marquardt iterations per frame (all parameters). Warm-started from the previous frame, one is
    enough: on the sample video 2 gave jaw r 0.843 against the rendered jaw vs 0.836 for 1, at 1.45× the time."""
    first_rigid_iterations: int = 5
    """Pose-only iterations on the first frame after a face is (re)found."""
    min_cutoff_hz: float = 3.0
    """One-Euro filter: cut-off frequency of a still face (lower: steadier, more lag)."""
    beta: float = 0.3
    """One-Euro filter: how fast the cut-off rises with speed (higher: less lag in fast motion)."""
    fit: LandmarkFitConfig = dataclasses.field(default_factory=LandmarkFitConfig)
    """Priors and landmark weights (the offline tracker's)."""


class OneEuro:
    """One-Euro filter (Casiez et al. 2012) on a vector: a low-pass whose cut-off rises with the speed."""

    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None
        self.t = 0.0

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filtered ``x [K]`` at time ``t`` (seconds)."""
        x = np.asarray(x, np.float64)
        if self.x is None or t <= self.t:
            self.x, self.dx, self.t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self.t
        dx = (x - self.x) / dt
        self.dx = self.dx + self._alpha(self.d_cutoff, dt) * (dx - self.dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx)
        self.x = self.x + self._alpha(cutoff, dt) * (x - self.x)
        self.t = t
        return self.x.copy()

    def reset(self) -> None:
        self.x = self.dx = None


class LiveTracker:
    """One stream's tracker: ``tracker(rgb [H, W, 3] uint8, t seconds)`` → :class:`HeadParams` (one frame) or None.

    ``model`` is the avatar's head model (mediapipe-embedded: the default head or FLAME with its embedding),
    ``shape [S]`` its identity. Not thread-safe: one stream, one thread.
    """

    def __init__(self, model, shape, cfg: LiveTrackConfig = LiveTrackConfig()):
        import mediapipe as mp  # lazy: slow to import

        self.cfg = cfg
        self.lm = LandmarkModel(model)
        self.lmk_ids = model.lmk_ids.numpy()
        self.shape = np.asarray(shape, np.float64).reshape(-1)
        if self.shape.shape[0] != self.lm.num_shape:
            raise ValueError(
                f"identity shape has {self.shape.shape[0]} coefficients, the head model {self.lm.num_shape}"
            )
        self.weights = landmark_weights(cfg.fit)[self.lmk_ids]
        self.rigid_mask = np.isin(self.lmk_ids, stable_landmarks())
        self.offset_mask = ~np.isin(self.lmk_ids, IRIS)
        self.mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False,
            max_num_faces=1,
            refine_landmarks=True,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )
        self.filter = OneEuro(cfg.min_cutoff_hz, cfg.beta)
        self.problem: Problem | None = None
        self.size: tuple[int, int] | None = None
        self.state: dict | None = None
        self.frames = 0
        self.found = 0
        from threadpoolctl import ThreadpoolController

        # The fit is many small BLAS calls: extra BLAS threads only contend for the cores. The controller is made
        # once (it scans the loaded libraries: ~10 ms), its limit set around each fit.
        self._blas = ThreadpoolController()

    def close(self) -> None:
        if self.mesh is not None:
            self.mesh.close()
            self.mesh = None

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        """mediapipe's 478 landmarks ``[478, 2]`` in pixels of ``rgb``, or None (no face)."""
        from splattalk.tracking.landmarks import _to_pixels

        result = self.mesh.process(np.ascontiguousarray(rgb))
        if not result.multi_face_landmarks:
            return None
        h, w = rgb.shape[:2]
        return _to_pixels(result.multi_face_landmarks[0], w, h)[:, :2]

    def __call__(self, rgb: np.ndarray, t: float) -> HeadParams | None:
        if self.mesh is None:
            raise RuntimeError("the live tracker was closed")
        self.frames += 1
        points = self.landmarks(rgb)
        if points is None:
            self.state = None  # the next face starts from PnP again
            self.filter.reset()
            return None
        self.found += 1
        return self.fit(points, rgb.shape[1], rgb.shape[0], t)

    def fit(self, points: np.ndarray, width: int, height: int, t: float) -> HeadParams:
        """Fit one frame's landmarks ``[478, 2]`` (pixels of a ``width``×``height`` frame) at time ``t``."""
        obs = np.asarray(points, np.float64)[None, self.lmk_ids]
        if self.problem is None or self.size != (width, height):
            focal = focal_from_fov(self.cfg.fov_deg, max(width, height))
            self.problem = Problem(
                self.lm,
                obs,
                np.ones(1, bool),
                self.weights,
                self.rigid_mask,
                width,
                height,
                self.cfg.fit,
                focal,
                offset_mask=self.offset_mask,
            )
            self.size = (width, height)
            self.state = None
        problem = self.problem
        problem.obs = obs
        with self._blas.limit(limits=1, user_api="blas"):
            if self.state is None:
                start = problem.pnp_start()
                start["shape"] = self.shape.copy()
                problem.cfg = dataclasses.replace(
                    self.cfg.fit, rigid_iterations=self.cfg.first_rigid_iterations, iterations=self.cfg.iterations
                )
            else:
                start = self.state
                problem.cfg = dataclasses.replace(self.cfg.fit, rigid_iterations=0, iterations=self.cfg.iterations)
            self.state = problem.solve(np.arange(1), start, fix_focal=True, fix_shared=True, progress=False)
        x = np.concatenate([self.state[k][0] for k in SOLVER_GROUPS])
        x = self.filter(x, t)
        parts, at = {}, 0
        for key in SOLVER_GROUPS:
            n = self.state[key].shape[1]
            parts[key] = x[at : at + n][None].astype(np.float32)
            at += n
        return HeadParams(
            expr=parts["expr"],
            jaw=parts["jaw"],
            neck=np.zeros((1, 3), np.float32),
            rot=parts["rot"],
            transl=parts["transl"],
            eyes=parts["eyes"],
        )
