"""gsplat backend: our arguments -> ``gsplat.rasterization`` (CUDA only).

gsplat is imported here, lazily, only when this backend is chosen. It is an optional
dependency (``pip install 'splattalk[gpu]'``; its wheel forgets to declare ``packaging``).
We call it in "classic" mode, unpacked, with the same near/far/eps2d as the other
backends; "RGB+D" gives the accumulated depth that :mod:`.api` turns into expected depth.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from splattalk.errors import SplattalkError


def gsplat_available() -> bool:
    """True when CUDA is usable and gsplat imports."""
    if not torch.cuda.is_available():
        return False
    try:
        import gsplat  # noqa: F401  (lazy: gsplat is the optional [gpu] extra)
    except Exception:
        return False
    return True


@functools.cache
def require_gsplat():
    """gsplat with its CUDA extension built, or a :class:`SplattalkError` saying what to do.

    ``import gsplat`` alone builds nothing: a JIT install compiles its CUDA code on first use
    (about a minute on an H200 with 16 cores, seen in ``scripts/gpu_check.sh``) and, where no
    CUDA toolkit is found, leaves the extension as ``None`` so that the first render would fail
    with an ``AttributeError``. Loading the extension here makes both happen once, up front.
    """
    if not torch.cuda.is_available():
        raise SplattalkError(
            "The 'gsplat' rasterizer backend needs a CUDA GPU, and torch sees none. "
            "Use backend='cpu' (or 'auto', which picks the CPU backend on this machine)."
        )
    try:
        import gsplat  # lazy: gsplat is the optional [gpu] extra
        from gsplat.cuda._backend import _C  # lazy: builds the CUDA extension on first use
    except Exception as exc:  # ImportError, or a failed CUDA extension build
        raise SplattalkError(
            f"The 'gsplat' rasterizer backend could not import gsplat ({exc}). "
            "Install it with: pip install 'splattalk[gpu]' (needs a CUDA build of torch), "
            "or use backend='cpu'."
        ) from exc
    if _C is None:
        raise SplattalkError(
            "gsplat is installed but its CUDA extension could not be built or loaded (no CUDA toolkit/nvcc "
            "found, or the build failed: see gsplat's messages above). Install a CUDA toolkit matching torch's "
            f"CUDA {torch.version.cuda}, or use backend='cpu'."
        )
    return gsplat


def render_gsplat(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,  # [N, D] or SH [N, K, 3]
    viewmats: Tensor,  # [C, 4, 4]
    Ks: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    backgrounds: Tensor | None,  # [C, D]
    sh_degree: int | None,
    render_depth: bool,
    near_plane: float,
    far_plane: float,
    eps2d: float,
    batched: bool,
) -> tuple[list[Tensor], list[Tensor], Tensor, Tensor, Tensor]:
    """Same contract as :func:`.reference.render_reference` (CUDA tensors)."""
    gsplat = require_gsplat()
    renders, alphas, meta = gsplat.rasterization(
        means,
        quats,
        scales,
        opacities,
        colors,
        viewmats,
        Ks,
        width,
        height,
        near_plane=near_plane,
        far_plane=far_plane,
        eps2d=eps2d,
        sh_degree=sh_degree,
        packed=False,
        backgrounds=backgrounds,
        render_mode="RGB+D" if render_depth else "RGB",
        rasterize_mode="classic",
    )
    radii = meta["radii"]
    if radii.dim() == 2:  # gsplat < 1.5: one radius per Gaussian
        radii = torch.stack([radii, radii], dim=-1)
    means2d = meta["means2d"]  # [C, N, 2], in gsplat's graph
    if means2d.requires_grad:
        means2d.retain_grad()
    if not batched and means2d.requires_grad:
        means2d = _GradMirror.attach(means2d)
    elif not batched:
        means2d = means2d[0]
    return list(renders.unbind(0)), list(alphas.unbind(0)), means2d, radii.to(torch.int32), meta["depths"]


class _GradMirror:
    """gsplat keeps means2d as [1, N, 2] inside its graph; a view of it would never receive
    a gradient. So single-camera callers get a detached [N, 2] leaf whose ``.grad`` a hook
    on gsplat's tensor fills during backward (same values, same accumulation rule)."""

    @staticmethod
    def attach(means2d_batched: Tensor) -> Tensor:
        mirror = means2d_batched[0].detach().requires_grad_(True)

        def hook(grad: Tensor) -> None:
            g = grad[0].detach()
            mirror.grad = g.clone() if mirror.grad is None else mirror.grad + g

        means2d_batched.register_hook(hook)
        return mirror
