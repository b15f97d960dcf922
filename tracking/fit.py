"""Fit a head model and one pinhole camera to 2D landmark tracks.

Shared over the clip: identity ``shape`` and the focal length. Per frame:
expression, jaw, global rotation, translation and eye rotations (the neck joint
stays at zero: with landmarks alone a neck rotation is indistinguishable from
a global rotation plus a translation). One objective over all frames of a
chunk, minimised with LBFGS:

* robust (pseudo-Huber) reprojection error in output pixels, weighted per facial
  region (contour weak, lips/eyes strong, iris for the eyes); frames without a
  detected face have no data term and are filled in by the smoothness terms;
* L2 priors on shape/expression coefficients, jaw and eye rotations, focal length;
* temporal smoothness: velocity and acceleration of the 3D landmarks (mm), and
  acceleration of the head pose and of the expression coefficients.

Start: per-frame PnP on the rest-pose landmarks (warm start for every frame),
then a rigid stage (pose, focal, identity), then the joint stage. Longer clips
are cut into overlapping chunks, each warm-started from its predecessor, with
identity and focal fixed from a first pass over key frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from tqdm import tqdm

from splattalk.head.model import HeadModel
from splattalk.tracking import camera
from splattalk.tracking.config import FitConfig
from splattalk.tracking.landmark_head import LandmarkHead
from splattalk.tracking.regions import landmark_weights, stable_landmarks
from splattalk.tracking.smooth import interpolate_missing


@dataclass
class Tracks:
    """Fitted parameters of a clip (arrays per frame first, then the shared ones)."""

    expr: np.ndarray  # [T, E]
    jaw: np.ndarray  # [T, 3]
    neck: np.ndarray  # [T, 3]
    rot: np.ndarray  # [T, 3]
    transl: np.ndarray  # [T, 3]
    eyes: np.ndarray  # [T, 6]
    shape: np.ndarray  # [S]
    focal: float  # pixels of the output frames
    distance: float  # camera on the +z axis at this distance (metres)
    residual_px: np.ndarray  # [T] mean landmark reprojection error against the detections (nan: no detection)

    def viewmat(self) -> np.ndarray:
        return camera.fixed_viewmat(self.distance)


def fit_tracks(
    model: HeadModel,
    points: np.ndarray,
    valid: np.ndarray,
    width: int,
    height: int,
    cfg: FitConfig,
    focal_init: float,
    fix_focal: bool = False,
    progress: bool = True,
) -> Tracks:
    """Fit ``model`` to mediapipe landmarks ``points`` [T, 478, 2] (output pixels); ``valid`` [T] marks detected frames."""
    lh = LandmarkHead(model)
    lmk_ids = model.lmk_ids.numpy()
    obs = np.asarray(points, np.float64)[:, lmk_ids]
    valid = np.asarray(valid, bool)
    weights = landmark_weights(cfg)[lmk_ids]
    rigid_mask = np.isin(lmk_ids, stable_landmarks())
    num_frames = len(obs)

    rot0, transl0, distance = _pnp_start(lh, obs, valid, rigid_mask, focal_init, width, height)
    chunks = _chunks(num_frames, cfg.chunk_frames)
    problem = _Problem(lh, obs, valid, weights, rigid_mask, distance, width, height, cfg, focal_init)
    init = {"rot": rot0, "transl": transl0}

    if len(chunks) == 1:
        result = problem.solve(np.arange(num_frames), init, fix_focal=fix_focal, shared=None, progress=progress)
    else:
        # identity and focal from key frames spread over the whole clip, then chunks with those fixed
        keys = np.unique(np.linspace(0, num_frames - 1, cfg.chunk_frames // 2).round().astype(int))
        keys = keys[valid[keys]] if valid[keys].any() else keys
        first = problem.solve(keys, init, fix_focal=fix_focal, shared=None, progress=progress, temporal=False)
        shared = {"shape": first["shape"], "log_focal": first["log_focal"]}
        result = None
        for start, end in chunks:
            frames = np.arange(start, end)
            if result is not None:  # warm start the overlap from the previous chunk
                init = {k: v.copy() for k, v in init.items()}
                for key in ("rot", "transl"):
                    init[key][start:result_end] = result[key][start:result_end]
            part = problem.solve(frames, init, fix_focal=True, shared=shared, progress=progress)
            result = _stitch(result, part, frames, num_frames)
            result_end = end

    shape = result["shape"]
    focal = float(np.exp(result["log_focal"]))
    residual = problem.residuals(result, shape, focal)
    distance = result["distance"]
    return Tracks(
        expr=result["expr"].astype(np.float32), jaw=result["jaw"].astype(np.float32),
        neck=np.zeros((num_frames, 3), np.float32), rot=result["rot"].astype(np.float32),
        transl=result["transl"].astype(np.float32), eyes=result["eyes"].astype(np.float32),
        shape=shape.astype(np.float32), focal=focal, distance=float(distance), residual_px=residual,
    )


def _chunks(num_frames: int, size: int, overlap: int = 25) -> list[tuple[int, int]]:
    if num_frames <= size:
        return [(0, num_frames)]
    step = size - overlap
    starts = list(range(0, num_frames - overlap, step))
    return [(s, min(s + size, num_frames)) for s in starts]


def _stitch(result: dict | None, part: dict, frames: np.ndarray, num_frames: int) -> dict:
    """Merge a chunk into the running result, cross-fading linearly over the overlap."""
    if result is None:
        result = {k: (np.zeros((num_frames, *v.shape[1:])) if k in _PER_FRAME else v) for k, v in part.items()}
        result["_filled"] = np.zeros(num_frames, bool)
    filled = result["_filled"][frames]
    ramp = np.ones(len(frames))
    overlap = int(filled.sum())
    if overlap:
        ramp[:overlap] = (np.arange(overlap) + 1) / (overlap + 1)
    for key in _PER_FRAME:
        old = result[key][frames]
        result[key][frames] = old * (1 - ramp[:, None]) + part[key] * ramp[:, None]
    result["_filled"][frames] = True
    return result


_PER_FRAME = ("expr", "jaw", "rot", "transl", "eyes")


def _pnp_start(lh, obs, valid, rigid_mask, focal, width, height):
    """Per-frame head pose from the rest-pose landmarks (PnP), as global rotation + translation."""
    with torch.no_grad():
        zeros = torch.zeros(1, lh.num_expr)
        rest = lh(torch.zeros(lh.num_shape), zeros, torch.zeros(1, 5, 3), torch.zeros(1, 3))[0].numpy()
        root = lh.rest_joints(torch.zeros(lh.num_shape))[0].numpy().astype(np.float64)
    K = camera.intrinsics(focal, width, height)
    obj = (rest[rigid_mask] @ camera.FLIP_YZ.T).astype(np.float64)
    num_frames = len(obs)
    rvecs, tvecs = np.zeros((num_frames, 3)), np.zeros((num_frames, 3))
    for t in np.nonzero(valid)[0]:
        ok, rvec, tvec = cv2.solvePnP(obj, obs[t][rigid_mask], K, None, flags=cv2.SOLVEPNP_SQPNP)
        rvecs[t], tvecs[t] = rvec[:, 0], tvec[:, 0]
    distance = float(np.median(tvecs[valid, 2]))
    rot = np.zeros((num_frames, 3))
    transl = np.zeros((num_frames, 3))
    for t in np.nonzero(valid)[0]:
        r_cam = cv2.Rodrigues(rvecs[t])[0]
        r_root = camera.FLIP_YZ @ r_cam @ camera.FLIP_YZ
        rot[t] = cv2.Rodrigues(r_root)[0][:, 0]
        # camera point = FLIP (R_root (x - root) + root + transl) + (0, 0, distance)
        transl[t] = camera.FLIP_YZ @ (tvecs[t] - np.array([0, 0, distance])) - root + r_root @ root
    return interpolate_missing(rot, valid), interpolate_missing(transl, valid), distance


class _Problem:
    """The objective over a set of frames; holds the observations (state), hence a class."""

    def __init__(self, lh, obs, valid, weights, rigid_mask, distance, width, height, cfg: FitConfig, focal_init):
        self.lh, self.cfg = lh, cfg
        self.obs = torch.as_tensor(obs, dtype=torch.float32)
        self.valid = torch.as_tensor(valid, dtype=torch.float32)
        self.weights = torch.as_tensor(weights, dtype=torch.float32)
        self.rigid_weights = self.weights * torch.as_tensor(rigid_mask, dtype=torch.float32)
        self.distance = distance
        self.centre = torch.tensor([width / 2, height / 2])
        self.log_focal_init = float(np.log(focal_init))
        self.num_shape = lh.num_shape
        self.num_expr = lh.num_expr

    def distance_for(self, log_focal: torch.Tensor) -> torch.Tensor:
        """Camera distance tied to the focal length, so that changing the focal keeps the head's image size."""
        return self.distance * torch.exp(log_focal - self.log_focal_init)

    def project(self, points: torch.Tensor, log_focal: torch.Tensor) -> torch.Tensor:
        """Pixels [..., 2] of world points [..., 3] for the fixed camera."""
        focal = log_focal.exp()
        depth = self.distance_for(log_focal) - points[..., 2]
        xy = torch.stack([points[..., 0], -points[..., 1]], -1) / depth[..., None]
        return xy * focal + self.centre

    def landmarks(self, p: dict, shape: torch.Tensor) -> torch.Tensor:
        num = p["rot"].shape[0]
        pose = torch.cat([p["rot"], torch.zeros(num, 3), p["jaw"], p["eyes"]], -1).reshape(num, 5, 3)
        return self.lh(shape, p["expr"], pose, p["transl_dm"] / 10)

    def data_term(self, pred_px, frames, weights) -> torch.Tensor:
        sigma = self.cfg.sigma_px
        err2 = ((pred_px - self.obs[frames]) ** 2).sum(-1)
        rho = sigma**2 * (torch.sqrt(1 + err2 / sigma**2) - 1)
        per_frame = (rho * weights).sum(-1) / weights.sum()
        valid = self.valid[frames]
        return (per_frame * valid).sum() / valid.sum().clamp(min=1)

    def solve(self, frames, init, fix_focal, shared, progress, temporal=True) -> dict:
        cfg = self.cfg
        n = len(frames)
        p = {
            "rot": torch.tensor(init["rot"][frames], dtype=torch.float32),
            "transl_dm": torch.tensor(init["transl"][frames] * 10, dtype=torch.float32),
            "expr": torch.zeros(n, self.num_expr),
            "jaw": torch.zeros(n, 3),
            "eyes": torch.zeros(n, 6),
        }
        if shared is None:
            shape = torch.zeros(self.num_shape)
            log_focal = torch.tensor(self.log_focal_init)
        else:
            shape = torch.tensor(shared["shape"], dtype=torch.float32)
            log_focal = torch.tensor(float(shared["log_focal"]))
        shared_free = [] if shared is not None else ([shape] if fix_focal else [shape, log_focal])
        frames_t = torch.as_tensor(frames)

        def objective(rigid: bool) -> torch.Tensor:
            lmk = self.landmarks(p, shape)
            pred = self.project(lmk, log_focal)
            loss = self.data_term(pred, frames_t, self.rigid_weights if rigid else self.weights)
            loss = loss + cfg.shape_prior * (shape**2).sum()
            loss = loss + cfg.focal_prior * (log_focal - self.log_focal_init) ** 2
            if not rigid:
                expr = p["expr"]
                loss = loss + cfg.expr_prior * ((expr**2).sum(-1) + 10 * (torch.relu(-expr) ** 2).sum(-1)).mean()
                jaw = p["jaw"]
                loss = loss + cfg.jaw_prior * (jaw[:, 0] ** 2 + 50 * (jaw[:, 1:] ** 2).sum(-1) + 50 * torch.relu(-jaw[:, 0]) ** 2).mean()
                eyes = p["eyes"]
                vergence = eyes[:, :3] - eyes[:, 3:]
                loss = loss + cfg.eyes_prior * ((eyes**2).sum(-1) + 10 * (vergence**2).sum(-1)).mean()
            if temporal and n > 2:
                mm = lmk * 1000
                vel = mm[1:] - mm[:-1]
                acc = mm[2:] - 2 * mm[1:-1] + mm[:-2]
                loss = loss + cfg.smooth_velocity * (vel**2).sum(-1).mean() + cfg.smooth_acceleration * (acc**2).sum(-1).mean()
                pose = torch.cat([p["rot"], p["transl_dm"]], -1)
                loss = loss + cfg.smooth_pose * ((pose[2:] - 2 * pose[1:-1] + pose[:-2]) ** 2).sum(-1).mean()
                expr = p["expr"]
                loss = loss + cfg.smooth_expr * ((expr[2:] - 2 * expr[1:-1] + expr[:-2]) ** 2).sum(-1).mean()
            return loss

        stages = [("rigid", True, [p["rot"], p["transl_dm"], *shared_free], cfg.rigid_iterations),
                  ("joint", False, [*p.values(), *shared_free], cfg.iterations)]
        for name, rigid, params, iterations in stages:
            for t in params:
                t.requires_grad_(True)
            opt = torch.optim.LBFGS(params, lr=1.0, max_iter=5, history_size=20, line_search_fn="strong_wolfe",
                                    tolerance_grad=1e-9, tolerance_change=1e-12)

            def closure():
                opt.zero_grad()
                loss = objective(rigid)
                loss.backward()
                return loss

            steps = max(1, iterations // 5)
            bar = tqdm(range(steps), desc=f"fit {name} [{frames[0]}:{frames[-1] + 1}]", unit="x5 it",
                       disable=not progress, leave=False)
            for _ in bar:
                loss = opt.step(closure)
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
            for t in params:
                t.requires_grad_(False)
        out = {k: v.detach().numpy().astype(np.float64) for k, v in p.items()}
        out["transl"] = out.pop("transl_dm") / 10
        out["shape"] = shape.detach().numpy().astype(np.float64)
        out["log_focal"] = float(log_focal)
        out["distance"] = float(self.distance_for(log_focal))
        return out

    @torch.no_grad()
    def residuals(self, result: dict, shape: np.ndarray, focal: float) -> np.ndarray:
        p = {k: torch.tensor(result[k], dtype=torch.float32) for k in _PER_FRAME}
        p["transl_dm"] = p.pop("transl") * 10
        log_focal = torch.tensor(float(np.log(focal)))
        pred = self.project(self.landmarks(p, torch.tensor(shape, dtype=torch.float32)), log_focal)
        err = (pred - self.obs).norm(dim=-1).mean(-1).numpy()
        return np.where(self.valid.numpy() > 0, err, np.nan)
