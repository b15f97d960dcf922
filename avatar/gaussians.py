"""Plain containers for 3D Gaussians."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from splattalk.avatar import quaternion

SH_C0 = 0.28209479177387814
"""Zeroth-order spherical-harmonics constant: rgb = SH_C0 · dc + 0.5."""


@dataclass
class Gaussians:
    """Gaussians in world space, ready for ``avatar.raster.rasterize``. Leading batch dims allowed."""

    means: torch.Tensor
    """[..., N, 3]"""
    quats: torch.Tensor
    """[..., N, 4] wxyz, unit"""
    scales: torch.Tensor
    """[..., N, 3] linear (not log)"""
    opacities: torch.Tensor
    """[..., N] in [0, 1]"""
    sh: torch.Tensor
    """[N, K, 3] spherical-harmonics coefficients, K = (sh_degree + 1)²; shared over the batch"""

    @property
    def sh_degree(self) -> int:
        return int(round(self.sh.shape[-2] ** 0.5)) - 1

    @property
    def num(self) -> int:
        return self.means.shape[-2]

    def frame(self, i: int) -> Gaussians:
        """One frame of a batch."""
        return Gaussians(
            self.means[i],
            self.quats[i],
            self.scales[i],
            self.opacities[i] if self.opacities.dim() > 1 else self.opacities,
            self.sh,
        )

    def covariances(self) -> torch.Tensor:
        """[..., N, 3, 3] world covariances R S² Rᵀ (what viser's splat viewer takes)."""
        rot = quaternion.to_matrix(self.quats)
        m = rot * self.scales[..., None, :]
        return m @ m.transpose(-1, -2)

    def rgb(self) -> torch.Tensor:
        """[N, 3] view-independent colour (degree-0 term only), clamped to [0, 1]."""
        return (SH_C0 * self.sh[..., 0, :] + 0.5).clamp(0, 1)


def rgb_to_sh_dc(rgb: torch.Tensor) -> torch.Tensor:
    return (rgb - 0.5) / SH_C0
