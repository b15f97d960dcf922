"""The forward-only CPU compositor (inference: export, viewer) against the training kernels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from splattalk.avatar.raster import rasterize
from splattalk.avatar.raster.cpu import backend as cpu_backend
from splattalk.avatar.raster.cpu import forward
from splattalk.avatar.raster.scenes import HEIGHT, WIDTH, look_from, random_scene, scene_K

# float rounding only: the polynomial exponential is within a few ulp of libm's
IMAGE_TOL = 2e-6


def _render(scene, *, sh_degree=None, width=WIDTH, height=HEIGHT, viewmat=None, background=True):
    return rasterize(
        scene["means"],
        scene["quats"],
        scene["scales"],
        scene["opacities"],
        scene["colors"],
        scene["viewmat"] if viewmat is None else viewmat,
        scene_K(width, height),
        width,
        height,
        scene["background"] if background else None,
        backend="cpu",
        sh_degree=sh_degree,
        return_info=True,
    )


def _both(scene, **kw):
    with torch.no_grad():
        fast = _render(scene, **kw)
        with cpu_backend.training_kernels():
            slow = _render(scene, **kw)
    return fast, slow


def _assert_same(fast, slow):
    (rgb_f, alpha_f, info_f), (rgb_s, alpha_s, info_s) = fast, slow
    assert rgb_f.shape == rgb_s.shape and alpha_f.shape == alpha_s.shape
    assert (rgb_f - rgb_s).abs().max().item() <= IMAGE_TOL
    assert (alpha_f - alpha_s).abs().max().item() <= IMAGE_TOL
    for key in ("means2d", "radii", "depths"):
        assert torch.equal(info_f[key], info_s[key]), key


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forward_only_matches_training_kernels(seed):
    _assert_same(*_both(random_scene(seed=seed)))


@pytest.mark.parametrize("sh_degree", [0, 1, 3])
def test_forward_only_matches_with_sh(sh_degree):
    _assert_same(*_both(random_scene(seed=5, sh_degree=sh_degree), sh_degree=sh_degree))


def test_forward_only_matches_dense_opaque_and_no_background():
    # many opaque layers: pixels and whole tiles terminate early
    scene = random_scene(n=1500, seed=3, edge_cases=False)
    scene["opacities"] = torch.full_like(scene["opacities"], 0.99)
    _assert_same(*_both(scene, background=False))


def test_forward_only_matches_batch_of_cameras_and_odd_sizes():
    scene = random_scene(seed=4)
    views = torch.stack([look_from(0.2, -0.1), look_from(-0.1, 0.05), look_from(0.3, 0.1)])
    _assert_same(*_both(scene, viewmat=views, width=37, height=21))


def test_forward_only_parallel_driver_is_the_same(monkeypatch):
    scene = random_scene(seed=6)
    with torch.no_grad():
        serial = _render(scene)
        monkeypatch.setattr(cpu_backend, "PARALLEL_MIN_PIXELS", 0)
        parallel = _render(scene)
    assert torch.equal(serial[0], parallel[0]) and torch.equal(serial[1], parallel[1])


def test_path_choice_follows_gradients(monkeypatch):
    calls = []
    original = forward.composite_rgb
    monkeypatch.setattr(forward, "composite_rgb", lambda *a: calls.append(1) or original(*a))
    scene = random_scene(seed=7)
    with torch.no_grad():
        _render(scene)
    assert len(calls) == 1
    _render(scene)  # grad mode on but no input requires grad: still inference
    assert len(calls) == 2
    leaf = {k: v.clone().requires_grad_(k == "colors") for k, v in scene.items()}
    rgb = _render(leaf)[0]
    assert len(calls) == 2 and rgb.requires_grad  # a gradient is wanted: the training kernels
    with torch.no_grad(), cpu_backend.training_kernels():
        _render(scene)
    assert len(calls) == 2


def test_polynomial_exponential_within_a_few_ulp():
    # one isotropic Gaussian, opacity 1, over one tile row: alpha = min(0.999, exp(-sigma))
    f32 = np.float32
    trans, live = np.ones((16, 16), f32), np.ones((16, 16), f32)
    accs = [np.zeros((16, 16), f32) for _ in range(3)]
    a, cut = f32(0.05), f32(np.log(255.0) + 1e-3)
    forward._blend_row(
        f32(0.5), f32(0), f32(0), a, f32(0), f32(1), cut, f32(1), f32(0), f32(0), 0, 0, trans, live, *accs
    )
    dx = f32(0.5) - (np.arange(16, dtype=f32) + f32(0.5))
    want = np.minimum(f32(0.999), np.exp(-(f32(0.5) * (a * dx * dx)))).astype(f32)
    want[want < f32(1 / 255)] = 0  # below ALPHA_MIN: skipped
    got = accs[0][0]  # colour 1 at full transmittance: the blended weight is alpha itself
    assert want[-1] == 0 and want[-2] > 0
    assert np.all(np.abs(got.view(np.int32) - want.view(np.int32)) <= 4)
    assert not accs[1].any() and np.array_equal(trans[0], f32(1) - got)
