"""Fit a head model and one pinhole camera to 2D landmark tracks.

Shared over the clip: identity ``shape`` and the focal length. Per frame:
global rotation, translation, jaw, eye rotations and expression (the neck
joint stays at zero: from landmarks alone a neck rotation cannot be told from
a global rotation plus a translation). One objective over all frames:

* robust (pseudo-Huber) reprojection error in output pixels, weighted per facial
  region (contour weak, lips/eyes strong, iris for the eyes); frames without a
  detected face have no data term and are filled in by the smoothness terms;
* L2 priors on shape/expression coefficients, jaw and eye rotations, focal length;
* temporal smoothness: acceleration (and a little velocity) of every per-frame
  parameter, weighted per group.

It is minimised by Levenberg–Marquardt with analytic Jacobians
(:mod:`~splattalk.tracking.landmark_model`) and iteratively re-weighted
robust weights; the normal equations are block-banded in time, so a step costs
time linear in the number of frames (:mod:`~splattalk.tracking.solver`).
Start: per-frame PnP on the rest-pose landmarks (every frame warm-started),
then a rigid stage (pose, focal, identity on the stable landmarks), then the
joint stage. Very long clips are cut into overlapping chunks, each
warm-started from its predecessor, with identity and focal fixed from a first
pass over key frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from tqdm import tqdm

from splattalk.camera import intrinsics
from splattalk.tracking import camera
from splattalk.tracking.config import LandmarkFitConfig
from splattalk.tracking.eyes import eyelid_components
from splattalk.tracking.landmark_model import LandmarkModel
from splattalk.tracking.regions import LEFT_IRIS, RIGHT_IRIS, landmark_weights, stable_landmarks
from splattalk.tracking.smooth import interpolate_missing
from splattalk.tracking.solver import ACCELERATION, VELOCITY, Normal, stencil_cost

IRIS = RIGHT_IRIS + LEFT_IRIS
MIN_FRAMES_FOR_CAMERA = 10
"""With fewer detected frames the focal length stays at its start and there are no static offsets:
neither is observable from a handful of views (a single photo would be explained by them entirely)."""
_DEBUG = bool(__import__("os").environ.get("SPLATTALK_FIT_DEBUG"))

SOLVER_GROUPS = ("rot", "transl", "jaw", "eyes", "expr")
"""Per-frame parameter groups the solver moves, in their order inside a frame's parameter vector (the neck stays
at zero; ``tracks.npz``'s arrays are :data:`splattalk.run.PER_FRAME`)."""


@dataclass
class LandmarkFit:
    """Fitted parameters of a clip (the tracker turns them into :class:`splattalk.run.Tracks`)."""

    expr: np.ndarray  # [T, E]
    jaw: np.ndarray  # [T, 3]
    neck: np.ndarray  # [T, 3] (zeros)
    rot: np.ndarray  # [T, 3]
    transl: np.ndarray  # [T, 3]
    eyes: np.ndarray  # [T, 6]
    shape: np.ndarray  # [S]
    focal: float  # pixels of the output frames
    distance: float  # camera on the +z axis at this distance (metres)
    residual_px: np.ndarray  # [T] mean landmark reprojection error against the detections (nan: no detection)
    landmark_offsets: np.ndarray  # [L, 3] static rest-pose offsets of the model's landmarks (metres)

    def viewmat(self) -> np.ndarray:
        return camera.fixed_viewmat(self.distance)


def fit_tracks(
    model,
    points: np.ndarray,
    valid: np.ndarray,
    width: int,
    height: int,
    cfg: LandmarkFitConfig,
    focal_init: float,
    fix_focal: bool = False,
    progress: bool = True,
) -> LandmarkFit:
    """Fit ``model`` to mediapipe landmarks ``points`` [T, 478, 2] (output pixels);
    ``valid`` [T] marks detected frames."""
    from threadpoolctl import threadpool_limits

    # The linear algebra here is many small BLAS calls: extra BLAS threads only contend for the cores.
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit_tracks(model, points, valid, width, height, cfg, focal_init, fix_focal, progress)


def _fit_tracks(model, points, valid, width, height, cfg, focal_init, fix_focal, progress) -> LandmarkFit:
    import dataclasses

    if np.count_nonzero(valid) < MIN_FRAMES_FOR_CAMERA:
        fix_focal = True
        cfg = dataclasses.replace(cfg, offset_prior=0.0)
    lm = LandmarkModel(model)
    lmk_ids = model.lmk_ids.numpy()
    obs = np.asarray(points, np.float64)[:, lmk_ids]
    valid = np.asarray(valid, bool)
    # irises get no static offset: the eye rotations place them, and their vertices drive the eye joints
    problem = Problem(
        lm,
        obs,
        valid,
        landmark_weights(cfg)[lmk_ids],
        np.isin(lmk_ids, stable_landmarks()),
        width,
        height,
        cfg,
        focal_init,
        offset_mask=~np.isin(lmk_ids, IRIS),
        eyelid_mask=eyelid_components(model),
    )
    num_frames = len(obs)
    start = problem.pnp_start()
    chunks = _chunks(num_frames, cfg.chunk_frames)
    if len(chunks) == 1:
        state = problem.solve(np.arange(num_frames), start, fix_focal=fix_focal, fix_shared=False, progress=progress)
    else:
        keys = np.unique(np.linspace(0, num_frames - 1, cfg.chunk_frames // 2).round().astype(int))
        keys = keys[valid[keys]] if valid[keys].any() else keys
        first = problem.solve(keys, start, fix_focal=fix_focal, fix_shared=False, progress=progress, temporal=False)
        state = {**start, "shape": first["shape"], "log_focal": first["log_focal"], "offsets": first["offsets"]}
        done = 0
        for lo, hi in chunks:
            part = problem.solve(np.arange(lo, hi), state, fix_focal=True, fix_shared=True, progress=progress)
            overlap = max(done - lo, 0)
            ramp = np.ones(hi - lo)
            ramp[:overlap] = (np.arange(overlap) + 1) / (overlap + 1)
            for key in SOLVER_GROUPS:
                state[key][lo:hi] = state[key][lo:hi] * (1 - ramp[:, None]) + part[key][lo:hi] * ramp[:, None]
            done = hi
    residual = problem.residuals(state)
    focal = float(np.exp(state["log_focal"]))
    return LandmarkFit(
        expr=state["expr"].astype(np.float32),
        jaw=state["jaw"].astype(np.float32),
        neck=np.zeros((num_frames, 3), np.float32),
        rot=state["rot"].astype(np.float32),
        transl=state["transl"].astype(np.float32),
        eyes=state["eyes"].astype(np.float32),
        shape=state["shape"].astype(np.float32),
        focal=focal,
        distance=problem.distance_for(state["log_focal"]),
        residual_px=residual,
        landmark_offsets=state["offsets"].astype(np.float32),
    )


def _chunks(num_frames: int, size: int, overlap: int = 25) -> list[tuple[int, int]]:
    """[start, end) windows of ``size`` frames covering the clip, consecutive ones sharing ``overlap`` frames."""
    if num_frames <= size:
        return [(0, num_frames)]
    overlap = min(overlap, size // 4)
    step = size - overlap
    return [(s, min(s + size, num_frames)) for s in range(0, num_frames - overlap, step)]


class Problem:
    """The objective of one clip: observations, weights and camera set-up (state), hence a class."""

    def __init__(
        self,
        lm: LandmarkModel,
        obs,
        valid,
        weights,
        rigid_mask,
        width,
        height,
        cfg: LandmarkFitConfig,
        focal_init,
        offset_mask=None,
        eyelid_mask=None,
    ):
        self.lm, self.cfg = lm, cfg
        # expression components that move only the eyelids: their own prior and smoothness (blinks are fast)
        self.eyelid_mask = np.zeros(lm.num_expr, bool) if eyelid_mask is None else np.asarray(eyelid_mask, bool)
        self.offset_mask = np.ones(lm.num_landmarks, bool) if offset_mask is None else np.asarray(offset_mask, bool)
        self.obs, self.valid = obs, valid
        self.weights = np.asarray(weights, np.float64)
        self.rigid_weights = self.weights * rigid_mask
        self.centre = np.array([width / 2, height / 2])
        self.log_focal_init = float(np.log(focal_init))
        self.distance = 1.0  # set by pnp_start
        e = lm.num_expr
        self.sizes = {"rot": 3, "transl": 3, "jaw": 3, "eyes": 6, "expr": e}
        self.slices, at = {}, 0
        for key in SOLVER_GROUPS:
            self.slices[key] = slice(at, at + self.sizes[key])
            at += self.sizes[key]
        self.per_frame = at
        self.num_shared = lm.num_shape + 1

    # -- camera ---------------------------------------------------------------------------------
    def distance_for(self, log_focal: float) -> float:
        """Camera distance tied to the focal length: changing the focal keeps the head's image size."""
        return float(self.distance * np.exp(log_focal - self.log_focal_init))

    def project(self, x: np.ndarray, log_focal: float, jacobian: bool = False):
        """Pixels [..., 2] of world points [..., 3]; with ``jacobian`` also d/dx [..., 2, 3]
        and d/dlog_focal [..., 2]."""
        focal = np.exp(log_focal)
        dist = self.distance_for(log_focal)
        depth = dist - x[..., 2]
        xy = np.stack([x[..., 0], -x[..., 1]], -1)
        uv = focal * xy / depth[..., None] + self.centre
        if not jacobian:
            return uv
        inv = 1.0 / depth
        d_x = np.zeros((*x.shape[:-1], 2, 3))
        d_x[..., 0, 0] = focal * inv
        d_x[..., 1, 1] = -focal * inv
        d_x[..., :, 2] = focal * xy * (inv**2)[..., None]
        d_focal = (uv - self.centre) * (1 - dist * inv)[..., None]
        return uv, d_x, d_focal

    # -- start ----------------------------------------------------------------------------------
    def pnp_start(self) -> dict:
        """Per-frame head pose from the rest-pose landmarks (PnP), as global rotation + translation."""
        lm, num = self.lm, len(self.obs)
        zeros_e = np.zeros((1, lm.num_expr))
        rest = lm(
            np.zeros(lm.num_shape), zeros_e, np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, 6)), np.zeros((1, 3))
        ).points[0]
        root = lm.rest_joints(np.zeros(lm.num_shape), zeros_e)[0, 0]
        K = intrinsics(np.exp(self.log_focal_init), *(2 * self.centre))
        rigid = self.rigid_weights > 0
        obj = rest[rigid] @ camera.FLIP_YZ.T
        rvecs, tvecs = np.zeros((num, 3)), np.zeros((num, 3))
        for t in np.nonzero(self.valid)[0]:
            _, rvec, tvec = cv2.solvePnP(obj, self.obs[t][rigid], K, None, flags=cv2.SOLVEPNP_SQPNP)
            rvecs[t], tvecs[t] = rvec[:, 0], tvec[:, 0]
        self.distance = float(np.median(tvecs[self.valid, 2]))
        rot, transl = np.zeros((num, 3)), np.zeros((num, 3))
        for t in np.nonzero(self.valid)[0]:
            r_root = camera.FLIP_YZ @ cv2.Rodrigues(rvecs[t])[0] @ camera.FLIP_YZ
            rot[t] = cv2.Rodrigues(r_root)[0][:, 0]
            # camera point = FLIP (R_root (x - root) + root + transl) + (0, 0, distance)
            transl[t] = camera.FLIP_YZ @ (tvecs[t] - [0, 0, self.distance]) - root + r_root @ root
        return {
            "rot": interpolate_missing(rot, self.valid),
            "transl": interpolate_missing(transl, self.valid),
            "jaw": np.zeros((num, 3)),
            "eyes": np.zeros((num, 6)),
            "expr": np.zeros((num, lm.num_expr)),
            "shape": np.zeros(lm.num_shape),
            "log_focal": self.log_focal_init,
            "offsets": np.zeros((lm.num_landmarks, 3)),
        }

    # -- objective ------------------------------------------------------------------------------
    def _pose(self, state, frames, jacobian=False):
        return self.lm(
            state["shape"],
            state["expr"][frames],
            state["rot"][frames],
            state["jaw"][frames],
            state["eyes"][frames],
            state["transl"][frames],
            offsets=state.get("offsets"),
            jacobian=jacobian,
        )

    def _data_weights(self, frames, rigid: bool) -> np.ndarray:
        """c_tl: region weight × valid, normalised to a per-frame mean."""
        w = self.rigid_weights if rigid else self.weights
        valid = self.valid[frames].astype(np.float64)
        return valid[:, None] * w[None] / (w.sum() * max(valid.sum(), 1.0))

    def _robust(self, err2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pseudo-Huber ρ and its IRLS weight ρ'(r)/r for squared residuals."""
        s2 = self.cfg.sigma_px**2
        root = np.sqrt(1 + err2 / s2)
        return s2 * (root - 1), 1 / root

    def _prior_terms(self, state, frames, normal: Normal | None, rigid: bool, temporal: bool) -> float:
        cfg, sl = self.cfg, self.slices
        n = len(frames)
        cost = cfg.shape_prior * float((state["shape"] ** 2).sum())
        cost += cfg.offset_prior * float((state["offsets"] ** 2).sum(-1).mean()) * 1e6
        cost += cfg.focal_prior * (state["log_focal"] - self.log_focal_init) ** 2
        if normal is not None:
            s = self.lm.num_shape
            idx = np.arange(s)
            normal.shared[idx, idx] += 2 * cfg.shape_prior
            normal.grad_shared[:s] += 2 * cfg.shape_prior * state["shape"]
            normal.shared[s, s] += 2 * cfg.focal_prior
            normal.grad_shared[s] += 2 * cfg.focal_prior * (state["log_focal"] - self.log_focal_init)
        if rigid:
            return cost
        x = self.stack(state, frames)

        def diagonal(group: str, weight: np.ndarray) -> float:
            """Σ_t weight · p² / n for one parameter group; weight [T, k] or [k]."""
            values = x[:, sl[group]]
            w = np.broadcast_to(weight, values.shape) / n
            if normal is not None:
                i = np.arange(sl[group].start, sl[group].stop)
                normal.blocks[:, i, i] += 2 * w
                normal.grad_frames[:, sl[group]] += 2 * w * values
            return float((w * values**2).sum())

        expr = x[:, sl["expr"]]
        expr_prior = np.where(self.eyelid_mask, cfg.eyelid_prior, cfg.expr_prior)
        cost += diagonal("expr", expr_prior * (1 + 10 * (expr < 0)))
        # eyelid components past a full activation: the lids would pass each other (a closed eye is 1.0)
        over = np.where(self.eyelid_mask, np.maximum(expr - 1.0, 0.0), 0.0)
        if over.any():
            w = cfg.eyelid_range / n
            cost += float(w * (over**2).sum())
            if normal is not None:
                i = np.arange(sl["expr"].start, sl["expr"].stop)
                normal.blocks[:, i, i] += 2 * w * (over > 0)
                normal.grad_frames[:, sl["expr"]] += 2 * w * over
        jaw = x[:, sl["jaw"]]
        cost += diagonal("jaw", cfg.jaw_prior * np.concatenate([1 + 50 * (jaw[:, :1] < 0), np.full((n, 2), 50.0)], 1))
        cost += diagonal("eyes", np.full(6, cfg.eyes_prior))
        # vergence: 10 × eyes_prior × |left − right|², couples the two eyes of a frame
        i_l = np.arange(sl["eyes"].start, sl["eyes"].start + 3)
        diff = x[:, i_l] - x[:, i_l + 3]
        w = 10 * cfg.eyes_prior / n
        cost += float(w * (diff**2).sum())
        if normal is not None:
            for a, b, sign in ((i_l, i_l, 1), (i_l + 3, i_l + 3, 1), (i_l, i_l + 3, -1), (i_l + 3, i_l, -1)):
                normal.blocks[:, a, b] += 2 * w * sign
            normal.grad_frames[:, i_l] += 2 * w * diff
            normal.grad_frames[:, i_l + 3] -= 2 * w * diff
        if temporal and n >= 3:
            deg2 = (180 / np.pi) ** 2  # the config's smoothness weights are per degree / millimetre
            weights = np.zeros(self.per_frame)
            weights[sl["rot"]] = cfg.smooth_rotation * deg2
            weights[sl["transl"]] = cfg.smooth_translation * 1e6
            weights[sl["jaw"]] = cfg.smooth_jaw * deg2
            weights[sl["eyes"]] = cfg.smooth_eyes * deg2
            weights[sl["expr"]] = np.where(self.eyelid_mask, cfg.smooth_eyelids, cfg.smooth_expr)
            for stencil, w in ((ACCELERATION, weights / n), (VELOCITY, cfg.velocity_fraction * weights / n)):
                cost += normal.add_stencil(x, stencil, w) if normal is not None else stencil_cost(x, stencil, w)
        return cost

    def stack(self, state, frames) -> np.ndarray:
        return np.concatenate([state[k][frames] for k in SOLVER_GROUPS], 1)

    def cost(self, state, frames, rigid: bool, temporal: bool) -> float:
        posed = self._pose(state, frames)
        err = self.project(posed.points, state["log_focal"]) - self.obs[frames]
        rho, _ = self._robust((err**2).sum(-1))
        return float((self._data_weights(frames, rigid) * rho).sum()) + self._prior_terms(
            state, frames, None, rigid, temporal
        )

    def normal(self, state, frames, rigid: bool, temporal: bool, batch: int = 64) -> Normal:
        normal = Normal.zeros(len(frames), self.per_frame, self.num_shared)
        c_all = self._data_weights(frames, rigid)
        for lo in range(0, len(frames), batch):
            part = frames[lo : lo + batch]
            posed = self._pose(state, part, jacobian=True)
            uv, d_x, d_focal = self.project(posed.points, state["log_focal"], jacobian=True)
            err = uv - self.obs[part]
            _, irls = self._robust((err**2).sum(-1))
            c = (c_all[lo : lo + batch] * irls)[..., None]  # [b, L, 1]
            groups = ("rot", "transl", "shape") if rigid else (*SOLVER_GROUPS, "shape")
            jac = self.lm.pixel_jacobians(posed, d_x, groups)
            b, num = d_x.shape[:2]
            columns = [jac[k] if k in jac else np.zeros((b, num, 2, self.sizes[k])) for k in SOLVER_GROUPS]
            columns += [jac["shape"], d_focal[..., None]]
            # Σ c ρ(|e|) ≈ Σ c ψ |e|² / 2 near the current point (IRLS): H = Σ c ψ JᵀJ, g = Σ c ψ Jᵀe
            root = np.sqrt(np.repeat(c[..., 0], 2, axis=1))[..., None]  # [b, 2L, 1]
            weighted = np.concatenate(columns, -1).reshape(b, num * 2, -1) * root  # [b, 2L, P + Q]
            # the Gram matrices in single precision (half the memory traffic); sums and solve in double
            single = weighted.astype(np.float32)
            gram = np.matmul(single.transpose(0, 2, 1), single).astype(np.float64)
            p = self.per_frame
            normal.blocks[lo : lo + batch] += gram[:, :p, :p]
            normal.cross[lo : lo + batch] += gram[:, :p, p:]
            normal.shared += gram[:, p:, p:].sum(0)
            grad = np.matmul(weighted.transpose(0, 2, 1), root * err.reshape(b, num * 2, 1))[..., 0]
            normal.grad_frames[lo : lo + batch] += grad[:, :p]
            normal.grad_shared += grad[:, p:].sum(0)
        self._prior_terms(state, frames, normal, rigid, temporal)
        return normal

    def apply(self, state, frames, dx: np.ndarray, dy: np.ndarray) -> dict:
        new = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()}
        for key in SOLVER_GROUPS:
            new[key][frames] = state[key][frames] + dx[:, self.slices[key]]
        new["shape"] = state["shape"] + dy[: self.lm.num_shape]
        new["log_focal"] = float(state["log_focal"] + dy[-1])
        return new

    def solve(
        self, frames, start: dict, fix_focal: bool, fix_shared: bool, progress: bool, temporal: bool = True
    ) -> dict:
        """Levenberg–Marquardt over ``frames``: a rigid stage, then the joint stage. Returns the full state."""
        cfg = self.cfg
        state = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in start.items()}
        stages = [("rigid", True, cfg.rigid_iterations), ("joint", False, cfg.iterations)]
        if cfg.offset_prior > 0 and not fix_shared:
            stages += [("offsets", None, 0), ("joint", False, max(cfg.iterations // 3, 1))] * cfg.offset_rounds
        for name, rigid, iterations in stages:
            if rigid is None:
                state = self.update_offsets(state, frames)
                continue
            fixed = np.zeros((len(frames), self.per_frame), bool)
            if rigid:
                for key in ("jaw", "eyes", "expr"):
                    fixed[:, self.slices[key]] = True
            fixed[~self.valid[frames]] = rigid  # frames without a face follow their neighbours later
            fixed_shared = np.zeros(self.num_shared, bool)
            fixed_shared[:] = fix_shared
            fixed_shared[-1] |= fix_focal
            damping = 1e-3
            cost = self.cost(state, frames, rigid, temporal)
            bar = tqdm(
                range(iterations),
                desc=f"fit {name} [{frames[0]}:{frames[-1] + 1}]",
                unit="it",
                disable=not progress,
                leave=False,
            )
            for _ in bar:
                normal = self.normal(state, frames, rigid, temporal)
                improved = False
                for _retry in range(6):
                    dx, dy = normal.solve(damping, fixed, fixed_shared)
                    candidate = self.apply(state, frames, dx, dy)
                    new_cost = self.cost(candidate, frames, rigid, temporal)
                    if new_cost < cost:
                        improved = True
                        break
                    damping *= 8
                if not improved:
                    break
                gain = (cost - new_cost) / max(cost, 1e-12)
                state, cost = candidate, new_cost
                damping = max(damping / 4, 1e-7)
                bar.set_postfix(cost=f"{cost:.4f}")
                if _DEBUG:
                    print(f"  {name} cost {cost:.5f} gain {gain:.2e} damping {damping:.1e}")
                if gain < 1e-4:
                    break
        return state

    def update_offsets(self, state, frames, steps: int = 3) -> dict:
        """Gauss–Newton on the static landmark offsets alone (each landmark: a 3×3 system over all frames)."""
        prior = self.cfg.offset_prior * 1e6 / self.lm.num_landmarks  # per landmark, offsets in metres
        offsets = state["offsets"].copy()
        c_all = self._data_weights(frames, rigid=False)
        for _ in range(steps):
            current = {**state, "offsets": offsets}
            posed = self._pose(current, frames, jacobian=True)
            uv, d_x, _ = self.project(posed.points, state["log_focal"], jacobian=True)
            err = uv - self.obs[frames]
            _, irls = self._robust((err**2).sum(-1))
            c = c_all * irls  # [T, L]
            jac = self.lm.pixel_jacobians(posed, d_x, ("offset",))["offset"]  # [T, L, 2, 3]
            j2 = jac.transpose(1, 0, 2, 3).reshape(len(offsets), -1, 3)  # [L, T·2, 3]
            c2 = np.repeat(c.T, 2, axis=1)[..., None]  # [L, T·2, 1]
            h = np.matmul(j2.transpose(0, 2, 1), c2 * j2) + prior * np.eye(3)
            g = np.matmul(j2.transpose(0, 2, 1), c2 * err.transpose(1, 0, 2).reshape(len(offsets), -1, 1))[..., 0]
            g = g + prior * offsets
            offsets = offsets - np.linalg.solve(h, g[..., None])[..., 0]
            offsets[~self.offset_mask] = 0.0
        return {**state, "offsets": offsets}

    def residuals(self, state) -> np.ndarray:
        frames = np.arange(len(self.obs))
        uv = self.project(self._pose(state, frames).points, state["log_focal"])
        err = np.linalg.norm(uv - self.obs, axis=-1).mean(-1)
        return np.where(self.valid, err, np.nan).astype(np.float32)
