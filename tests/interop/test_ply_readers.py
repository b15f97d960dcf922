"""Our .ply through the readers of other tools, replayed from their documented loading logic (no code copied):

- graphdeco-inria/gaussian-splatting ``GaussianModel.load_ply`` (also GaussianAvatars'): plyfile, first element,
  ``f_rest_*`` sorted by index and asserted to number ``3 * (max_sh_degree + 1)**2 - 3`` (degree 3 by default),
  reshaped channel-major to [N, 3, K-1]; ``scale_*`` / ``rot*`` sorted by index.
- antimatter15/splat ``convert.py`` (the .ply → .splat step of that web viewer): ``vertex`` element, colour
  ``0.5 + SH_C0 * f_dc``, ``exp(scale)``, ``sigmoid(opacity)``, wxyz ``rot`` normalised.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from splattalk.avatar.gaussians import Gaussians
from splattalk.avatar.io import load_ply, save_ply
from splattalk.errors import SplattalkError

plyfile = pytest.importorskip("plyfile")  # the reader the original 3DGS code and antimatter15/splat use

SH_C0 = 0.28209479177387814


def gaussians(n=50, degree=1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    quats = torch.randn(n, 4, generator=gen)
    return Gaussians(
        means=torch.randn(n, 3, generator=gen) * 0.1,
        quats=quats / quats.norm(dim=-1, keepdim=True),
        scales=torch.rand(n, 3, generator=gen) * 0.01 + 1e-3,
        opacities=torch.rand(n, generator=gen) * 0.9 + 0.05,
        sh=torch.randn(n, (degree + 1) ** 2, 3, generator=gen) * 0.3,
    )


def replay_3dgs_load_ply(path, max_sh_degree=3):
    """What the original GaussianModel.load_ply computes, as plain arrays (it asserts on the f_rest count)."""
    plydata = plyfile.PlyData.read(str(path))
    el = plydata.elements[0]
    xyz = np.stack([np.asarray(el[a]) for a in ("x", "y", "z")], axis=1)
    opacities = np.asarray(el["opacity"])[..., None]
    dc = np.stack([np.asarray(el[f"f_dc_{c}"]) for c in range(3)], axis=1)  # [N, 3]
    names = sorted((p.name for p in el.properties if p.name.startswith("f_rest_")), key=lambda x: int(x.split("_")[-1]))
    assert len(names) == 3 * (max_sh_degree + 1) ** 2 - 3
    rest = np.stack([np.asarray(el[n]) for n in names], axis=1).reshape(len(xyz), 3, (max_sh_degree + 1) ** 2 - 1)
    by_prefix = {}
    for prefix in ("scale_", "rot"):
        found = sorted(
            (p.name for p in el.properties if p.name.startswith(prefix)), key=lambda x: int(x.split("_")[-1])
        )
        by_prefix[prefix] = np.stack([np.asarray(el[n]) for n in found], axis=1)
    return xyz, dc, rest, opacities, by_prefix["scale_"], by_prefix["rot"]


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_original_3dgs_loader_reads_our_default_ply(tmp_path, degree):
    g = gaussians(degree=degree)
    path = tmp_path / "canonical.ply"
    save_ply(path, g)
    xyz, dc, rest, opac, scales, rots = replay_3dgs_load_ply(path, max_sh_degree=3)
    np.testing.assert_array_equal(xyz, g.means.numpy())
    np.testing.assert_array_equal(dc, g.sh[:, 0].numpy())
    k = (degree + 1) ** 2
    np.testing.assert_array_equal(rest[:, :, : k - 1], g.sh[:, 1:].permute(0, 2, 1).numpy())
    assert not rest[:, :, k - 1 :].any()  # bands above the avatar's degree are zero
    np.testing.assert_allclose(1 / (1 + np.exp(-opac[:, 0])), g.opacities.numpy(), rtol=1e-5)
    np.testing.assert_allclose(np.exp(scales), g.scales.numpy(), rtol=1e-5)
    np.testing.assert_array_equal(rots, g.quats.numpy())


def test_explicit_lower_degree_matches_sh_degree_flag(tmp_path):
    """Users who train 3DGS with --sh_degree 1 get a file that loader accepts; too low a degree is refused."""
    g = gaussians(degree=1)
    save_ply(tmp_path / "d1.ply", g, sh_degree=1)
    replay_3dgs_load_ply(tmp_path / "d1.ply", max_sh_degree=1)
    with pytest.raises(AssertionError):
        replay_3dgs_load_ply(tmp_path / "d1.ply", max_sh_degree=3)
    with pytest.raises(SplattalkError, match="SH degree 1; writing degree 0"):
        save_ply(tmp_path / "d0.ply", g, sh_degree=0)


def test_web_viewer_conversion_reads_our_ply(tmp_path):
    g = gaussians(degree=1, seed=4)
    save_ply(tmp_path / "a.ply", g)
    vert = plyfile.PlyData.read(str(tmp_path / "a.ply"))["vertex"]
    pos = np.stack([vert[a] for a in ("x", "y", "z")], 1)
    scales = np.exp(np.stack([vert[f"scale_{i}"] for i in range(3)], 1))
    rgb = 0.5 + SH_C0 * np.stack([vert[f"f_dc_{c}"] for c in range(3)], 1)
    alpha = 1 / (1 + np.exp(-vert["opacity"]))
    rot = np.stack([vert[f"rot_{i}"] for i in range(4)], 1)
    np.testing.assert_array_equal(pos, g.means.numpy())
    np.testing.assert_allclose(scales, g.scales.numpy(), rtol=1e-5)
    np.testing.assert_allclose(rgb, 0.5 + SH_C0 * g.sh[:, 0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(alpha, g.opacities.numpy(), rtol=1e-5)
    np.testing.assert_allclose(rot / np.linalg.norm(rot, axis=1, keepdims=True), g.quats.numpy(), atol=1e-6)


def test_our_reader_round_trips_the_padded_file(tmp_path):
    g = gaussians(degree=1)
    save_ply(tmp_path / "a.ply", g)
    back = load_ply(tmp_path / "a.ply")
    assert back.sh_degree == 1 and torch.equal(back.sh, g.sh)
