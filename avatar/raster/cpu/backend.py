"""CPU backend: own Numba kernels wrapped as torch autograd Functions.

Three differentiable stages, each with a hand-written backward (no autograd through
per-pixel loops):

- ``_Project``: means, quats, scales (+ camera) -> means2d, conics, depths, radii
  (:mod:`.project`);
- ``_ShColor``: SH coefficients, means, camera centre -> colours (:mod:`.sh`);
- ``_Composite``: means2d, conics, colours, opacities, background -> image, alpha
  (:mod:`.composite`).

Keeping ``means2d`` a real tensor between the stages is what lets callers read
``dL/dmeans2d`` (densification) the way gsplat's ``meta["means2d"]`` gives it.
The first call compiles the kernels (cached on disk afterwards, ``cache=True``).

Without gradients (``torch.no_grad()``, or no input that requires one: export, the viewer)
an RGB render skips the autograd Functions and composites with the forward-only kernel of
:mod:`.forward` (same image to float rounding, ~1.7x less compositing work);
:func:`training_kernels` turns that off (benchmarks, tests).
"""

from __future__ import annotations

import os

# Numba's OpenMP pool (system libgomp) and torch's (its own bundled libgomp) share the same
# cores; workers that spin after every parallel region starve the other runtime's threads.
# Sleeping workers cost ~50 us per region and save far more. Must precede Numba's pool start.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from contextlib import contextmanager  # noqa: E402
from contextvars import ContextVar  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

import splattalk.avatar.raster.conventions as rc  # noqa: E402
from splattalk.avatar.raster.cpu import binning, composite, forward, project  # noqa: E402
from splattalk.avatar.raster.cpu import sh as sh_kernels  # noqa: E402


def _np(t: Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def _np_or_zeros(t: Tensor | None, shape: tuple[int, ...]) -> np.ndarray:
    return np.zeros(shape, np.float32) if t is None else _np(t.float())


class _Project(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means, quats, scales, viewmats, Ks, opacities, width, height, near, far, eps2d):
        n, n_cams = means.shape[0], viewmats.shape[0]
        arrays = [_np(t) for t in (means, quats, scales, opacities, viewmats, Ks)]
        means2d = np.empty((n_cams, n, 2), np.float32)
        conics = np.empty((n_cams, n, 3), np.float32)
        depths = np.empty((n_cams, n), np.float32)
        radii = np.empty((n_cams, n, 2), np.int32)
        project.project_forward(*arrays, width, height, near, far, eps2d, means2d, conics, depths, radii)
        ctx.arrays = arrays
        ctx.size = (width, height)
        ctx.outputs = (radii, conics)
        radii_t = torch.from_numpy(radii)
        ctx.mark_non_differentiable(radii_t)
        return torch.from_numpy(means2d), torch.from_numpy(conics), torch.from_numpy(depths), radii_t

    @staticmethod
    def backward(ctx, v_means2d, v_conics, v_depths, _v_radii):
        means, quats, scales, _, viewmats, Ks = ctx.arrays
        radii, conics = ctx.outputs
        n_cams, n = radii.shape[:2]
        v_means = np.empty((n, 3), np.float32)
        v_quats = np.empty((n, 4), np.float32)
        v_scales = np.empty((n, 3), np.float32)
        v_cams = np.empty((n_cams, n, 12), np.float64)
        project.project_backward(
            means,
            quats,
            scales,
            viewmats,
            Ks,
            *ctx.size,
            radii,
            conics,
            _np_or_zeros(v_means2d, (n_cams, n, 2)),
            _np_or_zeros(v_conics, (n_cams, n, 3)),
            _np_or_zeros(v_depths, (n_cams, n)),
            v_means,
            v_quats,
            v_scales,
            v_cams,
        )
        v_viewmats = None
        if ctx.needs_input_grad[3]:
            per_cam = v_cams.sum(axis=1)
            v_viewmats = torch.zeros(n_cams, 4, 4)
            v_viewmats[:, :3, :3] = torch.from_numpy(per_cam[:, :9].reshape(n_cams, 3, 3)).float()
            v_viewmats[:, :3, 3] = torch.from_numpy(per_cam[:, 9:]).float()
        return (
            torch.from_numpy(v_means),
            torch.from_numpy(v_quats),
            torch.from_numpy(v_scales),
            v_viewmats,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        )


class _ShColor(torch.autograd.Function):
    @staticmethod
    def forward(ctx, sh, means, campos, degree, radii):
        arrays = (_np(sh), _np(means), _np(campos).astype(np.float64))
        colors = np.empty((campos.shape[0], means.shape[0], 3), np.float32)
        sh_kernels.sh_forward(*arrays, degree, radii, colors)
        ctx.state = (arrays, degree, radii, colors)
        return torch.from_numpy(colors)

    @staticmethod
    def backward(ctx, v_colors):
        (sh, means, campos), degree, radii, colors = ctx.state
        v_sh = np.empty(sh.shape, np.float32)
        v_means = np.empty(means.shape, np.float32)
        v_campos = np.empty((campos.shape[0], means.shape[0], 3), np.float64)
        sh_kernels.sh_backward(sh, means, campos, degree, radii, colors, _np(v_colors), v_sh, v_means, v_campos)
        v_cam = torch.from_numpy(v_campos.sum(axis=1)).float() if ctx.needs_input_grad[2] else None
        return torch.from_numpy(v_sh), torch.from_numpy(v_means), v_cam, None, None


# Below this many pixels the compositing kernels run on one thread: waking a thread pool
# costs more than it saves (and on a busy machine, far more).
PARALLEL_MIN_PIXELS = 128 * 128


@contextmanager
def _dynamic_tiles(parallel: bool):
    if not parallel:
        yield
        return
    previous = numba.set_parallel_chunksize(composite.TILE_CHUNK)
    try:
        yield
    finally:
        numba.set_parallel_chunksize(previous)


def _channel_chunks(n_ch: int) -> list[tuple[int, int]]:
    step = binning.CHANNELS
    return [(c, min(c + step, n_ch)) for c in range(0, n_ch, step)]


class _Composite(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, colors, opacities, background, radii, depths, width, height):
        ts = rc.TILE_SIZE
        tiles_x, tiles_y = -(-width // ts), -(-height // ts)
        visible = np.flatnonzero((radii > 0).all(axis=1))
        order = visible[np.argsort(depths[visible], kind="stable")].astype(np.int32)
        means2d_np = _np(means2d)
        offsets, isect_gid = binning.bin_tiles(order, means2d_np, radii, ts, tiles_x, tiles_y)
        geom = binning.gather_geometry(isect_gid, means2d_np, _np(conics), _np(opacities))
        feats, bg = _np(colors), _np(background)
        n_ch = feats.shape[1]
        image = np.empty((height, width, n_ch), np.float32)
        trans = np.empty((height, width), np.float32)
        last = np.empty((height, width), np.int32)
        parallel = width * height >= PARALLEL_MIN_PIXELS
        chunks = []
        for lo, hi in _channel_chunks(n_ch):
            cols = binning.gather_channels(isect_gid, feats, lo)
            with _dynamic_tiles(parallel):
                composite.composite_forward(
                    parallel,
                    offsets,
                    geom,
                    cols,
                    lo,
                    bg,
                    width,
                    height,
                    ts,
                    tiles_x,
                    image,
                    trans,
                    last,
                )
            chunks.append((lo, hi, cols))
        ctx.state = (offsets, isect_gid, geom, chunks, trans, last, (width, height, ts, tiles_x))
        ctx.parallel = parallel
        ctx.background = bg
        ctx.n = means2d.shape[0]
        ctx.n_ch = n_ch
        return torch.from_numpy(image), torch.from_numpy(1.0 - trans)[..., None]

    @staticmethod
    def backward(ctx, v_image, v_alpha):
        offsets, isect_gid, geom, chunks, trans, last, (width, height, ts, tiles_x) = ctx.state
        n, n_ch, m = ctx.n, ctx.n_ch, isect_gid.shape[0]
        v_img = _np_or_zeros(v_image, (height, width, n_ch))
        v_alp = np.ascontiguousarray(_np_or_zeros(v_alpha, (height, width, 1))[..., 0])
        bg = ctx.background
        g_geom = np.zeros((m, 6))
        g_cols = np.zeros((m, n_ch))
        for i, (lo, hi, cols) in enumerate(chunks):
            chunk_geom = g_geom if i == 0 else np.zeros((m, 6))
            chunk_cols = np.zeros((m, binning.CHANNELS))
            with _dynamic_tiles(ctx.parallel):
                composite.composite_backward(
                    ctx.parallel,
                    offsets,
                    geom,
                    cols,
                    lo,
                    bg,
                    width,
                    height,
                    ts,
                    tiles_x,
                    trans,
                    last,
                    v_img,
                    v_alp,
                    chunk_geom,
                    chunk_cols,
                )
            if i > 0:
                g_geom += chunk_geom
            g_cols[:, lo:hi] = chunk_cols[:, : hi - lo]
        v_means2d, v_conics = np.zeros((n, 2)), np.zeros((n, 3))
        v_opac, v_colors = np.zeros(n), np.zeros((n, n_ch))
        binning.reduce_to_gaussians(isect_gid, g_geom, g_cols, v_means2d, v_conics, v_opac, v_colors)
        v_bg = None
        if ctx.needs_input_grad[4]:
            v_bg = torch.from_numpy(np.einsum("hwc,hw->c", v_img, trans, dtype=np.float64)).float()

        def out(a):
            return torch.from_numpy(a.astype(np.float32))

        return (
            out(v_means2d),
            out(v_conics),
            out(v_colors),
            out(v_opac),
            v_bg,
            None,
            None,
            None,
            None,
        )


_FORWARD_ONLY = ContextVar("forward_only", default=True)


@contextmanager
def training_kernels():
    """Render with the training path's kernels even when no gradient is needed (what every
    render used before :mod:`.forward`; benchmarks and tests compare the two)."""
    token = _FORWARD_ONLY.set(False)
    try:
        yield
    finally:
        _FORWARD_ONLY.reset(token)


def _needs_grad(*tensors: Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _render_forward_only(
    means,
    quats,
    scales,
    opacities,
    colors,
    viewmats,
    Ks,
    width,
    height,
    backgrounds,
    sh_degree,
    near_plane,
    far_plane,
    eps2d,
):
    """RGB renders of every camera for inference: the kernels on numpy arrays, no autograd
    Functions, nothing kept for a backward. Same outputs as the differentiable path."""
    arrays = [_np(t) for t in (means, quats, scales, opacities, viewmats, Ks)]
    n, n_cams = means.shape[0], viewmats.shape[0]
    means2d = np.empty((n_cams, n, 2), np.float32)
    conics = np.empty((n_cams, n, 3), np.float32)
    depths = np.empty((n_cams, n), np.float32)
    radii = np.empty((n_cams, n, 2), np.int32)
    project.project_forward(*arrays, width, height, near_plane, far_plane, eps2d, means2d, conics, depths, radii)
    if sh_degree is not None:
        # the camera centre in float32 then widened, as _ShColor gets it: the same colours
        campos = _np(-torch.einsum("cji,cj->ci", viewmats[:, :3, :3], viewmats[:, :3, 3])).astype(np.float64)
        feats = np.empty((n_cams, n, 3), np.float32)
        sh_kernels.sh_forward(_np(colors), arrays[0], campos, sh_degree, radii, feats)
    else:
        feats = np.broadcast_to(_np(colors), (n_cams, n, 3))
    ts = rc.TILE_SIZE
    tiles_x, tiles_y = -(-width // ts), -(-height // ts)
    parallel = width * height >= PARALLEL_MIN_PIXELS
    renders, alphas = [], []
    for cam in range(n_cams):
        visible = np.flatnonzero((radii[cam] > 0).all(axis=1))
        order = visible[np.argsort(depths[cam, visible], kind="stable")].astype(np.int32)
        offsets, isect_gid = binning.bin_tiles(order, means2d[cam], radii[cam], ts, tiles_x, tiles_y)
        geom = binning.gather_geometry(isect_gid, means2d[cam], conics[cam], arrays[3])
        cols = binning.gather_channels(isect_gid, np.ascontiguousarray(feats[cam]), 0)
        bg = np.zeros(3, np.float32) if backgrounds is None else _np(backgrounds[cam])
        image = np.empty((height, width, 3), np.float32)
        alpha = np.empty((height, width), np.float32)
        with _dynamic_tiles(parallel):
            forward.composite_rgb(parallel, offsets, geom, cols, bg, width, height, tiles_x, image, alpha)
        renders.append(torch.from_numpy(image))
        alphas.append(torch.from_numpy(alpha)[..., None])
    return renders, alphas, torch.from_numpy(means2d), torch.from_numpy(radii), torch.from_numpy(depths)


def render_cpu(
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
    """Same contract as :func:`splattalk.avatar.raster.reference.render_reference` (float32 CPU tensors)."""
    n_ch = 3 if sh_degree is not None else colors.shape[1]
    differentiable = (
        means,
        quats,
        scales,
        opacities,
        colors,
        viewmats,
        *(() if backgrounds is None else (backgrounds,)),
    )
    if _FORWARD_ONLY.get() and n_ch == 3 and not render_depth and not _needs_grad(*differentiable):
        renders, alphas, means2d, radii, depths = _render_forward_only(
            means,
            quats,
            scales,
            opacities,
            colors,
            viewmats,
            Ks,
            width,
            height,
            backgrounds,
            sh_degree,
            near_plane,
            far_plane,
            eps2d,
        )
        return renders, alphas, means2d if batched else means2d[0], radii, depths
    means2d, conics, depths, radii = _Project.apply(
        means,
        quats,
        scales,
        viewmats,
        Ks,
        opacities.detach(),
        width,
        height,
        near_plane,
        far_plane,
        eps2d,
    )
    radii_np = radii.numpy()
    if sh_degree is not None:
        rot, trans = viewmats[:, :3, :3], viewmats[:, :3, 3]
        campos = -torch.einsum("cji,cj->ci", rot, trans)
        sh_colors = _ShColor.apply(colors, means, campos, sh_degree, radii_np)
    views = means2d.unbind(0)
    depths_np = depths.detach().numpy()
    renders, alphas = [], []
    for cam in range(viewmats.shape[0]):
        feats = sh_colors[cam] if sh_degree is not None else colors
        background = backgrounds[cam] if backgrounds is not None else feats.new_zeros(feats.shape[1])
        if render_depth:
            feats = torch.cat([feats, depths[cam][:, None]], dim=-1)
            background = torch.cat([background, background.new_zeros(1)])
        image, alpha = _Composite.apply(
            views[cam],
            conics[cam],
            feats,
            opacities,
            background,
            radii_np[cam],
            depths_np[cam],
            width,
            height,
        )
        renders.append(image)
        alphas.append(alpha)
    return (
        renders,
        alphas,
        means2d if batched else views[0],
        radii,
        depths,
    )
