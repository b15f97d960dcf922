"""An optimisation loop on the CPU backend recovers an image rendered from known Gaussians."""

from __future__ import annotations

import torch

from splattalk.avatar.raster import rasterize
from splattalk.avatar.raster.scenes import random_scene, scene_K

W, H = 48, 40


def render(params, background):
    return rasterize(
        params["means"],
        params["quats"],
        torch.exp(params["log_scales"]),
        torch.sigmoid(params["logit_opacities"]),
        params["colors"],
        params["viewmat"],
        scene_K(W, H, focal=45.0),
        W,
        H,
        background,
        backend="cpu",
        return_info=True,
    )


def test_fitting_recovers_target_image():
    truth = random_scene(40, 31, edge_cases=False, spread=1.0)
    background = torch.tensor([0.1, 0.1, 0.1])
    target = {
        "means": truth["means"],
        "quats": truth["quats"],
        "log_scales": torch.log(truth["scales"].clamp_min(0.03)),
        "logit_opacities": torch.logit(truth["opacities"].clamp(0.3, 0.95)),
        "colors": truth["colors"],
        "viewmat": truth["viewmat"],
    }
    with torch.no_grad():
        target_rgb, _, _ = render(target, background)

    g = torch.Generator().manual_seed(1)
    params = {
        "means": target["means"] + 0.08 * torch.randn(40, 3, generator=g),
        "quats": target["quats"] + 0.3 * torch.randn(40, 4, generator=g),
        "log_scales": target["log_scales"] + 0.3 * torch.randn(40, 3, generator=g),
        "logit_opacities": torch.zeros(40),
        "colors": torch.rand(40, 3, generator=g),
    }
    params = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    params["viewmat"] = truth["viewmat"]
    opt = torch.optim.Adam(
        [
            {"params": [params["means"]], "lr": 0.004},
            {"params": [params["quats"], params["log_scales"]], "lr": 0.02},
            {"params": [params["logit_opacities"], params["colors"]], "lr": 0.05},
        ]
    )
    losses = []
    grad2d_seen = torch.zeros(40)
    for _ in range(250):
        rgb, _, info = render(params, background)
        loss = ((rgb - target_rgb) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        visible = info["radii"] > 0
        grad2d_seen[visible] += info["means2d"].grad[visible].norm(dim=-1)  # densification stat
    assert losses[-1] <= losses[0] / 10, (losses[0], losses[-1])
    assert (grad2d_seen > 0).float().mean() > 0.9
