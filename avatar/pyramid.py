"""Coarse-to-fine fitting: the early iterations see the frames at half resolution.

An iteration's cost grows with the pixels it rasterizes, while the early work
(colours, coarse placement, densification) needs no fine detail. So the first
``coarse_fraction`` of the iterations render through the camera with halved
intrinsics against 2×2-averaged targets, and the rest at the full resolution.
Halving K's first two rows keeps the image-plane geometry (pixel centres at
+0.5 map to centres at +0.5), so the same Gaussians line up at both levels.
"""

from __future__ import annotations

import torch

from splattalk.avatar.view import Camera

COARSE_FACTOR = 2
"""Downsampling of the coarse level (per side)."""
MIN_COARSE_SIDE = 128
"""No coarse level when it would be smaller than this (tiny test runs fit at their own resolution)."""


def has_coarse_level(width: int, height: int) -> bool:
    """Whether images of this size have a coarse level (it would not be smaller than ``MIN_COARSE_SIDE``)."""
    return min(width, height) // COARSE_FACTOR >= MIN_COARSE_SIDE


def is_coarse(iteration: int, iterations: int, coarse_fraction: float, width: int, height: int) -> bool:
    """Whether ``iteration`` (1-based) trains at the coarse level."""
    return has_coarse_level(width, height) and iteration <= coarse_fraction * iterations


def coarse_camera(camera: Camera, factor: int = COARSE_FACTOR) -> Camera:
    """The camera whose image is ``camera``'s averaged over factor×factor blocks (a trailing odd row/column dropped)."""
    K = camera.K.clone()
    K[:2] /= factor
    return Camera(camera.viewmat, K, camera.width // factor, camera.height // factor)


def downsample(image: torch.Tensor, factor: int = COARSE_FACTOR) -> torch.Tensor:
    """[H, W, C] → [H // factor, W // factor, C], each pixel the mean of its block (what a coarser sensor sees)."""
    x = image.permute(2, 0, 1)[None]
    return torch.nn.functional.avg_pool2d(x, factor)[0].permute(1, 2, 0)


def training_view(camera: Camera, target: torch.Tensor, coarse: bool) -> tuple[Camera, torch.Tensor]:
    """Camera and [H, W, 3] target of one iteration at its level."""
    return (coarse_camera(camera), downsample(target)) if coarse else (camera, target)
