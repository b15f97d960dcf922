"""A fixed pinhole camera and the one call that renders posed Gaussians through it (training, evaluation, exports)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from splattalk.avatar.gaussians import Gaussians
from splattalk.avatar.raster import rasterize


@dataclass
class Camera:
    viewmat: torch.Tensor
    """[4, 4] world→camera (OpenCV)"""
    K: torch.Tensor
    """[3, 3] intrinsics in pixels"""
    width: int
    height: int

    def to(self, device) -> Camera:
        return Camera(self.viewmat.to(device), self.K.to(device), self.width, self.height)


def render_gaussians(
    g: Gaussians,
    camera: Camera,
    background: torch.Tensor,
    backend: str = "auto",
    sh_degree: int | None = None,
    return_info: bool = False,
):
    """One frame of Gaussians (means [N, 3] …) → rgb [H, W, 3], alpha [H, W, 1] (+ info, see ``rasterize``)."""
    degree = g.sh_degree if sh_degree is None else min(sh_degree, g.sh_degree)
    return rasterize(
        g.means,
        g.quats,
        g.scales,
        g.opacities,
        g.sh,
        camera.viewmat,
        camera.K,
        camera.width,
        camera.height,
        background,
        backend,
        sh_degree=degree,
        return_info=return_info,
    )
