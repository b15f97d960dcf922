"""gsplat (CUDA) and the CPU backend render the same images and gradients.

Runs only with ``-m gpu`` on a machine with CUDA and gsplat (``pip install 'splattalk[gpu]'``).
"""

from __future__ import annotations

import pytest
import torch
from render_scenes import PARAMS, cosine, leaves, weights

from splattalk.avatar.raster import rasterize
from splattalk.avatar.raster.gsplat import gsplat_available
from splattalk.avatar.raster.scenes import HEIGHT, WIDTH, random_scene, scene_K

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not gsplat_available(), reason="needs CUDA and gsplat"),
]


def run(scene, backend, device, sh_degree=None):
    p = {k: v.to(device) for k, v in leaves(scene).items()}
    p = {k: v.detach().requires_grad_(True) for k, v in p.items()}
    rgb, alpha, depth, info = rasterize(
        p["means"],
        p["quats"],
        p["scales"],
        p["opacities"],
        p["colors"],
        p["viewmat"],
        scene_K().to(device),
        WIDTH,
        HEIGHT,
        p["background"],
        backend=backend,
        sh_degree=sh_degree,
        return_depth=True,
        return_info=True,
    )
    loss = (rgb * weights(rgb.shape, 1).to(device)).sum() + (alpha * weights(alpha.shape, 2).to(device)).sum()
    loss.backward()
    grads = {k: p[k].grad.detach().cpu() for k in PARAMS if p[k].grad is not None}
    grads["means2d"] = info["means2d"].grad.detach().cpu()
    images = [t.detach().cpu() for t in (rgb, alpha, depth)]
    return images, grads, info


def untie_depths(scene: dict) -> dict:
    """Move the scene's last Gaussian 1 cm back along the view axis.

    random_scene ends with two Gaussians at exactly the same depth. Which of a tie draws first
    is down to float rounding of the world → camera round trip (seen on an H200: gsplat computes
    both at 2.0 exactly and draws the first first; our CPU backend gets 2.0000002 for the first
    and draws the second first), so backends cannot be expected to agree on it. The cpu-vs-
    reference tests keep the tie; here it is broken so the comparison tests everything else.
    """
    out = dict(scene)
    out["means"] = scene["means"].clone()
    out["means"][-1] += 0.01 * scene["viewmat"][2, :3]  # camera z + 1 cm, expressed in world coordinates
    return out


@pytest.mark.parametrize("sh_degree", [None, 3])
def test_gsplat_matches_cpu(sh_degree):
    scene = untie_depths(random_scene(400, 40, sh_degree=sh_degree))
    (rgb_g, alpha_g, depth_g), grads_g, info_g = run(scene, "gsplat", "cuda", sh_degree)
    (rgb_c, alpha_c, depth_c), grads_c, info_c = run(scene, "cpu", "cpu", sh_degree)
    assert info_g["backend"] == "gsplat" and info_c["backend"] == "cpu"
    assert (rgb_g - rgb_c).abs().max().item() <= 1e-3
    assert (alpha_g - alpha_c).abs().max().item() <= 1e-3
    seen = alpha_c[..., 0] > 0.5
    assert (depth_g[seen] - depth_c[seen]).abs().max().item() <= 1e-2
    assert torch.equal((info_g["radii"].cpu() > 0), (info_c["radii"] > 0))
    for name in ("means", "quats", "scales", "opacities", "colors", "means2d"):
        assert cosine(grads_g[name], grads_c[name]) >= 0.99, name


def test_auto_picks_gsplat_for_cuda_tensors():
    scene = random_scene(50, 41)
    _, _, info = run(scene, "auto", "cuda")
    assert info["backend"] == "gsplat" and info["means2d"].grad is not None
