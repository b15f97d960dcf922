"""The avatar: a head model, an identity, Gaussians bound to its triangles — and ``animate``."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from splattalk.avatar.binding import BoundGaussians, face_frames, pose_gaussians
from splattalk.avatar.binding_fast import FastPoser
from splattalk.avatar.gaussians import Gaussians
from splattalk.head.model import HeadModel
from splattalk.head.params import HeadParams


@dataclass
class Avatar:
    head: HeadModel
    shape: torch.Tensor
    """[S] identity shape coefficients (from tracking)"""
    gaussians: BoundGaussians
    config: dict = field(default_factory=dict)
    """The fitting configuration (saved with the avatar)"""
    _poser: object = field(default=None, repr=False, compare=False)
    _poser_key: tuple = field(default=(), repr=False, compare=False)

    @property
    def model_id(self) -> str:
        return self.head.model_id


def posed_vertices(avatar: Avatar, params: HeadParams) -> torch.Tensor:
    """Head-mesh vertices [T, V, 3] for T frames of parameters."""
    kw = params.torch_kwargs(device=avatar.shape.device)
    return avatar.head(shape=avatar.shape, **kw).vertices


def animate(avatar: Avatar, params: HeadParams) -> Gaussians:
    """World-space Gaussians for T frames of head parameters: means [T, N, 3], quats [T, N, 4], … (sh shared).

    Pure function: runs the head model (LBS) then the triangle binding. With
    gradients enabled on the avatar's tensors it is differentiable (fitting);
    under ``torch.no_grad()`` or with frozen tensors it takes the numba path
    (playback: ~1 ms per frame for 20k Gaussians plus the head model).
    """
    vertices = posed_vertices(avatar, params)
    trainable = (avatar.shape, *(getattr(avatar.gaussians, k) for k in BoundGaussians.TRAINABLE))
    if torch.is_grad_enabled() and any(t.requires_grad for t in trainable):
        return animate_vertices(avatar.gaussians, vertices, avatar.head.faces)
    return _animate_fast(avatar, vertices.detach())


def animate_vertices(bound: BoundGaussians, vertices: torch.Tensor, faces: torch.Tensor) -> Gaussians:
    """Gaussians for already posed vertices [..., V, 3] of a mesh with ``faces`` [F, 3] (differentiable)."""
    return pose_gaussians(bound, face_frames(vertices, faces))


def _animate_fast(avatar: Avatar, vertices: torch.Tensor) -> Gaussians:
    g = avatar.gaussians
    key = tuple(
        (t.data_ptr(), t._version, tuple(t.shape)) for t in (g.parent, g.local_means, g.local_quats, g.log_scales)
    )
    if avatar._poser is None or avatar._poser_key != key:
        avatar._poser = FastPoser(
            g.parent.numpy(),
            g.local_means.detach().numpy(),
            g.local_quats.detach().numpy(),
            g.log_scales.detach().numpy(),
            avatar.head.faces.numpy(),
        )
        avatar._poser_key = key
    means, quats, scales = [], [], []
    for frame in vertices.cpu().numpy():
        m, q, s = avatar._poser.pose(frame)
        means.append(torch.from_numpy(m.copy()))
        quats.append(torch.from_numpy(q.copy()))
        scales.append(torch.from_numpy(s.copy()))
    return Gaussians(
        means=torch.stack(means),
        quats=torch.stack(quats),
        scales=torch.stack(scales),
        opacities=torch.sigmoid(g.opacity_logits.detach()),
        sh=g.sh.detach(),
    )
