"""What the server sends the browser: packed splat buffers (oracle: viser's own packing) and the default avatar."""

from __future__ import annotations

import numpy as np
import torch
from viewer_helpers import small_avatar


def test_pack_matches_viser_packing_and_torch_covariances():
    from viser._scene_handles import GaussianSplatHandle

    from splattalk.avatar.gaussians import Gaussians
    from splattalk.viewer.splats import pack_posed, rgba_words, triu_to_full

    rng = np.random.default_rng(0)
    n = 2000
    means = rng.normal(0, 0.1, (n, 3)).astype(np.float32)
    quats = rng.normal(size=(n, 4)).astype(np.float32)
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    scales = np.exp(rng.normal(-6, 1.0, (n, 3))).astype(np.float32)  # 0.05 mm … 20 mm
    rgbs = rng.random((n, 3)).astype(np.float32)
    opac = rng.random((n, 1)).astype(np.float32)

    ours = pack_posed(means, quats, scales, 10.0, rgba_words(rgbs, opac))
    cov = Gaussians(
        torch.from_numpy(means), torch.from_numpy(quats), torch.from_numpy(scales), torch.ones(n), torch.zeros(n, 1, 3)
    ).covariances()
    ref = np.zeros((n, 8), np.uint32)
    GaussianSplatHandle._pack_centers(ref, means * 10.0)
    GaussianSplatHandle._pack_covariances(ref, cov.numpy() * 100.0)
    GaussianSplatHandle._pack_rgba(ref, rgbs, opac)
    assert np.array_equal(ours[:, [0, 1, 2, 7]], ref[:, [0, 1, 2, 7]])
    # Covariances: ours is exact in float32 before rounding to half, torch's float32 matmul differs by an ulp or so.
    ours16 = ours[:, 4:7].copy().view(np.float16).astype(np.float32)
    ref16 = ref[:, 4:7].copy().view(np.float16).astype(np.float32)
    assert np.mean(ours16 != ref16) < 0.01
    np.testing.assert_allclose(triu_to_full(ours16), cov.numpy() * 100.0, rtol=2e-3, atol=1e-7)


def test_half_rounding_matches_numpy_everywhere():
    import numba

    from splattalk.viewer.splats import _f16_bits

    @numba.njit
    def convert(values, out):
        for i in range(values.shape[0]):
            out[i] = _f16_bits(values[i])

    rng = np.random.default_rng(1)
    halves = np.arange(0, 0x7C00, dtype=np.uint16).view(np.float16).astype(np.float64)
    ties = ((halves[:-1] + halves[1:]) / 2).astype(np.float32)  # exactly between two halves: round to even
    values = np.concatenate(
        [
            ties,
            -ties,
            rng.standard_normal(100_000).astype(np.float32) * np.float32(10.0) ** rng.integers(-9, 6, 100_000),
            np.array([0.0, -0.0, 65504, 65519, 65520, 1e9, np.inf, -np.inf, 5.96e-8, 2.98e-8, 1e-12], np.float32),
        ]
    ).astype(np.float32)
    out = np.empty(values.shape[0], np.uint32)
    convert(values, out)
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16).view(np.uint16).astype(np.uint32)
    assert np.array_equal(out, expected)


def test_poser_is_the_avatar_animated_in_scene_units():
    from splattalk.avatar.model import animate
    from splattalk.head.params import HeadParams
    from splattalk.viewer.splats import SplatPoser, triu_to_full

    avatar = small_avatar(1500)
    poser = SplatPoser(avatar, None, scene_scale=10.0)
    row = np.zeros(poser.motion_dim, np.float32)
    row[0], row[-3], row[-5] = 0.8, 0.25, 0.1  # an expression, the jaw, a head turn
    buffer = poser.buffer(row)
    with torch.no_grad():
        g = animate(avatar, HeadParams.from_motion(row[None]))
    np.testing.assert_allclose(buffer[:, 0:3].copy().view(np.float32), g.means[0].numpy() * 10, atol=1e-5)
    cov = triu_to_full(buffer[:, 4:7].copy().view(np.float16).astype(np.float32))
    np.testing.assert_allclose(cov, g.covariances()[0].numpy() * 100, rtol=2e-3, atol=1e-6)
    # The scale keeps the covariances out of float16's subnormal range (< 6.1e-5), where precision is lost.
    diag = np.diagonal(cov, axis1=1, axis2=2)
    assert np.median(diag.max(1)) > 6.1e-5
    # Each session poses its own copy: a second poser does not disturb the first one's buffers.
    other = SplatPoser(avatar, None, 10.0)
    other.buffer(np.zeros_like(row))
    assert np.array_equal(poser.buffer(row), buffer)


def test_default_avatar_file():
    from splattalk.avatar.io import load_avatar
    from splattalk.avatar.model import posed_vertices
    from splattalk.head.params import HeadParams
    from splattalk.viewer.server import DEFAULT_AVATAR
    from splattalk.viewer.splats import SplatPoser

    assert DEFAULT_AVATAR.stat().st_size < 5e6
    avatar = load_avatar(DEFAULT_AVATAR)
    assert avatar.gaussians.num == 20_000 and avatar.gaussians.sh.shape[1] == 1
    poser = SplatPoser(avatar, None, 1.0)
    centers = poser.buffer(np.zeros(poser.motion_dim, np.float32))[:, 0:3].copy().view(np.float32)
    with torch.no_grad():
        verts = posed_vertices(avatar, HeadParams.zeros(1, avatar.head.num_expr))[0].numpy()
    # On the surface: each centre lies on its parent triangle (the default avatar is not fitted: no offsets).
    tri = verts[avatar.head.faces.numpy()[avatar.gaussians.parent.numpy()]]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    assert np.abs(((centers - tri[:, 0]) * normal).sum(1)).max() < 1e-5
    # Textured: skin, hair and eye colours, not one flat colour.
    assert poser.rgbs.std(0).min() > 0.05
    assert 0.5 < poser.opacities.min() and poser.opacities.max() < 1


def test_default_avatar_recipe_is_deterministic():
    a, b = small_avatar.__wrapped__(500), small_avatar.__wrapped__(500)
    for key, value in a.gaussians.tensors().items():
        assert torch.equal(value, getattr(b.gaussians, key)), key
