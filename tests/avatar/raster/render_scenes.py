"""What the rasterizer tests share besides the scenes (those are ``splattalk.avatar.raster.scenes``)."""

from __future__ import annotations

import torch

PARAMS = ("means", "quats", "scales", "opacities", "colors", "viewmat", "background")


def leaves(scene: dict[str, torch.Tensor], dtype=torch.float32) -> dict[str, torch.Tensor]:
    """Fresh leaf tensors (requires_grad) of the scene's parameters."""
    return {k: v.detach().to(dtype).clone().requires_grad_(True) for k, v in scene.items()}


def weights(shape: tuple[int, ...], seed: int, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Norm-wise relative error ||a - b|| / ||b|| (0 when both vanish)."""
    a, b = a.double(), b.double()
    denom = b.norm().item()
    diff = (a - b).norm().item()
    return diff / denom if denom > 0 else diff


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    if a.norm() == 0 and b.norm() == 0:
        return 1.0
    return torch.nn.functional.cosine_similarity(a, b, dim=0).item()
