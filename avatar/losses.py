"""Fitting losses: L1 + λ·D-SSIM on the image, and the binding regularisers (GaussianAvatars' form).

The regularisers act in each Gaussian's triangle-local units (1 = the parent
triangle's size), so they mean the same on small lip triangles and large scalp
ones: offsets beyond ``offset_threshold`` and scales beyond ``scale_threshold``
are penalised linearly (hinge), which lets Gaussians move freely close to their
triangle but keeps them from drifting off it — so the mesh still drives them
under motions the video never showed.
"""

from __future__ import annotations

import torch

from splattalk.avatar.binding import BoundGaussians
from splattalk.avatar.metrics import ssim_map


def photometric(render: torch.Tensor, target: torch.Tensor, ssim_weight: float) -> torch.Tensor:
    """(1 - λ)·L1 + λ·(1 - SSIM) of [H, W, 3] images (3DGS's loss; GaussianAvatars uses λ = 0.2)."""
    l1 = (render - target).abs().mean()
    if ssim_weight == 0:
        return l1
    return (1 - ssim_weight) * l1 + ssim_weight * (1 - ssim_map(render, target).mean())


def binding_regularizer(
    bound: BoundGaussians, offset_weight: float, offset_threshold: float, scale_weight: float, scale_threshold: float
) -> torch.Tensor:
    """Mean hinge penalties on local offset length and local scale (GaussianAvatars' position/scaling losses)."""
    offset = torch.relu(bound.local_means.norm(dim=-1) - offset_threshold).mean()
    scale = torch.relu(torch.exp(bound.log_scales) - scale_threshold).mean()
    return offset_weight * offset + scale_weight * scale
