"""Render the rasterizer tests' edge-case scene (``avatar.raster.scenes``) with ``cpu`` and ``reference`` and write
``docs/render_test_scene.png``: cpu render | reference render | 1000 x |difference|.

    python scripts/render_test_scene.py [--out docs/render_test_scene.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from splattalk.atomic import atomic_path
from splattalk.avatar.raster import rasterize
from splattalk.avatar.raster.scenes import random_scene, scene_K

SCALE = 4  # the tests render 72x56; draw the same view 4x larger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/render_test_scene.png")
    args = parser.parse_args()
    scene = random_scene(300, 0, sh_degree=2)
    width, height = 72 * SCALE, 56 * SCALE
    K = scene_K() * torch.tensor([[SCALE], [SCALE], [1.0]])
    renders = []
    for backend in ("cpu", "reference"):
        rgb, _ = rasterize(
            scene["means"],
            scene["quats"],
            scene["scales"],
            scene["opacities"],
            scene["colors"],
            scene["viewmat"],
            K,
            width,
            height,
            torch.full((3,), 0.95),
            backend=backend,
            sh_degree=2,
        )
        renders.append(rgb.clamp(0, 1))
    diff = (renders[0] - renders[1]).abs().amax(dim=-1, keepdim=True)
    print(f"max |cpu - reference| = {diff.max().item():.2e}")
    panels = renders + [(1000 * diff).clamp(0, 1).expand(-1, -1, 3)]
    gap = torch.ones(height, 4, 3)
    image = torch.cat([panels[0], gap, panels[1], gap, panels[2]], dim=1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        Image.fromarray((image.numpy() * 255).round().astype(np.uint8)).save(tmp, format="PNG")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
