"""The Numba ``cpu`` rasterizer against the pure-torch ``reference``: images and gradients."""

from __future__ import annotations

import numba
import pytest
import torch
from render_scenes import PARAMS, cosine, leaves, rel_err, weights

from splattalk.avatar.raster import rasterize
from splattalk.avatar.raster.cpu import backend as cpu_backend
from splattalk.avatar.raster.scenes import HEIGHT, WIDTH, look_from, random_scene, scene_K

IMAGE_TOL = 1e-4
GRAD_REL_TOL = 1e-3
GRAD_COS_TOL = 0.9999


def render_and_grads(scene, backend, *, sh_degree=None, depth=False, dtype=torch.float32):
    """Render with ``backend``, back-propagate a fixed random linear loss over rgb, alpha
    (and depth); return outputs and the gradient of every input, plus dL/dmeans2d."""
    p = leaves(scene, dtype)
    outputs = rasterize(
        p["means"],
        p["quats"],
        p["scales"],
        p["opacities"],
        p["colors"],
        p["viewmat"],
        scene_K().to(dtype),
        WIDTH,
        HEIGHT,
        p["background"],
        backend=backend,
        sh_degree=sh_degree,
        return_depth=depth,
        return_info=True,
    )
    rgb, alpha, info = outputs[0], outputs[1], outputs[-1]
    loss = (rgb * weights(rgb.shape, 1, dtype)).sum() + (alpha * weights(alpha.shape, 2, dtype)).sum()
    if depth:
        loss = loss + 0.1 * (outputs[2] * weights(alpha.shape, 3, dtype)).sum()
    loss.backward()
    grads = {k: p[k].grad.detach().clone() for k in PARAMS}
    grads["means2d"] = info["means2d"].grad.detach().clone()
    images = [o.detach() for o in outputs[:-1]]
    return images, grads, info


def assert_backends_agree(scene, **kwargs):
    images_cpu, grads_cpu, info_cpu = render_and_grads(scene, "cpu", **kwargs)
    images_ref, grads_ref, info_ref = render_and_grads(scene, "reference", **kwargs)
    for got, want in zip(images_cpu, images_ref, strict=True):
        assert (got - want).abs().max().item() <= IMAGE_TOL
    assert torch.equal(info_cpu["radii"], info_ref["radii"])
    for name in grads_ref:
        err, cos = rel_err(grads_cpu[name], grads_ref[name]), cosine(grads_cpu[name], grads_ref[name])
        assert err <= GRAD_REL_TOL and cos >= GRAD_COS_TOL, f"{name}: rel err {err:.2e}, cos {cos:.6f}"
    return grads_cpu


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cpu_matches_reference_rgb(seed):
    grads = assert_backends_agree(random_scene(300, seed))
    # every kind of input really received a gradient (the comparison is not vacuous)
    for name in PARAMS:
        assert grads[name].abs().sum() > 0, name


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_cpu_matches_reference_sh(sh_degree):
    assert_backends_agree(random_scene(200, 10 + sh_degree, sh_degree=sh_degree), sh_degree=sh_degree)


def test_cpu_matches_reference_with_depth():
    assert_backends_agree(random_scene(250, 5), depth=True)


def test_cpu_matches_reference_many_channels():
    """Features wider than the kernel's 4 channels are composited in chunks."""
    assert_backends_agree(random_scene(150, 6, n_channels=7))


def test_cpu_matches_reference_dense_opaque():
    """Many large, opaque Gaussians: pixels terminate early (T < 1e-4) and alpha clamps."""
    scene = random_scene(400, 7, edge_cases=False)
    scene["scales"] = scene["scales"] * 3
    scene["opacities"] = 0.6 + 0.4 * scene["opacities"]
    assert_backends_agree(scene)


def test_cpu_matches_float64_reference():
    """Against a float64 oracle the float32 CPU gradients stay well inside tolerance too."""
    scene = random_scene(200, 8)
    _, grads_cpu, _ = render_and_grads(scene, "cpu")
    _, grads_ref, _ = render_and_grads(scene, "reference", dtype=torch.float64)
    for name in grads_ref:
        assert rel_err(grads_cpu[name], grads_ref[name]) <= GRAD_REL_TOL, name


def test_batch_of_cameras_matches_single_renders():
    scene = random_scene(200, 9)
    viewmats = torch.stack([look_from(0.2, -0.1), look_from(-0.3, 0.1, (0.0, 0.1, 0.3))])
    Ks = torch.stack([scene_K(), scene_K(focal=60.0)])
    p = leaves(scene)
    rgb, alpha, info = rasterize(
        p["means"],
        p["quats"],
        p["scales"],
        p["opacities"],
        p["colors"],
        viewmats,
        Ks,
        WIDTH,
        HEIGHT,
        p["background"],
        backend="cpu",
        return_info=True,
    )
    assert rgb.shape == (2, HEIGHT, WIDTH, 3) and alpha.shape == (2, HEIGHT, WIDTH, 1)
    assert info["means2d"].shape == (2, len(scene["means"]), 2)
    assert info["radii"].shape == (2, len(scene["means"]))
    (rgb * weights(rgb.shape, 4)).sum().backward()
    batch_grad = p["means"].grad.clone()
    single_grad = torch.zeros_like(batch_grad)
    for cam in range(2):
        q = leaves(scene)
        one, _ = rasterize(
            q["means"],
            q["quats"],
            q["scales"],
            q["opacities"],
            q["colors"],
            viewmats[cam],
            Ks[cam],
            WIDTH,
            HEIGHT,
            q["background"],
            backend="cpu",
        )
        assert torch.equal(one.detach(), rgb[cam].detach())
        (one * weights(rgb.shape, 4)[cam]).sum().backward()
        single_grad += q["means"].grad
    assert rel_err(batch_grad, single_grad) < 1e-5


def test_cpu_is_deterministic_across_runs_threads_and_drivers(monkeypatch):
    """Bit-identical images and gradients: serial driver, parallel driver on 2 threads and on
    1 thread, and a repeat (tiles own their rows; per-Gaussian sums run in a fixed order)."""
    scene = random_scene(300, 11)
    serial_images, serial_grads, _ = render_and_grads(scene, "cpu", depth=True)
    monkeypatch.setattr(cpu_backend, "PARALLEL_MIN_PIXELS", 0)
    runs = [render_and_grads(scene, "cpu", depth=True)]
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        runs.append(render_and_grads(scene, "cpu", depth=True))
    finally:
        numba.set_num_threads(threads)
    runs.append(render_and_grads(scene, "cpu", depth=True))
    for images, grads, _ in runs:
        assert all(torch.equal(a, b) for a, b in zip(serial_images, images, strict=True))
        assert all(torch.equal(serial_grads[k], grads[k]) for k in serial_grads)


def test_parallel_driver_matches_reference(monkeypatch):
    monkeypatch.setattr(cpu_backend, "PARALLEL_MIN_PIXELS", 0)
    assert_backends_agree(random_scene(300, 13))


def test_cpu_matches_reference_extreme_shapes():
    """Scales spread over four decades per axis at random orientations: needles, discs and
    giants in every direction, where the per-row pixel spans must stay conservative."""
    scene = random_scene(300, 14, edge_cases=False)
    g = torch.Generator().manual_seed(14)
    scene["scales"] = torch.exp(torch.empty(300, 3).uniform_(-9.0, 0.5, generator=g))
    scene["opacities"] = torch.rand(300, generator=g)
    assert_backends_agree(scene)


def test_means2d_gradient_is_zero_exactly_where_not_rendered():
    scene = random_scene(200, 12)
    _, grads, info = render_and_grads(scene, "cpu")
    hidden = info["radii"] == 0
    assert hidden.sum() >= 3  # behind the camera, near plane, off-screen, transparent
    assert (grads["means2d"][hidden] == 0).all()
    assert (grads["means2d"][~hidden].abs().sum(dim=1) > 0).float().mean() > 0.9


def test_batch_with_sh_and_depth_matches_reference():
    """Two cameras, SH colours (view-dependent per camera) and depth: images and gradients,
    including each camera's view matrix (which also moves the SH viewing directions)."""
    scene = random_scene(150, 15, sh_degree=3)
    outputs = {}
    for backend in ("cpu", "reference"):
        p = leaves(scene)
        viewmats = torch.stack([look_from(0.2, -0.1), look_from(-0.25, 0.05, (0.0, 0.1, 0.2))])
        viewmats.requires_grad_(True)
        rgb, alpha, depth, info = rasterize(
            p["means"],
            p["quats"],
            p["scales"],
            p["opacities"],
            p["colors"],
            viewmats,
            scene_K(),
            WIDTH,
            HEIGHT,
            p["background"],
            backend=backend,
            sh_degree=3,
            return_depth=True,
            return_info=True,
        )
        loss = (rgb * weights(rgb.shape, 5)).sum() + (alpha * weights(alpha.shape, 6)).sum()
        (loss + 0.1 * (depth * weights(depth.shape, 7)).sum()).backward()
        grads = {k: p[k].grad for k in PARAMS if k != "viewmat"}
        grads["viewmats"], grads["means2d"] = viewmats.grad, info["means2d"].grad
        outputs[backend] = ((rgb.detach(), alpha.detach(), depth.detach()), grads)
    (images_cpu, grads_cpu), (images_ref, grads_ref) = outputs["cpu"], outputs["reference"]
    for got, want in zip(images_cpu, images_ref, strict=True):
        assert (got - want).abs().max().item() <= IMAGE_TOL
    for name, want in grads_ref.items():
        assert rel_err(grads_cpu[name], want) <= GRAD_REL_TOL, name
        assert cosine(grads_cpu[name], want) >= GRAD_COS_TOL, name
