"""Coarse-to-fine fitting: the coarse camera sees what 2×2 averaging of the full image shows."""

import torch

from splattalk.avatar.metrics import psnr
from splattalk.avatar.pyramid import coarse_camera, downsample, is_coarse, training_view
from splattalk.avatar.raster import rasterize
from splattalk.avatar.raster.scenes import HEIGHT, WIDTH, random_scene, scene_K
from splattalk.avatar.view import Camera


def render(scene: dict, camera: Camera) -> torch.Tensor:
    rgb, _ = rasterize(
        scene["means"],
        scene["quats"],
        scene["scales"],
        scene["opacities"],
        scene["colors"],
        camera.viewmat,
        camera.K,
        camera.width,
        camera.height,
        scene["background"],
        backend="cpu",
    )
    return rgb


def test_coarse_camera_matches_block_average_of_the_full_render():
    scene = random_scene(200, seed=3, edge_cases=False)
    K = scene_K(2 * WIDTH, 2 * HEIGHT, focal=140.0)
    full = Camera(scene["viewmat"], K, 2 * WIDTH, 2 * HEIGHT)
    coarse = coarse_camera(full)
    assert (coarse.width, coarse.height) == (WIDTH, HEIGHT)
    averaged = downsample(render(scene, full))
    assert averaged.shape == (HEIGHT, WIDTH, 3)
    agree = psnr(render(scene, coarse), averaged)
    # a camera off by one coarse pixel is the control: the geometry must line up, not just the colours
    K_off = coarse.K.clone()
    K_off[0, 2] += 1.0
    shifted = psnr(render(scene, Camera(coarse.viewmat, K_off, WIDTH, HEIGHT)), averaged)
    assert agree > 40.0 and agree > shifted + 10.0, (agree, shifted)


def test_schedule_and_small_images():
    assert is_coarse(1, 100, 0.5, 512, 512) and is_coarse(50, 100, 0.5, 512, 512)
    assert not is_coarse(51, 100, 0.5, 512, 512)
    assert not is_coarse(1, 100, 0.0, 512, 512)
    assert not is_coarse(1, 100, 1.0, 200, 200)  # the coarse level would be under 128 px: full resolution
    cam = Camera(torch.eye(4), scene_K(64, 48), 64, 48)
    target = torch.rand(48, 64, 3)
    same_cam, same = training_view(cam, target, coarse=False)
    assert same_cam is cam and same is target
    small_cam, small = training_view(cam, target, coarse=True)
    assert small.shape == (24, 32, 3) and torch.allclose(small[0, 0], target[:2, :2].mean((0, 1)))
    assert torch.allclose(small_cam.K[:2], cam.K[:2] / 2)
