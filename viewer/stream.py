"""A lighter splat stream: the head pose as a node transform, and only the Gaussian groups that visibly moved.

Sending the whole posed avatar every frame costs 32 bytes a Gaussian (viser's
splat layout: centre f32×3, covariance f16×6, RGBA), 625 KB a frame for the
20k-Gaussian default avatar. Two facts make most of that redundant:

* the head model's global rotation and translation move every vertex
  rigidly about the root joint: posed = R (local − J₀) + J₀ + t, where
  *local* is the pose without them. So the Gaussians are sent in the head's
  own frame, under a viser frame node whose transform (wxyz + position, a few
  bytes) carries the head pose; the browser applies it to centres and covariances.
* in the head's frame, speech moves only the lower face (jaw and mouth
  expressions), blinks only the eyelids. The Gaussians are cut into groups by a
  voxel grid over the rest pose, each group its own splat node (viser sorts
  all nodes together), and a group is sent only when one of its Gaussians
  moved — centre, or size along any axis — by more than ``tolerance`` since
  the group was last sent. What the browser shows is therefore never further
  than ``tolerance`` from the exact pose (0.05 mm by default, ~1/4 pixel for a
  head filling the view of a 1000-pixel-high window).

viser's splat buffer layout is fixed, so the bytes of a group cannot be
quantised further without a client of our own; the saving comes from not
sending what did not move.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numba
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from splattalk.avatar.model import animate
from splattalk.viewer.splats import TRIU, SplatPoser, covariance_triu, pack_posed, triu_to_full

BYTES_PER_GAUSSIAN = 32
TOLERANCE_M = 5e-5
"""Default largest error (metres) of a Gaussian's centre or axis length in the browser, versus the exact pose."""
CELL_M = 0.02
"""Side (metres) of the voxels that group the Gaussians: a group is what is sent or skipped together."""
BUDGET_BYTES = 96 * 1024
"""Most Gaussian bytes a frame sends; past it the groups that moved most go first and the rest follow in
the next frames (their error stays measured: ``SplatStream.lag``)."""
GROUP_OVERHEAD = 96
"""Approximate bytes of one group's update message besides its Gaussians (name, framing, padding)."""


@dataclass
class FrameUpdate:
    """What one frame sends: the head node's pose and the groups that changed."""

    wxyz: np.ndarray
    """[4] head rotation (quaternion wxyz)"""
    position: np.ndarray
    """[3] head node position, scene units"""
    groups: list[tuple[int, np.ndarray]]
    """(group index, its Gaussians in the head's frame: viser buffer [n, 8] uint32)"""

    @property
    def nbytes(self) -> int:
        """Payload bytes (transform + Gaussians), without the message framing."""
        return 7 * 4 + sum(b.nbytes for _, b in self.groups)


@numba.njit(cache=True)
def _group_change(centers, cov, sigma, sent_centers, sent_cov, group_of, worst):
    """Per group, the largest visible change of one of its Gaussians since it was last sent (scene units)."""
    worst[:] = 0.0
    for i in range(centers.shape[0]):
        d = 0.0
        for k in range(3):
            e = centers[i, k] - sent_centers[i, k]
            d += e * e
        moved = np.sqrt(d)
        dc = 0.0
        for k in range(6):
            dc = max(dc, abs(cov[i, k] - sent_cov[i, k]))
        moved = max(moved, dc / (2.0 * sigma[i] + 1e-12))
        g = group_of[i]
        worst[g] = max(worst[g], moved)


def voxel_groups(centers: np.ndarray, cell: float) -> list[np.ndarray]:
    """Indices of ``centers`` ``[N, 3]`` grouped by the ``cell``-sized voxel they fall in (a deterministic order)."""
    keys = np.floor(np.asarray(centers, np.float64) / cell).astype(np.int64)
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    order = np.argsort(inverse.ravel(), kind="stable")
    bounds = np.flatnonzero(np.diff(inverse.ravel()[order])) + 1
    return np.split(order, bounds)


class SplatStream:
    """One tab's light stream over a :class:`~splattalk.viewer.splats.SplatPoser` (same motion rows, same extras)."""

    def __init__(
        self,
        poser: SplatPoser,
        tolerance: float = TOLERANCE_M,
        cell: float = CELL_M,
        budget: int | None = BUDGET_BYTES,
    ):
        self.poser = poser
        self.scale = poser.scene_scale
        self.tolerance = float(tolerance) * self.scale
        """In scene units."""
        rest = poser.params(np.zeros((1, poser.motion_dim), np.float32))
        with torch.no_grad():
            out = poser.avatar.head(shape=poser.avatar.shape[None], **rest.torch_kwargs())
            self.root = out.joints[0, 0].numpy().astype(np.float64)
            """J₀ [3], metres: the root joint the global rotation turns about (depends on the identity shape only)."""
            g = animate(poser.avatar, self._local(rest))
        self.groups = voxel_groups(g.means[0].numpy(), cell)
        self.group_of = np.empty(poser.num, np.int64)
        for k, idx in enumerate(self.groups):
            self.group_of[idx] = k
        self.budget = budget
        self.lag = 0.0
        """Largest error (scene units) left unsent by the last update because of the budget (0 when none)."""
        self._buffer = np.zeros((poser.num, 8), np.uint32)
        self._sent_centers: np.ndarray | None = None
        self._sent_cov: np.ndarray | None = None

    @property
    def num_groups(self) -> int:
        return len(self.groups)

    @staticmethod
    def _local(params):
        params = dataclasses.replace(params)
        params.rot = np.zeros_like(params.rot)
        params.transl = np.zeros_like(params.transl)
        return params

    def reset(self) -> None:
        """Forget what was sent (a new page): the next update sends every group."""
        self._sent_centers = self._sent_cov = None

    def update(self, motion_row: np.ndarray, extras: np.ndarray | None = None) -> FrameUpdate:
        """One motion row (and a driven clip's extras) → the head transform and the groups to send."""
        params = self.poser.params(np.asarray(motion_row, np.float32)[None])
        if extras is not None:
            params.neck, params.transl, params.eyes = (
                extras[None, 0:3],
                extras[None, 3:6],
                extras[None, 6:12],
            )
        rot = Rotation.from_rotvec(params.rot[0].astype(np.float64))
        position = (self.root + params.transl[0] - rot.apply(self.root)) * self.scale
        xyzw = rot.as_quat()
        wxyz = np.array([xyzw[3], xyzw[0], xyzw[1], xyzw[2]])
        with torch.no_grad():
            g = animate(self.poser.avatar, self._local(params))
        means, quats, scales = (
            g.means[0].numpy(),
            g.quats[0].numpy(),
            g.scales[0].numpy(),
        )
        buffer = pack_posed(means, quats, scales, self.scale, self.poser.rgba, self._buffer)
        centers = means * self.scale
        cov = covariance_triu(quats, scales, self.scale)
        if self._sent_centers is None:
            changed = np.arange(self.num_groups)
            self._sent_centers, self._sent_cov = centers.copy(), cov.copy()
        else:
            # a Gaussian's visible change: its centre's move, or how far its 1-σ ellipsoid's surface moved
            # (turned or resized): Σ = σ², so dσ ≈ |dΣ| / 2σ, with σ its largest axis
            sigma = scales.max(1) * self.scale
            worst = np.zeros(self.num_groups)
            _group_change(
                centers,
                cov,
                sigma,
                self._sent_centers,
                self._sent_cov,
                self.group_of,
                worst,
            )
            changed = np.flatnonzero(worst > self.tolerance)
            self.lag = 0.0
            if self.budget is not None and changed.size:
                changed = changed[np.argsort(-worst[changed], kind="stable")]
                cost = np.cumsum([self.groups[k].size * BYTES_PER_GAUSSIAN + GROUP_OVERHEAD for k in changed])
                keep = max(1, int(np.searchsorted(cost, self.budget, side="right")))
                if keep < changed.size:
                    self.lag = float(worst[changed[keep]])
                changed = np.sort(changed[:keep])
            for k in changed:
                idx = self.groups[k]
                self._sent_centers[idx] = centers[idx]
                self._sent_cov[idx] = cov[idx]
        return FrameUpdate(wxyz, position, [(int(k), buffer[self.groups[k]].copy()) for k in changed])


def compose(
    update_groups: dict[int, np.ndarray],
    groups: list[np.ndarray],
    wxyz: np.ndarray,
    position: np.ndarray,
    num: int,
) -> tuple[np.ndarray, np.ndarray]:
    """What the browser shows: the latest buffer of every group, put through the head node's transform →
    world centres ``[N, 3]`` and covariance triangles ``[N, 6]`` (scene units). For tests and the benchmark."""
    local = np.zeros((num, 8), np.uint32)
    for k, buf in update_groups.items():
        local[groups[k]] = buf
    centers = local[:, 0:3].view(np.float32).astype(np.float64)
    triu = local[:, 4:7].copy().view(np.float16).astype(np.float64)
    r = Rotation.from_quat([wxyz[1], wxyz[2], wxyz[3], wxyz[0]]).as_matrix()
    world = centers @ r.T + position
    cov = r @ triu_to_full(triu) @ r.T
    return world, cov.reshape(-1, 9)[:, list(TRIU)]
