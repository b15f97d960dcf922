"""Gaussians bound to head-mesh triangles (GaussianAvatars-style; our own code).

Every Gaussian has a parent triangle. Its mean, rotation and scale live in that
triangle's local frame — origin at the centroid, axes from the first edge and
the normal, unit length the triangle's size — so whatever poses the mesh
(expression, jaw, neck, head rotation) poses the Gaussians with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from splattalk.avatar import quaternion
from splattalk.avatar.gaussians import Gaussians


@dataclass
class FaceFrames:
    origin: torch.Tensor
    """[..., F, 3] triangle centroids"""
    rotation: torch.Tensor
    """[..., F, 3, 3] columns: first-edge direction, in-plane perpendicular, normal"""
    scale: torch.Tensor
    """[..., F] triangle size: mean edge length"""


def face_frames(vertices: torch.Tensor, faces: torch.Tensor) -> FaceFrames:
    """Local frames of all triangles. vertices: [..., V, 3], faces: [F, 3]."""
    tri = vertices[..., faces, :]  # [..., F, 3, 3]
    v0, v1, v2 = tri.unbind(-2)
    e1 = v1 - v0
    e2 = v2 - v0
    normal = torch.cross(e1, e2, dim=-1)
    n = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-20)
    t = e1 / e1.norm(dim=-1, keepdim=True).clamp_min(1e-20)
    b = torch.cross(n, t, dim=-1)
    rotation = torch.stack([t, b, n], dim=-1)
    scale = (e1.norm(dim=-1) + e2.norm(dim=-1) + (v2 - v1).norm(dim=-1)) / 3
    return FaceFrames(origin=tri.mean(-2), rotation=rotation, scale=scale)


@dataclass
class BoundGaussians:
    """Trainable Gaussian parameters in triangle-local coordinates (pre-activation)."""

    parent: torch.Tensor
    """[N] int64 parent triangle (not trained)"""
    local_means: torch.Tensor
    """[N, 3] offset from the centroid in units of the triangle's size"""
    local_quats: torch.Tensor
    """[N, 4] wxyz rotation relative to the triangle frame (unnormalized)"""
    log_scales: torch.Tensor
    """[N, 3] log of the scale in units of the triangle's size"""
    opacity_logits: torch.Tensor
    """[N] sigmoid → opacity"""
    sh: torch.Tensor
    """[N, K, 3] spherical-harmonics colour coefficients"""

    TRAINABLE = ("local_means", "local_quats", "log_scales", "opacity_logits", "sh")

    @property
    def num(self) -> int:
        return self.parent.shape[0]

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"parent": self.parent, **{k: getattr(self, k) for k in self.TRAINABLE}}

    def subset(self, keep: torch.Tensor) -> BoundGaussians:
        return BoundGaussians(**{k: v[keep] for k, v in self.tensors().items()})


def pose_gaussians(bound: BoundGaussians, frames: FaceFrames) -> Gaussians:
    """World-space Gaussians for posed triangle frames (one frame or a batch: leading dims of ``frames``)."""
    p = bound.parent
    rot = frames.rotation[..., p, :, :]  # [..., N, 3, 3]
    size = frames.scale[..., p, None]  # [..., N, 1]
    offset = bound.local_means * size
    # R @ x as multiply-adds over the columns: far faster than N tiny matmuls on the CPU
    means = rot[..., 0] * offset[..., 0:1] + rot[..., 1] * offset[..., 1:2] + rot[..., 2] * offset[..., 2:3]
    means = means + frames.origin[..., p, :]
    face_q = quaternion.from_matrix(frames.rotation)[..., p, :]  # once per triangle, then gathered
    quats = quaternion.normalize(quaternion.multiply(face_q, quaternion.normalize(bound.local_quats)))
    scales = torch.exp(bound.log_scales) * size
    return Gaussians(
        means=means, quats=quats, scales=scales, opacities=torch.sigmoid(bound.opacity_logits), sh=bound.sh
    )


def bind_world_gaussians(
    means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, parent: torch.Tensor, frames: FaceFrames
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pose_gaussians` for world-space means [N,3], quats [N,4], scales [N,3] and parents [N].

    Returns local means, local quats and log scales (for initialisation and re-binding).
    """
    rot = frames.rotation[parent]
    size = frames.scale[parent, None]
    local_means = (rot.transpose(-1, -2) @ (means - frames.origin[parent])[..., None])[..., 0] / size
    face_q = quaternion.from_matrix(rot)
    conj = face_q * torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=face_q.dtype)
    local_quats = quaternion.multiply(conj, quaternion.normalize(quats))
    log_scales = torch.log(scales / size)
    return local_means, local_quats, log_scales
