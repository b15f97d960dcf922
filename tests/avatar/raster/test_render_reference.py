"""The pure-torch reference checked against independent oracles, and finite differences."""

from __future__ import annotations

import math

import torch
from render_scenes import PARAMS, leaves, weights

import splattalk.avatar.raster.conventions as rc
from splattalk.avatar.raster import rasterize
from splattalk.avatar.raster.reference import composite, covariance_3d, project_gaussians
from splattalk.avatar.raster.scenes import look_from, random_scene, scene_K


def sequential_composite(means2d, conics, colors, opacities, depths, radii, width, height, bg):
    """gsplat's per-pixel loop written out literally, in Python floats."""
    visible = [i for i in range(len(depths)) if radii[i].min() > 0]
    visible.sort(key=lambda i: (float(depths[i]), i))
    image = torch.zeros(height, width, colors.shape[1], dtype=torch.float64)
    for y in range(height):
        for x in range(width):
            trans, acc = 1.0, torch.zeros(colors.shape[1], dtype=torch.float64)
            for i in visible:
                dx, dy = float(means2d[i, 0]) - (x + 0.5), float(means2d[i, 1]) - (y + 0.5)
                a, b, c = (float(v) for v in conics[i])
                sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
                alpha = min(rc.ALPHA_MAX, float(opacities[i]) * math.exp(-sigma))
                if sigma < 0 or alpha < rc.ALPHA_MIN:
                    continue
                if trans * (1 - alpha) <= rc.T_MIN:
                    break
                acc += colors[i].double() * alpha * trans
                trans *= 1 - alpha
            image[y, x] = acc + trans * bg.double()
    return image


def projected(scene, width, height, dtype=torch.float64):
    s = {k: v.to(dtype) for k, v in scene.items()}
    return project_gaussians(
        s["means"],
        s["quats"],
        s["scales"],
        s["opacities"],
        s["viewmat"],
        scene_K(width, height).to(dtype),
        width,
        height,
    )


def test_reference_matches_literal_per_pixel_loop():
    width, height = 20, 14
    scene = random_scene(40, 3)
    means2d, conics, depths, radii = projected(scene, width, height)
    colors, opac, bg = scene["colors"].double(), scene["opacities"].double(), scene["background"].double()
    want = sequential_composite(means2d, conics, colors, opac, depths, radii, width, height, bg)
    got, _ = composite(means2d, conics, colors, opac, depths, radii, width, height, bg)
    assert (got - want).abs().max() < 1e-12


def test_reference_block_culling_changes_nothing():
    """Compositing in 16x16 blocks against only the Gaussians whose box touches the block
    gives the same image as one block holding every Gaussian: the screen box is tight."""
    width, height = 72, 56
    scene = random_scene(300, 4)
    means2d, conics, depths, radii = projected(scene, width, height)
    args = (means2d, conics, scene["colors"].double(), scene["opacities"].double(), depths, radii)
    blocked, alpha_blocked = composite(*args, width, height, block=16)
    whole, alpha_whole = composite(*args, width, height, block=max(width, height))
    # equal up to summation order (a missed Gaussian would cost >= 1/255 somewhere)
    assert (blocked - whole).abs().max() < 1e-12
    assert (alpha_blocked - alpha_whole).abs().max() < 1e-12


def test_reference_ewa_projection_against_numeric_jacobian():
    """means2d is the pinhole projection and the conic inverts J Sigma_cam J^T + eps2d I,
    with J the numerical Jacobian of the projection (Gaussians inside the clamp limits)."""
    width, height = 72, 56
    scene = random_scene(30, 5, edge_cases=False)
    means2d, conics, depths, radii = projected(scene, width, height)
    view, K = scene["viewmat"].double(), scene_K(width, height).double()

    def pixel(p_world):
        p = view[:3, :3] @ p_world + view[:3, 3]
        return (K @ p)[:2] / p[2]

    cov = covariance_3d(scene["quats"].double(), scene["scales"].double())
    cam = scene["means"].double() @ view[:3, :3].T + view[:3, 3]
    inside = (cam[:, 0] / cam[:, 2]).abs() < 0.5 * width / K[0, 0]
    inside &= (cam[:, 1] / cam[:, 2]).abs() < 0.5 * height / K[1, 1]
    assert inside.sum() >= 10
    for i in torch.nonzero(inside).squeeze(1).tolist():
        m = scene["means"][i].double()
        assert torch.allclose(means2d[i], pixel(m), atol=1e-9)
        jac = torch.autograd.functional.jacobian(pixel, m)  # d pixel / d world point
        cov2d = jac @ cov[i] @ jac.T + rc.EPS2D * torch.eye(2, dtype=torch.float64)
        inv = torch.linalg.inv(cov2d)
        assert torch.allclose(conics[i], torch.stack([inv[0, 0], inv[0, 1], inv[1, 1]]), rtol=1e-7)
        assert depths[i] == cam[i, 2] and radii[i].min() > 0


def loss_fn(p, sh_degree=None, backend="reference"):
    rgb, alpha = rasterize(
        p["means"],
        p["quats"],
        p["scales"],
        p["opacities"],
        p["colors"],
        p["viewmat"],
        scene_K(24, 18).to(p["means"].dtype),
        24,
        18,
        p["background"],
        backend=backend,
        sh_degree=sh_degree,
    )
    dtype = rgb.dtype
    return (rgb * weights(rgb.shape, 7, dtype)).sum() + (alpha * weights(alpha.shape, 8, dtype)).sum()


def tiny_scene(sh_degree=None):
    """Six Gaussians on a 24x18 image, all visible, no edge cases."""
    scene = random_scene(6, 6, edge_cases=False, sh_degree=sh_degree, spread=0.3)
    scene["scales"] = scene["scales"].clamp(0.06, 0.2)
    return scene


def test_finite_differences_match_cpu_and_reference_gradients():
    """Central differences of the float64 reference loss at random entries of every input,
    against the reference's autograd (float64) and the CPU backend's backward (float32)."""
    for sh_degree in (None, 2):
        scene = tiny_scene(sh_degree)
        p64 = leaves(scene, torch.float64)
        rgb, alpha, info = rasterize(
            p64["means"],
            p64["quats"],
            p64["scales"],
            p64["opacities"],
            p64["colors"],
            p64["viewmat"],
            scene_K(24, 18).double(),
            24,
            18,
            sh_degree=sh_degree,
            backend="reference",
            return_info=True,
        )
        assert (info["radii"] > 0).all() and alpha.mean() > 0.05
        loss_fn(p64, sh_degree).backward()
        p32 = leaves(scene)
        loss_fn(p32, sh_degree, backend="cpu").backward()
        g = torch.Generator().manual_seed(0)
        for name in PARAMS:
            flat = p64[name].detach().reshape(-1)
            entries = torch.randperm(flat.numel(), generator=g)[:5]
            if name == "viewmat":  # only the rigid part [R | t] is a camera parameter
                entries = torch.tensor([0, 1, 2, 3, 5, 6, 7, 9, 10, 11])
            numeric = []
            for e in entries.tolist():
                step = 1e-6
                plus, minus = leaves(scene, torch.float64), leaves(scene, torch.float64)
                with torch.no_grad():
                    plus[name].view(-1)[e] += step
                    minus[name].view(-1)[e] -= step
                numeric.append((loss_fn(plus, sh_degree) - loss_fn(minus, sh_degree)).item() / (2 * step))
            numeric = torch.tensor(numeric, dtype=torch.float64)
            auto64 = p64[name].grad.reshape(-1)[entries]
            cpu32 = p32[name].grad.reshape(-1)[entries].double()
            scale = numeric.norm().clamp_min(1e-3)
            assert (auto64 - numeric).norm() / scale < 1e-5, (sh_degree, name)
            assert (cpu32 - numeric).norm() / scale < 1e-3, (sh_degree, name)


def test_camera_gradient_moves_image_like_finite_differences():
    """Rotating the camera by a small angle changes the loss as the viewmat gradient predicts."""
    scene = tiny_scene()
    p = leaves(scene)
    loss_fn(p, backend="cpu").backward()
    grad_view = p["viewmat"].grad.double()
    eps = 1e-7  # small enough that no pixel crosses the 1/255 alpha cut-off
    delta = (look_from(0.2 + eps, -0.1) - look_from(0.2 - eps, -0.1)).double()
    predicted = (grad_view * delta).sum().item()
    moved = []
    for sign in (1, -1):
        q = leaves(scene, torch.float64)
        with torch.no_grad():
            q["viewmat"].copy_(look_from(0.2 + sign * eps, -0.1).double())
        moved.append(loss_fn(q).item())
    numeric = moved[0] - moved[1]
    assert abs(predicted - numeric) <= 1e-3 * abs(numeric) + 1e-6
