"""rasterize(): its contract (shapes, flags, info, errors) and closed-form cases."""

from __future__ import annotations

import math

import pytest
import torch
from render_scenes import leaves

import splattalk.avatar.raster.conventions as rc
from splattalk.avatar.raster import choose_backend, rasterize
from splattalk.avatar.raster.scenes import HEIGHT, WIDTH, random_scene, scene_K
from splattalk.errors import SplattalkError

BACKENDS = ["cpu", "reference"]


def one_gaussian(opacity=0.8, colour=(0.9, 0.2, 0.1), scale=0.05, z=2.0):
    """One isotropic Gaussian on the optical axis, camera at the origin; the principal
    point sits on a pixel centre so that pixel samples the Gaussian's peak."""
    return dict(
        means=torch.tensor([[0.0, 0.0, z]]),
        quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]]),
        scales=torch.full((1, 3), scale),
        opacities=torch.tensor([opacity]),
        colors=torch.tensor([colour]),
        viewmat=torch.eye(4),
        K=torch.tensor([[100.0, 0.0, 16.5], [0.0, 100.0, 12.5], [0.0, 0.0, 1.0]]),
    )


def call(scene, backend, **kwargs):
    s = scene
    return rasterize(
        s["means"],
        s["quats"],
        s["scales"],
        s["opacities"],
        s["colors"],
        s["viewmat"],
        s["K"],
        32,
        24,
        backend=backend,
        **kwargs,
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_gaussian_closed_form(backend):
    s = one_gaussian()
    bg = torch.tensor([0.0, 0.5, 1.0])
    rgb, alpha, depth, info = call(s, backend, background=bg, return_depth=True, return_info=True)
    assert rgb.shape == (24, 32, 3) and alpha.shape == (24, 32, 1) and depth.shape == (24, 32, 1)
    peak = rgb[12, 16]
    assert torch.allclose(peak, 0.8 * torch.tensor([0.9, 0.2, 0.1]) + 0.2 * bg, atol=1e-6)
    assert alpha[12, 16, 0].item() == pytest.approx(0.8, abs=1e-6)
    assert depth[12, 16, 0].item() == pytest.approx(2.0, abs=1e-5)
    # one pixel to the right: sigma = 0.5 d^2 / (f^2 s^2 / z^2 + eps2d)
    var = (100 * 0.05 / 2.0) ** 2 + rc.EPS2D
    assert alpha[12, 17, 0].item() == pytest.approx(0.8 * math.exp(-0.5 / var), rel=1e-5)
    assert torch.allclose(info["means2d"], torch.tensor([[16.5, 12.5]]))
    extend = math.sqrt(2 * math.log(0.8 * 255))
    assert info["radii"].tolist() == [math.ceil(extend * math.sqrt(var))]
    assert info["depths"].tolist() == [2.0] and info["backend"] == backend
    assert torch.equal(rgb[0, 0], bg)  # far corner: background only


@pytest.mark.parametrize("backend", BACKENDS)
def test_opaque_alpha_clamps_at_0999(backend):
    rgb, alpha = call(one_gaussian(opacity=1.0), backend)
    assert alpha[12, 16, 0].item() == pytest.approx(rc.ALPHA_MAX, abs=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_tuple_unpack_and_flag_arity(backend):
    s = one_gaussian()
    assert len(call(s, backend)) == 2
    assert len(call(s, backend, return_depth=True)) == 3
    assert isinstance(call(s, backend, return_info=True)[2], dict)
    assert len(call(s, backend, return_depth=True, return_info=True)) == 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_gaussians_renders_background(backend):
    bg = torch.tensor([0.2, 0.3, 0.4], requires_grad=True)
    means = torch.zeros(0, 3, requires_grad=True)
    rgb, alpha, info = rasterize(
        means,
        torch.zeros(0, 4),
        torch.zeros(0, 3),
        torch.zeros(0),
        torch.zeros(0, 3),
        torch.eye(4),
        scene_K(),
        WIDTH,
        HEIGHT,
        bg,
        backend=backend,
        return_info=True,
    )
    assert torch.equal(rgb, bg.detach().expand(HEIGHT, WIDTH, 3))
    assert (alpha == 0).all() and info["radii"].shape == (0,)
    rgb.sum().backward()
    assert torch.allclose(bg.grad, torch.full((3,), float(WIDTH * HEIGHT)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_everything_culled_renders_background(backend):
    """Behind the camera, inside the near plane, fully transparent, off-screen."""
    means = torch.tensor([[0.0, 0.0, -2.0], [0.0, 0.0, 0.005], [0.0, 0.0, 2.0], [50.0, 0.0, 2.0]])
    opac = torch.tensor([0.9, 0.9, 0.0, 0.9])
    rgb, alpha, info = rasterize(
        means,
        torch.randn(4, 4),
        torch.full((4, 3), 0.3),
        opac,
        torch.rand(4, 3),
        torch.eye(4),
        scene_K(),
        WIDTH,
        HEIGHT,
        torch.ones(3),
        backend=backend,
        return_info=True,
    )
    assert (rgb == 1).all() and (alpha == 0).all() and (info["radii"] == 0).all()


def test_expected_depth_of_a_wall():
    """A wall of opaque Gaussians at z = 3 renders expected depth 3 wherever it is seen."""
    xs = torch.linspace(-1.5, 1.5, 25)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="ij"), -1).reshape(-1, 2)
    means = torch.cat([grid, torch.full((len(grid), 1), 3.0)], 1)
    n = len(means)
    rgb, alpha, depth = rasterize(
        means,
        torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
        torch.full((n, 3), 0.1),
        torch.full((n,), 0.9),
        torch.rand(n, 3),
        torch.eye(4),
        scene_K(),
        WIDTH,
        HEIGHT,
        backend="cpu",
        return_depth=True,
    )
    seen = alpha[..., 0] > 0.5
    assert seen.float().mean() > 0.9
    assert torch.allclose(depth[..., 0][seen], torch.tensor(3.0), atol=1e-4)


def test_info_means2d_gradient_matches_between_backends():
    scene = random_scene(150, 21)
    grads = []
    for backend in BACKENDS:
        p = leaves(scene)
        rgb, _, info = rasterize(
            p["means"],
            p["quats"],
            p["scales"],
            p["opacities"],
            p["colors"],
            p["viewmat"],
            scene_K(),
            WIDTH,
            HEIGHT,
            backend=backend,
            return_info=True,
        )
        assert info["means2d"].shape == (len(scene["means"]), 2)
        assert info["radii"].dtype == torch.int32
        ((rgb - 0.5) ** 2).sum().backward()
        grads.append(info["means2d"].grad)
    assert torch.allclose(grads[0], grads[1], rtol=1e-3, atol=1e-4)


def test_double_precision_inputs_become_float32_on_cpu():
    s = {k: v.double() for k, v in one_gaussian().items()}
    rgb, alpha = call(s, "cpu")
    assert rgb.dtype == torch.float32 and alpha.dtype == torch.float32


def test_auto_picks_cpu_for_cpu_tensors():
    assert choose_backend("auto", torch.device("cpu")) == "cpu"
    _, _, info = call(one_gaussian(), "auto", return_info=True)
    assert info["backend"] == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_gsplat_without_cuda_is_a_clear_error():
    with pytest.raises(SplattalkError, match="CUDA"):
        call(one_gaussian(), "gsplat")


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(quats=torch.zeros(2, 4)), "quats"),
        (dict(scales=torch.zeros(1, 2)), "scales"),
        (dict(opacities=torch.zeros(1, 1)), "opacities"),
        (dict(viewmat=torch.eye(3)), "viewmat"),
        (dict(K=torch.eye(4)), "K"),
        (dict(colors=torch.zeros(2, 3)), "colors"),
    ],
    ids=["quats", "scales", "opacities", "viewmat", "K", "colors"],
)
def test_bad_shapes_are_reported(change, message):
    s = one_gaussian() | change
    with pytest.raises(SplattalkError, match=message):
        call(s, "cpu")


def test_bad_background_is_reported():
    with pytest.raises(SplattalkError, match="background"):
        call(one_gaussian(), "cpu", background=torch.zeros(4))


def test_bad_backend_and_sh_degree_are_reported():
    with pytest.raises(SplattalkError, match="backend"):
        call(one_gaussian(), "vulkan")
    with pytest.raises(SplattalkError, match="sh_degree"):
        call(one_gaussian() | dict(colors=torch.zeros(1, 4, 3)), "cpu", sh_degree=2)
