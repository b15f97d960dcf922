"""Initial Gaussians on the head mesh: where they sit, how big they are, what colour they start with.

Positions are area-uniform over the triangles that should carry Gaussians (face,
lips, eyes, mouth interior, teeth, scalp for hair, ears, neck — not the hidden
eye sockets), at least one per triangle when the count allows. Scales are flat discs the size of each
Gaussian's share of its triangle. Colours come from projecting the points into a
few training frames, counting only frames where the point is visible (a z-buffer
of the tracked mesh says so) and inside the mask; points never seen borrow the
colour of the nearest seen point of the same region.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from scipy.spatial import cKDTree

from splattalk.avatar import quaternion
from splattalk.avatar.binding import BoundGaussians, bind_world_gaussians, face_frames
from splattalk.avatar.fit_config import CARRYING_REGIONS
from splattalk.avatar.gaussians import rgb_to_sh_dc
from splattalk.head.raster import render_mesh

REGION_PRIORITY = ("teeth", "mouth_interior", "eyes", "lips", "ears", "face", "neck", "scalp", "skull")
"""When a triangle lies in several regions, the first listed names it (for colour fallback)."""
VISIBILITY_TOLERANCE = 0.004
"""A point is visible in a frame when it is within this many metres of the z-buffer's depth."""
MIN_FACING = 0.3
"""Views more grazing than this (cosine between normal and view ray) give no colour: they smear
and, at the silhouette, mix in background through a soft mask."""
MASK_MARGIN_PX = 2
"""Colour is taken only this many pixels inside the mask (soft mask edges hold background)."""


def face_regions(head) -> tuple[np.ndarray, np.ndarray]:
    """Which triangles carry Gaussians ([F] bool) and each triangle's region index into REGION_PRIORITY ([F], -1 none).

    A head model without regions (FLAME) carries Gaussians on every triangle.
    """
    faces = head.faces_np
    num_v = head.num_vertices
    region_id = np.full(len(faces), -1, np.int64)
    if not head.regions:
        return np.ones(len(faces), bool), region_id
    any_region = np.zeros(num_v, bool)
    for verts in head.regions.values():
        any_region[verts] = True
    carried = np.zeros(num_v, bool)
    for name in CARRYING_REGIONS:
        if name in head.regions:
            carried[head.regions[name]] = True
    carry = carried[faces].all(1) & any_region[faces].all(1)
    for i, name in reversed(list(enumerate(REGION_PRIORITY))):
        if name in head.regions:
            inside = np.zeros(num_v, bool)
            inside[head.regions[name]] = True
            region_id[inside[faces].all(1)] = i
    return carry, region_id


def sample_points(
    vertices: np.ndarray, faces: np.ndarray, carry: np.ndarray, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area-uniform points on the carrying triangles; at least one per triangle when ``count`` allows.

    vertices: [V, 3]; faces: [F, 3]; carry: [F] bool. Returns parent [N], barycentrics [N, 3]
    and, per point, the area its Gaussian covers [N] (triangle area / points on it).
    """
    ids = np.flatnonzero(carry)
    tri = vertices[faces[ids]]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    expected = area / area.sum() * count
    per_face = np.floor(expected).astype(np.int64)
    per_face += rng.random(len(ids)) < expected - per_face  # stochastic rounding keeps the density uniform
    if count >= len(ids):  # small triangles (lids, lip line) would otherwise often get none
        per_face = np.maximum(per_face, 1)
    keep = per_face > 0
    ids, area, per_face = ids[keep], area[keep], per_face[keep]
    parent = np.repeat(ids, per_face)
    share = np.repeat(area / per_face, per_face)
    # uniform barycentrics: fold the unit square onto the triangle
    u, v = rng.random(len(parent)), rng.random(len(parent))
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    bary = np.stack([1 - u - v, u, v], 1)
    # a lone point sits at its triangle's centroid: evenly spread coverage for small triangles
    lone = np.repeat(per_face == 1, per_face)
    bary[lone] = 1.0 / 3.0
    return parent, bary, share


def sample_colors(
    points: np.ndarray, parent: np.ndarray, normals: np.ndarray, frames: list[dict], head_faces: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean colour [N, 3] of each point over the frames where it is visible, and how much it was seen ([N] weight).

    points: [T, N, 3] world positions per frame; normals: [T, N, 3] unit triangle normals;
    frames: per frame ``{"image": [H, W, 3] float, "mask": [H, W] float, "vertices": [V, 3],
    "K": [3, 3], "viewmat": [4, 4]}``.
    """
    total = np.zeros((points.shape[1], 3))
    weight = np.zeros(points.shape[1])
    kernel = np.ones((2 * MASK_MARGIN_PX + 1, 2 * MASK_MARGIN_PX + 1), np.uint8)
    for t, f in enumerate(frames):
        h, w = f["mask"].shape
        inner = cv2.erode((f["mask"] > 0.5).astype(np.uint8), kernel) > 0
        zbuf = render_mesh(f["vertices"], head_faces, f["viewmat"], f["K"], w, h, shading=0, supersample=1).depth
        cam = points[t] @ f["viewmat"][:3, :3].T + f["viewmat"][:3, 3]
        z = cam[:, 2]
        x = f["K"][0, 0] * cam[:, 0] / np.maximum(z, 1e-6) + f["K"][0, 2]
        y = f["K"][1, 1] * cam[:, 1] / np.maximum(z, 1e-6) + f["K"][1, 2]
        col, row = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
        inside = (z > 0) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
        col, row = np.clip(col, 0, w - 1), np.clip(row, 0, h - 1)
        visible = inside & (np.abs(zbuf[row, col] - z) < VISIBILITY_TOLERANCE) & inner[row, col]
        # facing the camera: grazing views smear colours, so they count less
        view = cam / np.linalg.norm(cam, axis=1, keepdims=True)
        facing = -(normals[t] @ f["viewmat"][:3, :3].T * view).sum(1)
        wt = np.where(visible & (facing > MIN_FACING), facing**2, 0.0)
        total += wt[:, None] * f["image"][row, col]
        weight += wt
    colors = total / np.maximum(weight, 1e-8)[:, None]
    return colors, weight


def fill_unseen(colors: np.ndarray, seen: np.ndarray, positions: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Give points never seen (``seen`` False) the colour of the nearest seen point of their group (else any)."""
    out = colors.copy()
    if seen.all():
        return out
    if not seen.any():
        out[:] = 0.5
        return out
    for g in np.unique(groups[~seen]):
        need = ~seen & (groups == g)
        pool = seen & (groups == g)
        if not pool.any():
            pool = seen
        _, nearest = cKDTree(positions[pool]).query(positions[need])
        out[need] = colors[pool][nearest]
    return out


def initial_gaussians(
    head,
    shape: torch.Tensor,
    posed: torch.Tensor,
    frames: list[dict],
    count: int,
    opacity: float,
    sh_degree: int,
    rng: np.random.Generator,
) -> BoundGaussians:
    """Bound Gaussians on the carrying triangles with colours from ``frames``.

    shape: [S] identity; posed: [T, V, 3] vertices of the colour frames (``frames`` as in :func:`sample_colors`).
    """
    faces_np = head.faces_np
    with torch.no_grad():
        rest = head(shape=shape).vertices[0]
    carry, region = face_regions(head)
    parent, bary, share = sample_points(rest.double().numpy(), faces_np, carry, count, rng)
    frames_rest = face_frames(rest.double(), head.faces)
    points_rest = (rest.double().numpy()[faces_np[parent]] * bary[:, :, None]).sum(1)

    posed_np = posed.double().numpy()
    points = (posed_np[:, faces_np[parent]] * bary[None, :, :, None]).sum(2)
    tri = posed_np[:, faces_np[parent]]
    normals = np.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-20)
    colors, weight = sample_colors(points, parent, normals, frames, faces_np)
    colors = fill_unseen(colors, weight > 0.05, points_rest, region[parent])

    n = len(parent)
    sigma = 0.5 * np.sqrt(share)  # a disc whose 2σ-wide footprint tiles the triangle's share
    scales = np.stack([sigma, sigma, 0.3 * sigma], 1)
    parent_t = torch.from_numpy(parent)
    world_q = quaternion.from_matrix(frames_rest.rotation[parent_t])  # the triangle's axes: flat along its normal
    local_means, local_quats, log_scales = bind_world_gaussians(
        torch.from_numpy(points_rest), world_q, torch.from_numpy(scales), parent_t, frames_rest
    )
    sh = torch.zeros(n, (sh_degree + 1) ** 2, 3, dtype=torch.float32)
    sh[:, 0] = rgb_to_sh_dc(torch.from_numpy(np.clip(colors, 0.02, 0.98)).float())
    logit = float(np.log(opacity / (1 - opacity)))
    return BoundGaussians(
        parent=parent_t,
        local_means=local_means.float(),
        local_quats=local_quats.float(),
        log_scales=log_scales.float(),
        opacity_logits=torch.full((n,), logit),
        sh=sh,
    )
