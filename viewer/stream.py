"""A lighter splat stream: the head pose as a node transform, Gaussians grouped by how they move, each
group's motion as its own node transform, and a group's Gaussians resent only when no transform keeps
them within the tolerance.

Sending the whole posed avatar every frame costs 32 bytes a Gaussian (viser's
splat layout: centre f32×3, covariance f16×6, RGBA), 625 KB a frame for the
20k-Gaussian default avatar. Three facts make most of that redundant:

* the head model's global rotation and translation move every vertex
  rigidly about the root joint: posed = R (local − J₀) + J₀ + t, where
  *local* is the pose without them. So the Gaussians are sent in the head's
  own frame, under a viser frame node whose transform (wxyz + position, a few
  bytes) carries the head pose; the browser applies it to centres and covariances.
* Gaussians that respond alike to the jaw and to each expression move
  together. They are grouped (k-means over the rest position and the
  displacement each motion channel causes, :func:`motion_groups`), each group
  its own splat node (viser sorts all nodes together), so a group is either
  still or moving as a whole — a 2 cm voxel across the lips holds both.
* a moving group is locally almost a stretched rigid motion, and viser draws a
  splat node through its full node matrix (rotation × per-axis ``scale``,
  centres and covariances alike). So a group whose Gaussians left the
  tolerance first gets a new transform — rotation, per-axis scale and
  position fitted to where its Gaussians are now (~100 bytes) — and only if
  that still leaves one of them further than the tolerance are its Gaussians
  resent (in the group's frame, the transform reset).

Nothing drifts: every frame the error of what the page shows (the last
buffer through the last transforms) is measured against the exact pose, and a
group is updated as soon as one of its Gaussians' centre or 1-σ surface is
further than ``tolerance`` from it.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

import numba
import numpy as np
import torch
from scipy.cluster.vq import kmeans2
from scipy.spatial.transform import Rotation

from splattalk.avatar.model import animate
from splattalk.viewer.splats import TRIU, SplatPoser, covariance_triu, triu_to_full

BYTES_PER_GAUSSIAN = 32
TOLERANCE_M = 1e-4
"""Default largest error (metres) of a Gaussian's centre or 1-σ surface in the browser, versus the exact pose."""
CELL_M = 0.02
"""Spatial scale (metres) of a group: k-means weighs 2 cm of rest position like ``MOTION_M`` of displacement."""
MOTION_M = 0.002
"""Displacement (metres, at a probe's amplitude) that weighs like ``CELL_M`` of position when grouping."""
NUM_GROUPS = 600
"""Groups k-means starts from (empty ones are dropped): patches of the same size on any avatar of the same head,
~33 Gaussians each on the 20k-Gaussian default avatar."""
PROBE_EXPR = 0.5
"""Amplitude of each expression channel's probe (speech moves them up to ~0.6)."""
PROBE_JAW = 0.2
"""Jaw probe, radians about the jaw's x axis."""
PROBE_EYES = 0.2
"""Eye probe, radians of yaw (driven clips move the eyes)."""
PCA_ENERGY = 0.99
"""Share of the probe responses' variance kept when grouping (principal components)."""
SCALE_RANGE = (0.5, 2.0)
"""A group's fitted per-axis scale is clamped to this (what lies outside is resent, not stretched)."""


@dataclass
class FrameUpdate:
    """What one frame sends: the head node's pose, the groups' new transforms and the groups resent."""

    wxyz: np.ndarray
    """[4] head rotation (quaternion wxyz)"""
    position: np.ndarray
    """[3] head node position, scene units"""
    groups: list[tuple[int, np.ndarray]]
    """(group index, its Gaussians in the group's frame: viser buffer [n, 8] uint32)"""
    transforms: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    """(group index, wxyz [4], position [3], per-axis scale [3]): the group node's transform in the head's frame"""

    @property
    def nbytes(self) -> int:
        """Payload bytes (transforms + Gaussians), without the message framing."""
        return 7 * 4 + 10 * 4 * len(self.transforms) + sum(b.nbytes for _, b in self.groups)


# ---------------------------------------------------------------------------------------------- kernels
@numba.njit(cache=True)
def _error(members, local, local_cov, m, t, centers, cov, sigma):
    """Largest visible error of ``members`` shown as ``m @ local + t`` (covariance m C mᵀ) vs the exact pose."""
    worst = 0.0
    c = np.empty((3, 3))
    mc = np.empty((3, 3))
    for i in members:
        d = 0.0
        for a in range(3):
            p = t[a] + m[a, 0] * local[i, 0] + m[a, 1] * local[i, 1] + m[a, 2] * local[i, 2]
            d += (p - centers[i, a]) ** 2
        c[0, 0], c[0, 1], c[0, 2] = local_cov[i, 0], local_cov[i, 1], local_cov[i, 2]
        c[1, 0], c[1, 1], c[1, 2] = local_cov[i, 1], local_cov[i, 3], local_cov[i, 4]
        c[2, 0], c[2, 1], c[2, 2] = local_cov[i, 2], local_cov[i, 4], local_cov[i, 5]
        for a in range(3):
            for b in range(3):
                mc[a, b] = m[a, 0] * c[0, b] + m[a, 1] * c[1, b] + m[a, 2] * c[2, b]
        dc = 0.0
        k = 0
        for a in range(3):
            for b in range(a, 3):
                s = mc[a, 0] * m[b, 0] + mc[a, 1] * m[b, 1] + mc[a, 2] * m[b, 2]
                dc = max(dc, abs(s - cov[i, k]))
                k += 1
        # a covariance change moves the 1-σ surface by ≈ |dΣ| / 2σ (Σ = σ², σ the largest axis)
        worst = max(worst, np.sqrt(d), dc / (2.0 * sigma[i] + 1e-12))
    return worst


@numba.njit(cache=True)
def _kabsch(h):
    """Rotation R maximising tr(R H) for H = Σ aᵢ bᵢᵀ (so R aᵢ ≈ bᵢ)."""
    u, _, vt = np.linalg.svd(h)
    r = vt.T @ u.T
    if np.linalg.det(r) < 0:
        vt[2] *= -1.0
        r = vt.T @ u.T
    return r


@numba.njit(cache=True)
def _fit(members, local, centers, lo, hi):
    """R [3, 3], s [3], t [3] with R diag(s) x + t ≈ the members' centres, least squares by alternating Kabsch and
    per-axis scale; both steps need only the means and Σ x yᵀ, Σ x² of the centred points (one pass)."""
    n = members.size
    mx = np.zeros(3)
    my = np.zeros(3)
    for i in members:
        mx += local[i]
        my += centers[i]
    mx /= n
    my /= n
    sxy = np.zeros((3, 3))
    sxx = np.zeros(3)
    for i in members:
        for a in range(3):
            xa = local[i, a] - mx[a]
            sxx[a] += xa * xa
            for b in range(3):
                sxy[a, b] += xa * (centers[i, b] - my[b])
    s = np.ones(3)
    r = _kabsch(sxy)
    for _ in range(2):
        sr = sxy @ r  # (Σ x yᵀ R)ₐₐ = Σ xₐ (Rᵀ y)ₐ
        for a in range(3):
            s[a] = min(max(sr[a, a] / sxx[a], lo), hi) if sxx[a] > 1e-12 else 1.0
        h = sxy.copy()
        for a in range(3):
            h[a] *= s[a]
        r = _kabsch(h)
    t = my - r @ (s * mx)
    return r, s, t


@numba.njit(cache=True)
def _quat(r, out):
    """Rotation matrix → unit quaternion wxyz (the largest of the four first, for precision)."""
    tr = r[0, 0] + r[1, 1] + r[2, 2]
    if tr > 0:
        q = np.sqrt(tr + 1.0) * 2
        out[0], out[1], out[2], out[3] = (
            0.25 * q,
            (r[2, 1] - r[1, 2]) / q,
            (r[0, 2] - r[2, 0]) / q,
            (r[1, 0] - r[0, 1]) / q,
        )
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        q = np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2]) * 2
        out[0], out[1], out[2], out[3] = (
            (r[2, 1] - r[1, 2]) / q,
            0.25 * q,
            (r[0, 1] + r[1, 0]) / q,
            (r[0, 2] + r[2, 0]) / q,
        )
    elif r[1, 1] > r[2, 2]:
        q = np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2]) * 2
        out[0], out[1], out[2], out[3] = (
            (r[0, 2] - r[2, 0]) / q,
            (r[0, 1] + r[1, 0]) / q,
            0.25 * q,
            (r[1, 2] + r[2, 1]) / q,
        )
    else:
        q = np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1]) * 2
        out[0], out[1], out[2], out[3] = (
            (r[1, 0] - r[0, 1]) / q,
            (r[0, 2] + r[2, 0]) / q,
            (r[1, 2] + r[2, 1]) / q,
            0.25 * q,
        )
    out /= np.sqrt((out**2).sum())


@numba.njit(cache=True)
def _step(
    order, offsets, local, local_cov, rot, scale, trans, wxyz, centers, cov, sigma, tol, fit, lo, hi, force, status
):
    """One frame for every group: 0 still within ``tol``; 1 a new transform keeps it within (``rot``, ``scale``,
    ``trans``, ``wxyz`` updated); 2 its Gaussians resent (``local``, ``local_cov`` updated, transform reset)."""
    m = np.empty((3, 3))
    for g in range(offsets.size - 1):
        members = order[offsets[g] : offsets[g + 1]]
        for a in range(3):
            for b in range(3):
                m[a, b] = rot[g, a, b] * scale[g, b]
        status[g] = 0
        if not force and _error(members, local, local_cov, m, trans[g], centers, cov, sigma) <= tol:
            continue
        if fit and not force:
            r, s, t = _fit(members, local, centers, lo, hi)
            for a in range(3):
                for b in range(3):
                    m[a, b] = r[a, b] * s[b]
            if _error(members, local, local_cov, m, t, centers, cov, sigma) <= tol:
                rot[g], scale[g], trans[g] = r, s, t
                _quat(r, wxyz[g])
                status[g] = 1
                continue
        status[g] = 2
        c = np.zeros(3)
        for i in members:
            c += centers[i]
        c /= members.size
        for i in members:
            local[i] = centers[i] - c
            local_cov[i] = cov[i]
        rot[g] = np.eye(3)
        scale[g] = 1.0
        trans[g] = c
        wxyz[g] = np.array([1.0, 0.0, 0.0, 0.0])


# ---------------------------------------------------------------------------------------------- groups
def voxel_groups(centers: np.ndarray, cell: float) -> list[np.ndarray]:
    """Indices of ``centers`` ``[N, 3]`` grouped by the ``cell``-sized voxel they fall in (a deterministic order)."""
    keys = np.floor(np.asarray(centers, np.float64) / cell).astype(np.int64)
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    return _split(inverse.ravel())


def _split(labels: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    return np.split(order, bounds)


def motion_groups(
    rest: np.ndarray, response: np.ndarray, count: int, cell: float = CELL_M, motion: float = MOTION_M
) -> list[np.ndarray]:
    """Gaussians that sit together and move alike: k-means (seeded) over ``rest`` ``[N, 3]`` / ``cell`` and the
    displacements ``response`` ``[N, P, 3]`` (one per probe motion) / ``motion`` (all in the same units).
    Returns the non-empty groups' indices, in a deterministic order."""
    n = rest.shape[0]
    motion_features = response.reshape(n, -1) / motion
    motion_features = motion_features - motion_features.mean(0)
    # the probes' responses are strongly correlated: their leading principal components keep the distances
    # k-means sees (and make it ~10× cheaper)
    _, sv, vt = np.linalg.svd(motion_features[:: max(1, n // 4000)], full_matrices=False)
    keep = max(1, int(np.searchsorted(np.cumsum(sv**2) / np.sum(sv**2), PCA_ENERGY)) + 1)
    features = np.concatenate([rest / cell, motion_features @ vt[:keep].T], axis=1)
    count = min(count, n)
    init = features[np.random.default_rng(0).choice(n, count, replace=False)]
    with warnings.catch_warnings():  # an emptied cluster is simply dropped
        warnings.simplefilter("ignore")
        _, labels = kmeans2(features, init, iter=15, minit="matrix")
    return _split(labels)


def probe_params(poser: SplatPoser) -> list:
    """The rest pose, then one probe per motion that moves Gaussians in the head's frame: each expression
    channel, the jaw, the eyes (``HeadParams``, global rotation and translation zero)."""
    dim, num_expr = poser.motion_dim, poser.avatar.head.num_expr
    rows = [np.zeros(dim, np.float32)]
    for j in range(num_expr):
        rows.append(np.zeros(dim, np.float32))
        rows[-1][j] = PROBE_EXPR
    rows.append(np.zeros(dim, np.float32))
    rows[-1][dim - 3] = PROBE_JAW
    params = [SplatStream.local(poser.params(r[None])) for r in rows]
    eyes = dataclasses.replace(params[0])
    eyes.eyes = np.tile(np.array([[0.0, PROBE_EYES, 0.0]], np.float32), (1, 2))
    return params + [eyes]


_GROUP_CACHE: dict[tuple, tuple] = {}


def stream_groups(poser: SplatPoser, count: int = NUM_GROUPS) -> list[np.ndarray]:
    """The groups of ``poser``'s avatar (:func:`motion_groups` over :func:`probe_params`), computed once per avatar,
    base pose and scene scale: every tab of a server, and its page, use the same ones."""
    key = (id(poser.avatar.gaussians), id(poser.base), poser.scene_scale, count)
    hit = _GROUP_CACHE.get(key)
    if hit is not None:
        return hit[2]
    with torch.no_grad():
        means = [animate(poser.avatar, p).means[0].numpy().astype(np.float64) for p in probe_params(poser)]
    rest = means[0]
    response = np.stack([m - rest for m in means[1:]], axis=1)
    groups = motion_groups(rest, response, count)  # metres, as CELL_M and MOTION_M
    if len(_GROUP_CACHE) >= 4:
        _GROUP_CACHE.pop(next(iter(_GROUP_CACHE)))
    # the key's objects are kept alive with the entry, so their ids cannot be reused while it is cached
    _GROUP_CACHE[key] = (poser.avatar.gaussians, poser.base, groups)
    return groups


def local_buffer(local: np.ndarray, local_cov: np.ndarray, rgba: np.ndarray) -> np.ndarray:
    """Centres ``[n, 3]`` and covariance triangles ``[n, 6]`` (a group's frame, scene units) and RGBA words ``[n]``
    → viser's splat buffer ``[n, 8]`` uint32."""
    out = np.zeros((local.shape[0], 8), np.uint32)
    out[:, 0:3] = np.ascontiguousarray(local, np.float32).view(np.uint32)
    out[:, 4:7] = np.ascontiguousarray(local_cov, np.float32).astype(np.float16).view(np.uint32)
    out[:, 7] = rgba
    return out


# ---------------------------------------------------------------------------------------------- the stream
class SplatStream:
    """One tab's light stream over a :class:`~splattalk.viewer.splats.SplatPoser` (same motion rows, same extras).

    ``transforms=False`` resends a group's Gaussians whenever it leaves the tolerance (no group transforms);
    ``groups`` replaces the motion groups (e.g. :func:`voxel_groups`), for comparisons.
    """

    def __init__(
        self,
        poser: SplatPoser,
        tolerance: float = TOLERANCE_M,
        groups: list[np.ndarray] | None = None,
        transforms: bool = True,
    ):
        self.poser = poser
        self.scale = poser.scene_scale
        self.tolerance = float(tolerance) * self.scale
        """In scene units."""
        self.use_transforms = transforms
        rest = poser.params(np.zeros((1, poser.motion_dim), np.float32))
        with torch.no_grad():
            out = poser.avatar.head(shape=poser.avatar.shape[None], **rest.torch_kwargs())
        self.root = out.joints[0, 0].numpy().astype(np.float64)
        """J₀ [3], metres: the root joint the global rotation turns about (depends on the identity shape only)."""
        self.groups = stream_groups(poser) if groups is None else groups
        self._order = np.concatenate(self.groups).astype(np.int64)
        self._offsets = np.concatenate([[0], np.cumsum([g.size for g in self.groups])]).astype(np.int64)
        n, k = poser.num, len(self.groups)
        self._local = np.zeros((n, 3))
        """What the page holds: each Gaussian's centre and covariance triangle in its group's frame."""
        self._local_cov = np.zeros((n, 6))
        self._rot = np.tile(np.eye(3), (k, 1, 1))
        """Each group node's rotation [G, 3, 3], per-axis scale [G, 3] and position [G, 3] in the head's frame."""
        self._scale = np.ones((k, 3))
        self._trans = np.zeros((k, 3))
        self._wxyz = np.tile([1.0, 0.0, 0.0, 0.0], (k, 1))
        self._status = np.zeros(k, np.int64)
        self._sent = False

    @property
    def num_groups(self) -> int:
        return len(self.groups)

    @staticmethod
    def local(params):
        """``params`` without the global rotation and translation (the head node's transform carries them)."""
        params = dataclasses.replace(params)
        params.rot = np.zeros_like(params.rot)
        params.transl = np.zeros_like(params.transl)
        return params

    def reset(self) -> None:
        """Forget what was sent (a new page): the next update sends every group."""
        self._sent = False

    def head_pose(self, params) -> tuple[np.ndarray, np.ndarray]:
        """The head node's wxyz [4] and position [3] (scene units) for one frame's ``params``."""
        rot = Rotation.from_rotvec(params.rot[0].astype(np.float64))
        position = (self.root + params.transl[0] - rot.apply(self.root)) * self.scale
        x, y, z, w = rot.as_quat()
        return np.array([w, x, y, z]), position

    def update(self, motion_row: np.ndarray, extras: np.ndarray | None = None) -> FrameUpdate:
        """One motion row (and a driven clip's extras) → the head transform, the group transforms, the groups."""
        params = self.poser.params(np.asarray(motion_row, np.float32)[None])
        if extras is not None:
            params.neck, params.transl, params.eyes = extras[None, 0:3], extras[None, 3:6], extras[None, 6:12]
        wxyz, position = self.head_pose(params)
        with torch.no_grad():
            g = animate(self.poser.avatar, self.local(params))
        means, quats, scales = g.means[0].numpy(), g.quats[0].numpy(), g.scales[0].numpy()
        centers = means.astype(np.float64) * self.scale
        cov = covariance_triu(quats, scales, self.scale).astype(np.float64)
        sigma = scales.max(1).astype(np.float64) * self.scale
        force, self._sent = not self._sent, True  # a new page gets every group, in its own frame
        _step(
            self._order,
            self._offsets,
            self._local,
            self._local_cov,
            self._rot,
            self._scale,
            self._trans,
            self._wxyz,
            centers,
            cov,
            sigma,
            self.tolerance,
            self.use_transforms,
            *SCALE_RANGE,
            force,
            self._status,
        )
        moved = np.flatnonzero(self._status)
        transforms = [(int(k), self._wxyz[k].copy(), self._trans[k].copy(), self._scale[k].copy()) for k in moved]
        resent = moved[self._status[moved] == 2]
        sent = []
        if resent.size:
            members = np.concatenate([self.groups[k] for k in resent])
            buffer = local_buffer(self._local[members], self._local_cov[members], self.poser.rgba[members])
            bounds = np.cumsum([self.groups[k].size for k in resent])[:-1]
            sent = [(int(k), b) for k, b in zip(resent, np.split(buffer, bounds))]
        return FrameUpdate(wxyz, position, sent, transforms)


class PageState:
    """What a browser holds after a run of :class:`FrameUpdate` s: each group's last buffer and transform, the
    head node's pose (for tests and the benchmark: the exact mirror of what ``gui.ViserView.show_update`` sends)."""

    def __init__(self, groups: list[np.ndarray], num: int):
        self.groups = groups
        self.buffer = np.zeros((num, 8), np.uint32)
        self.rot = np.tile(np.eye(3), (len(groups), 1, 1))
        self.scale = np.ones((len(groups), 3))
        self.trans = np.zeros((len(groups), 3))
        self.wxyz = np.array([1.0, 0.0, 0.0, 0.0])
        self.position = np.zeros(3)

    def apply(self, update: FrameUpdate) -> None:
        self.wxyz, self.position = np.asarray(update.wxyz, np.float64), np.asarray(update.position, np.float64)
        for k, wxyz, position, scale in update.transforms:
            self.rot[k] = Rotation.from_quat([wxyz[1], wxyz[2], wxyz[3], wxyz[0]]).as_matrix()
            self.trans[k], self.scale[k] = position, scale
        for k, buf in update.groups:
            self.buffer[self.groups[k]] = buf

    def world(self) -> tuple[np.ndarray, np.ndarray]:
        """World centres ``[N, 3]`` and covariance triangles ``[N, 6]`` (scene units) as the page draws them."""
        num = self.buffer.shape[0]
        mats = np.empty((num, 3, 3))
        trans = np.empty((num, 3))
        for k, idx in enumerate(self.groups):
            mats[idx] = self.rot[k] * self.scale[k][None, :]
            trans[idx] = self.trans[k]
        head = Rotation.from_quat([self.wxyz[1], self.wxyz[2], self.wxyz[3], self.wxyz[0]]).as_matrix()
        mats = head @ mats
        trans = trans @ head.T + self.position
        centers = self.buffer[:, 0:3].view(np.float32).astype(np.float64)
        triu = self.buffer[:, 4:7].copy().view(np.float16).astype(np.float64)
        world = np.einsum("nij,nj->ni", mats, centers) + trans
        cov = mats @ triu_to_full(triu) @ mats.transpose(0, 2, 1)
        return world, cov.reshape(-1, 9)[:, list(TRIU)]
