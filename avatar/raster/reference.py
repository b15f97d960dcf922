"""Pure-torch reference rasterizer: the readable oracle the fast backends are tested against.

Every step is a few tensor operations and torch autograd provides the gradients, so this
file is the specification of what the ``cpu`` (Numba) and ``gsplat`` backends compute.
The numerical conventions are in :mod:`.conventions`. It is slow but exact: it
composites pixels in square blocks, each against the Gaussians whose screen box touches
the block (the box is tight, so this culling changes no pixel), and it works in whatever
float dtype it is given (tests use float64 for a sharper oracle).

Like the ``cpu`` backend, it projects (and evaluates SH colours) in float64 and rounds the
results once to the input dtype. That matters for needle-like Gaussians: their conic is so
ill-conditioned that a few ulps of difference in it move the per-pixel sigma (evaluated
in the input dtype, as gsplat does) by up to ~1e-3, enough to flip the 1/255 alpha test.
"""

from __future__ import annotations

import torch
from torch import Tensor

import splattalk.avatar.raster.conventions as rc


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """quats: [N, 4] wxyz, any norm -> rotation matrices [N, 3, 3]."""
    q = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z),
        2 * (x * y - w * z),
        2 * (x * z + w * y),
        2 * (x * y + w * z),
        1 - 2 * (x * x + z * z),
        2 * (y * z - w * x),
        2 * (x * z - w * y),
        2 * (y * z + w * x),
        1 - 2 * (x * x + y * y),
    ]
    return torch.stack(rows, dim=-1).reshape(-1, 3, 3)


def covariance_3d(quats: Tensor, scales: Tensor) -> Tensor:
    """quats: [N, 4], scales: [N, 3] (linear) -> world covariances [N, 3, 3] = R S S^T R^T."""
    m = quat_to_rotmat(quats) * scales[:, None, :]
    return m @ m.transpose(1, 2)


def project_gaussians(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4]
    scales: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    viewmat: Tensor,  # [4, 4] world -> camera (OpenCV)
    K: Tensor,  # [3, 3]
    width: int,
    height: int,
    near_plane: float = rc.NEAR_PLANE,
    far_plane: float = rc.FAR_PLANE,
    eps2d: float = rc.EPS2D,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """EWA projection -> means2d [N, 2] (pixels), conics [N, 3] (inverse 2D covariance
    a, b, c), depths [N] (camera z), radii [N, 2] int32 (0 where the Gaussian is dropped).
    Computed in float64, returned in the dtype of ``means``."""
    dtype = means.dtype
    means, quats, scales, opacities, viewmat, K = (t.double() for t in (means, quats, scales, opacities, viewmat, K))
    rot, trans = viewmat[:3, :3], viewmat[:3, 3]
    x, y, z = (means @ rot.T + trans).unbind(-1)
    depths = z
    in_depth = (z >= near_plane) & (z <= far_plane)
    z = torch.where(in_depth, z, torch.ones_like(z))  # keeps dropped Gaussians finite

    cov_cam = rot @ covariance_3d(quats, scales) @ rot.T
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    lim_x_pos = (width - cx) / fx + rc.FRUSTUM_MARGIN * 0.5 * width / fx
    lim_x_neg = cx / fx + rc.FRUSTUM_MARGIN * 0.5 * width / fx
    lim_y_pos = (height - cy) / fy + rc.FRUSTUM_MARGIN * 0.5 * height / fy
    lim_y_neg = cy / fy + rc.FRUSTUM_MARGIN * 0.5 * height / fy
    tx = z * torch.clamp(x / z, -lim_x_neg, lim_x_pos)
    ty = z * torch.clamp(y / z, -lim_y_neg, lim_y_pos)
    zero = torch.zeros_like(z)
    jac = torch.stack([fx / z, zero, -fx * tx / (z * z), zero, fy / z, -fy * ty / (z * z)], dim=-1).reshape(-1, 2, 3)
    cov2d = jac @ cov_cam @ jac.transpose(1, 2)
    a = cov2d[:, 0, 0] + eps2d
    b = cov2d[:, 0, 1]
    c = cov2d[:, 1, 1] + eps2d
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], dim=-1)

    det = a * c - b * b
    keep = in_depth & (det > 0) & (opacities >= rc.ALPHA_MIN)
    det = torch.where(keep, det, torch.ones_like(det))
    conics = torch.stack([c / det, -b / det, a / det], dim=-1)

    with torch.no_grad():
        opac = opacities.clamp_min(rc.ALPHA_MIN)
        extend = torch.sqrt(2.0 * torch.log(opac / rc.ALPHA_MIN)).clamp_max(rc.EXTEND_MAX)
        rx = torch.ceil(extend * torch.sqrt(a.clamp_min(0)))
        ry = torch.ceil(extend * torch.sqrt(c.clamp_min(0)))
        mx, my = means2d.unbind(-1)
        keep = keep & ((rx > 0) | (ry > 0))
        keep = keep & (mx + rx > 0) & (mx - rx < width) & (my + ry > 0) & (my - ry < height)
        radii = torch.stack([rx, ry], dim=-1).clamp_max(2**30).to(torch.int32)
        radii = torch.where(keep[:, None], radii, torch.zeros_like(radii))
    return means2d.to(dtype), conics.to(dtype), depths.to(dtype), radii


def sh_basis(dirs: Tensor, degree: int) -> Tensor:
    """dirs: [N, 3] (any length) -> real SH basis [N, (degree + 1)^2] of the unit directions."""
    d = dirs / dirs.norm(dim=-1, keepdim=True)
    x, y, z = d.unbind(-1)
    basis = [torch.full_like(x, rc.SH_C0)]
    if degree >= 1:
        basis += [-rc.SH_C1 * y, rc.SH_C1 * z, -rc.SH_C1 * x]
    if degree >= 2:
        basis += [
            rc.SH_C2_XY * x * y,
            -rc.SH_C2_XY * y * z,
            rc.SH_C2_ZZ * z * z - rc.SH_C2_Z0,
            -rc.SH_C2_XY * x * z,
            rc.SH_C2_XX * (x * x - y * y),
        ]
    if degree >= 3:
        band = rc.SH_C3_C0 - rc.SH_C3_C1 * z * z
        basis += [
            -rc.SH_C3_A * (3 * x * x * y - y * y * y),
            rc.SH_C3_B * z * 2 * x * y,
            y * band,
            z * (rc.SH_C3_D0 * z * z - rc.SH_C3_D1),
            x * band,
            rc.SH_C3_B * z * (x * x - y * y),
            -rc.SH_C3_A * (x * x * x - 3 * x * y * y),
        ]
    return torch.stack(basis, dim=-1)


def sh_to_rgb(sh: Tensor, dirs: Tensor, degree: int) -> Tensor:
    """sh: [N, K, 3] coefficients, dirs: [N, 3] camera centre -> mean -> colours [N, 3]
    (computed in float64, returned in the dtype of ``sh``)."""
    basis = sh_basis(dirs.double(), degree)
    rgb = torch.einsum("nk,nkc->nc", basis, sh[:, : basis.shape[1]].double())
    return torch.clamp_min(rgb + rc.SH_OFFSET, 0.0).to(sh.dtype)


def _composite_pixels(
    px: Tensor, py: Tensor, means2d: Tensor, conics: Tensor, colors: Tensor, opacities: Tensor
) -> tuple[Tensor, Tensor]:
    """Front-to-back compositing of depth-sorted Gaussians [G] at pixel centres [P].
    Returns colour [P, D] (no background) and final transmittance [P]."""
    if means2d.shape[0] == 0:
        return colors.new_zeros(px.shape[0], colors.shape[1]), px.new_ones(px.shape[0])
    dx = means2d[None, :, 0] - px[:, None]  # [P, G]
    dy = means2d[None, :, 1] - py[:, None]
    a, b, c = conics.unbind(-1)
    sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
    alpha = torch.clamp(opacities * torch.exp(-sigma), max=rc.ALPHA_MAX)
    alpha = torch.where((sigma >= 0) & (alpha >= rc.ALPHA_MIN), alpha, torch.zeros_like(alpha))
    # A pixel stops before the first Gaussian that would take its transmittance to <= T_MIN.
    with torch.no_grad():
        t_after = torch.cumprod(1 - alpha, dim=1)
        stopped = torch.cumsum((t_after <= rc.T_MIN).to(torch.int32), dim=1) > 0
    alpha = torch.where(stopped, torch.zeros_like(alpha), alpha)
    t_before = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha[:, :-1]], 1), 1)
    weights = alpha * t_before
    return weights @ colors, torch.prod(1 - alpha, dim=1)


def composite(
    means2d: Tensor,  # [N, 2]
    conics: Tensor,  # [N, 3]
    colors: Tensor,  # [N, D]
    opacities: Tensor,  # [N]
    depths: Tensor,  # [N]
    radii: Tensor,  # [N, 2]
    width: int,
    height: int,
    background: Tensor | None = None,  # [D]
    block: int = 16,
) -> tuple[Tensor, Tensor]:
    """Rasterize projected Gaussians -> image [H, W, D], alpha [H, W, 1]."""
    visible = torch.nonzero((radii > 0).all(dim=-1)).squeeze(1)
    order = visible[torch.argsort(depths[visible].detach(), stable=True)]
    m, con, col, op = means2d[order], conics[order], colors[order], opacities[order]
    rad = radii[order].to(m.dtype)
    rows, alpha_rows = [], []
    for y0 in range(0, height, block):
        blocks, alpha_blocks = [], []
        ys = torch.arange(y0, min(y0 + block, height), dtype=m.dtype) + 0.5
        for x0 in range(0, width, block):
            xs = torch.arange(x0, min(x0 + block, width), dtype=m.dtype) + 0.5
            with torch.no_grad():
                touches = (
                    (m[:, 0] + rad[:, 0] >= xs[0])
                    & (m[:, 0] - rad[:, 0] <= xs[-1])
                    & (m[:, 1] + rad[:, 1] >= ys[0])
                    & (m[:, 1] - rad[:, 1] <= ys[-1])
                )
                sel = torch.nonzero(touches).squeeze(1)
            py, px = torch.meshgrid(ys, xs, indexing="ij")
            rgb, t_final = _composite_pixels(px.reshape(-1), py.reshape(-1), m[sel], con[sel], col[sel], op[sel])
            if background is not None:
                rgb = rgb + t_final[:, None] * background
            blocks.append(rgb.reshape(len(ys), len(xs), -1))
            alpha_blocks.append((1 - t_final).reshape(len(ys), len(xs), 1))
        rows.append(torch.cat(blocks, dim=1))
        alpha_rows.append(torch.cat(alpha_blocks, dim=1))
    return torch.cat(rows, dim=0), torch.cat(alpha_rows, dim=0)


def camera_centre(viewmat: Tensor) -> Tensor:
    """viewmat: [4, 4] rigid world -> camera -> camera centre in world [3] = -R^T t."""
    return -viewmat[:3, :3].T @ viewmat[:3, 3]


def render_reference(
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
    """All cameras -> (per camera: render [H, W, D(+1 accumulated depth)], alpha [H, W, 1];
    means2d ([C, N, 2] if batched else [N, 2]; in the graph, so its .grad is dL/dmeans2d),
    radii [C, N, 2], depths [C, N])."""
    projections = [
        project_gaussians(
            means,
            quats,
            scales,
            opacities,
            viewmats[cam],
            Ks[cam],
            width,
            height,
            near_plane,
            far_plane,
            eps2d,
        )
        for cam in range(viewmats.shape[0])
    ]
    means2d_all = torch.stack([p[0] for p in projections])
    means2d_views = list(means2d_all.unbind(0))
    renders, alphas = [], []
    for cam, (_, conics, depths, radii) in enumerate(projections):
        if sh_degree is None:
            feats = colors
        else:
            feats = sh_to_rgb(colors, means - camera_centre(viewmats[cam]), sh_degree)
        background = None if backgrounds is None else backgrounds[cam]
        if render_depth:
            feats = torch.cat([feats, depths[:, None]], dim=-1)
            if background is not None:
                background = torch.cat([background, background.new_zeros(1)])
        image, alpha = composite(means2d_views[cam], conics, feats, opacities, depths, radii, width, height, background)
        renders.append(image)
        alphas.append(alpha)
    return (
        renders,
        alphas,
        means2d_all if batched else means2d_views[0],
        torch.stack([p[3] for p in projections]),
        torch.stack([p[2] for p in projections]),
    )
