"""Seeded Gaussian scenes with every awkward case a rasterizer must get right.

The backends' tests render them, and ``scripts/render_test_scene.py`` draws the same
scene for the docs; cameras are OpenCV (x right, y down, z forward).
"""

from __future__ import annotations

import math

import torch

WIDTH, HEIGHT = 72, 56  # not multiples of the 16-pixel tile: partial tiles get exercised


def look_from(yaw: float, pitch: float, shift=(0.05, -0.03, 0.1)) -> torch.Tensor:
    """A rigid world -> camera matrix: rotation by yaw then pitch, small translation."""
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    ry = torch.tensor([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    rx = torch.tensor([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    view = torch.eye(4)
    view[:3, :3] = rx @ ry
    view[:3, 3] = torch.tensor(shift)
    return view


def scene_K(width: int = WIDTH, height: int = HEIGHT, focal: float = 70.0) -> torch.Tensor:
    """[3, 3] the scenes' camera: non-square pixels and an off-centre principal point, on purpose."""
    return torch.tensor([[focal, 0.0, width / 2 - 0.7], [0.0, focal * 1.05, height / 2 + 0.4], [0.0, 0.0, 1.0]])


def random_scene(
    n: int = 300,
    seed: int = 0,
    *,
    edge_cases: bool = True,
    sh_degree: int | None = None,
    n_channels: int = 3,
    spread: float = 1.3,
) -> dict[str, torch.Tensor]:
    """Gaussians in front of the camera ``look_from(0.2, -0.1)`` (points are placed in camera
    space and mapped back to world), plus, if ``edge_cases``, one of each awkward kind:
    behind the camera, inside the near plane, off-screen, off-screen but large enough to
    reach in (the clamped-Jacobian branch), huge (covers the image), needle-thin, fully
    transparent, fully opaque, and two at exactly the same depth. ``spread``: lateral extent
    as a multiple of depth (1.3 fills a WIDTH x HEIGHT view, and overflows it a little)."""
    g = torch.Generator().manual_seed(seed)
    z = 1.5 + 2.5 * torch.rand(n, generator=g)
    xy = (torch.rand(n, 2, generator=g) - 0.5) * spread * z[:, None]
    cam = torch.cat([xy, z[:, None]], 1)
    quats = torch.randn(n, 4, generator=g)
    scales = torch.exp(math.log(0.01) + (math.log(0.25) - math.log(0.01)) * torch.rand(n, 3, generator=g))
    opacities = 0.05 + 0.9 * torch.rand(n, generator=g)
    if edge_cases:
        extra = [
            # camera-space centre,   scales,              opacity
            ((0.1, 0.0, -1.0), (0.2, 0.2, 0.2), 0.9),  # behind the camera
            ((0.0, 0.0, 0.005), (0.1, 0.1, 0.1), 0.9),  # inside the near plane
            ((9.0, 0.0, 2.0), (0.05, 0.05, 0.05), 0.9),  # off-screen
            ((1.9, 0.3, 2.0), (0.45, 0.3, 0.3), 0.7),  # off-screen centre, reaches in
            ((0.0, -1.5, 2.5), (0.2, 0.9, 0.2), 0.6),  # clamped in y too, reaches in
            ((0.0, 0.1, 3.0), (3.0, 2.0, 2.5), 0.5),  # huge: covers the whole image
            ((-0.3, 0.2, 2.2), (0.6, 0.0004, 0.0004), 0.95),  # needle-thin
            ((0.2, -0.2, 1.8), (0.2, 0.2, 0.2), 0.0),  # fully transparent
            ((0.25, 0.05, 2.4), (0.15, 0.1, 0.12), 1.0),  # fully opaque (alpha clamps)
            ((-0.2, -0.1, 2.0), (0.1, 0.15, 0.1), 0.8),  # same depth as the next one
            ((-0.15, -0.05, 2.0), (0.12, 0.1, 0.1), 0.8),
        ]
        cam = torch.cat([cam, torch.tensor([e[0] for e in extra])])
        scales = torch.cat([scales, torch.tensor([e[1] for e in extra])])
        opacities = torch.cat([opacities, torch.tensor([e[2] for e in extra])])
        quats = torch.cat([quats, torch.randn(len(extra), 4, generator=g)])
    viewmat = look_from(0.2, -0.1)
    rot, trans = viewmat[:3, :3], viewmat[:3, 3]
    means = (cam - trans) @ rot  # camera -> world
    total = means.shape[0]
    if sh_degree is None:
        colors = torch.rand(total, n_channels, generator=g)
    else:
        colors = 0.4 * torch.randn(total, (sh_degree + 1) ** 2, 3, generator=g)
    background = torch.rand(3 if sh_degree is not None else n_channels, generator=g)
    return {
        "means": means,
        "quats": quats,
        "scales": scales,
        "opacities": opacities,
        "colors": colors,
        "viewmat": viewmat,
        "background": background,
    }
