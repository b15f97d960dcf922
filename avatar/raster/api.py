"""One entry point to render 3D Gaussians, differentiably: :func:`rasterize`.

Backends (all follow gsplat's numerics, see :mod:`.conventions`):

- ``"gsplat"``: ``gsplat.rasterization`` on CUDA (optional ``[gpu]`` extra);
- ``"cpu"``: own Numba kernels with hand-written backward (:mod:`.cpu`);
- ``"reference"``: plain pure-torch oracle, slow (:mod:`.reference`);
- ``"auto"``: gsplat when the inputs are on CUDA and gsplat imports, else cpu.

Densification reads, after ``loss.backward()``, ``info["means2d"].grad`` ([N, 2], the
gradient of the loss w.r.t. each Gaussian's projected centre in pixels) and
``info["radii"] > 0`` (which Gaussians were rendered), on every backend alike.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

import splattalk.avatar.raster.conventions as rc
from splattalk.avatar.raster.cpu.backend import render_cpu
from splattalk.avatar.raster.gsplat import gsplat_available, render_gsplat, require_gsplat
from splattalk.avatar.raster.reference import render_reference
from splattalk.errors import SplattalkError

Backend = Literal["auto", "gsplat", "cpu", "reference"]
BACKENDS = ("auto", "gsplat", "cpu", "reference")


def choose_backend(backend: str, device: torch.device) -> str:
    """Resolve "auto": gsplat for CUDA inputs when it imports, else the CPU backend."""
    if backend not in BACKENDS:
        raise SplattalkError(f"Unknown rasterizer backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    if backend != "auto":
        return backend
    return "gsplat" if device.type == "cuda" and gsplat_available() else "cpu"


def _check(name: str, t: Tensor, shape: tuple) -> None:
    ok = t.dim() == len(shape) and all(s is None or s == d for s, d in zip(shape, t.shape, strict=True))
    if not ok:
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise SplattalkError(f"rasterize: {name} has shape {list(t.shape)}, expected {want}.")


def rasterize(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    viewmat: Tensor,
    K: Tensor,
    width: int,
    height: int,
    background: Tensor | None = None,
    backend: Backend = "auto",
    *,
    sh_degree: int | None = None,
    near_plane: float = rc.NEAR_PLANE,
    far_plane: float = rc.FAR_PLANE,
    eps2d: float = rc.EPS2D,
    return_depth: bool = False,
    return_info: bool = False,
):
    """Render N 3D Gaussians into one camera (or a batch of C cameras).

    Args:
        means: [N, 3] centres, world space.
        quats: [N, 4] rotations, wxyz, need not be normalised.
        scales: [N, 3] standard deviations along the local axes (linear, not log).
        opacities: [N] in [0, 1] (already activated).
        colors: [N, D] colours / features, or [N, K, 3] SH coefficients with ``sh_degree``.
        viewmat: [4, 4] world -> camera (OpenCV: x right, y down, z forward), or [C, 4, 4].
        K: [3, 3] pinhole intrinsics, or [C, 3, 3].
        width, height: image size in pixels.
        background: [D] (or [C, D]) colour behind the Gaussians; None = black.
        backend: "auto" | "gsplat" | "cpu" | "reference".
        sh_degree: 0..3 when ``colors`` holds SH coefficients ((sh_degree+1)^2 <= K).
        near_plane, far_plane: camera-space depth range kept.
        eps2d: blur added to the projected 2D covariance.
        return_depth: also return the expected depth [H, W, 1] (0 where alpha is 0).
        return_info: also return ``info``, a dict:
            ``means2d`` [N, 2] (or [C, N, 2]) projected centres in pixels; after
            ``loss.backward()`` its ``.grad`` holds dLoss/dmeans2d (zeros where unseen);
            ``radii`` [N] int32 (or [C, N]) screen radius in pixels, 0 = not rendered;
            ``depths`` [N] (or [C, N]) camera-space z; ``backend``; ``width``; ``height``.
            These live on the backend's device (CPU for "cpu" even with CUDA inputs).

    Returns:
        ``(rgb [H, W, D], alpha [H, W, 1])``, with a leading [C] for a batch of cameras,
        then ``depth`` if ``return_depth``, then ``info`` if ``return_info``.
        Differentiable w.r.t. means, quats, scales, opacities, colors (or SH), background
        and the view matrix (not K). Everything is float32 except on "reference".
    """
    batched = viewmat.dim() == 3
    viewmats = viewmat if batched else viewmat[None]
    _check("viewmat", viewmats, (None, 4, 4))
    n_cams = viewmats.shape[0]
    _check("K", K if K.dim() == 3 else K[None], (n_cams if K.dim() == 3 else 1, 3, 3))
    Ks = K if K.dim() == 3 else K[None].expand(n_cams, 3, 3)
    _check("means", means, (None, 3))
    n = means.shape[0]
    _check("quats", quats, (n, 4))
    _check("scales", scales, (n, 3))
    _check("opacities", opacities, (n,))
    if sh_degree is None:
        _check("colors", colors, (n, None))
    else:
        if not 0 <= sh_degree <= 3:
            raise SplattalkError(f"rasterize: sh_degree must be 0..3, got {sh_degree}.")
        _check("colors (SH coefficients)", colors, (n, None, 3))
        if colors.shape[1] < rc.sh_coeff_count(sh_degree):
            raise SplattalkError(
                f"rasterize: sh_degree={sh_degree} needs {rc.sh_coeff_count(sh_degree)} SH "
                f"coefficients per Gaussian, colors has {colors.shape[1]}."
            )
    if width <= 0 or height <= 0:
        raise SplattalkError(f"rasterize: image size must be positive, got {width}x{height}.")
    n_ch = 3 if sh_degree is not None else colors.shape[1]
    backgrounds = None
    if background is not None:
        backgrounds = background if background.dim() == 2 else background[None]
        _check("background", backgrounds, (n_cams if background.dim() == 2 else 1, n_ch))
        backgrounds = backgrounds.expand(n_cams, n_ch)

    device = means.device
    chosen = choose_backend(backend, device)
    args = [means, quats, scales, opacities, colors, viewmats, Ks]
    if chosen == "gsplat":
        require_gsplat()
        render_fn = render_gsplat
        args = [a.float().cuda() for a in args]
        bgs = None if backgrounds is None else backgrounds.float().cuda()
    elif chosen == "cpu":
        render_fn = render_cpu
        args = [a.float().cpu() for a in args]
        bgs = None if backgrounds is None else backgrounds.float().cpu()
    else:
        render_fn = render_reference
        bgs = backgrounds
    renders, alphas, means2d, radii, depths = render_fn(
        *args, width, height, bgs, sh_degree, return_depth, near_plane, far_plane, eps2d, batched
    )
    if means2d.requires_grad and means2d.grad_fn is not None:
        means2d.retain_grad()
    # Single camera: use the backend's tensors as they are; stacking, slicing or moving
    # would add copies to the backward pass too.
    render = torch.stack(renders) if batched else renders[0]
    alpha = torch.stack(alphas) if batched else alphas[0]
    render, alpha = render.to(device), alpha.to(device)
    rgb = render if render.shape[-1] == n_ch else render[..., :n_ch]
    outputs = [rgb, alpha]
    if return_depth:
        outputs.append(render[..., n_ch:] / alpha.clamp_min(rc.DEPTH_ALPHA_FLOOR))
    if return_info:
        # torch.maximum: a reduction over the last dim (size 2) costs milliseconds here
        radius = torch.maximum(radii[..., 0], radii[..., 1]).to(torch.int32)
        outputs.append(
            {
                "means2d": means2d,
                "radii": radius if batched else radius[0],
                "depths": depths if batched else depths[0],
                "backend": chosen,
                "width": width,
                "height": height,
                "n_cameras": n_cams,
            }
        )
    return tuple(outputs)
