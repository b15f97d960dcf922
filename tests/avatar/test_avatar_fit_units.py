"""Pieces of the avatar fit: metrics, densification and pruning (and their schedule), optimizer surgery,
initialisation."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from splattalk.avatar.binding import BoundGaussians
from splattalk.avatar.densify import SPLIT_SHRINK, DensifyStats, DensifyStrategy, densify, prune
from splattalk.avatar.init import face_regions, fill_unseen, sample_points
from splattalk.avatar.metrics import psnr, ssim
from splattalk.avatar.optim import GaussianParams
from splattalk.head.default import load_default_head

LRS = {
    "local_means": 0.01,
    "local_quats": 0.001,
    "log_scales": 0.01,
    "opacity_logits": 0.05,
    "sh_dc": 0.005,
    "sh_rest": 0.0002,
}


def make_params(n: int = 6, num_faces: int = 4, sh_degree: int = 1) -> GaussianParams:
    g = torch.Generator().manual_seed(1)
    bound = BoundGaussians(
        parent=torch.arange(n) % num_faces,
        local_means=torch.randn(n, 3, generator=g) * 0.1,
        local_quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1),
        log_scales=torch.full((n, 3), math.log(0.2)),
        opacity_logits=torch.zeros(n),
        sh=torch.randn(n, (sh_degree + 1) ** 2, 3, generator=g),
    )
    return GaussianParams(bound, LRS)


def adam_step(params: GaussianParams) -> None:
    loss = sum((t**2).sum() for t in params.tensors.values())
    loss.backward()
    params.step()


def test_metrics_match_skimage():
    rng = np.random.default_rng(0)
    a = rng.random((40, 50, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1).astype(np.float32)
    ours = ssim(torch.from_numpy(a), torch.from_numpy(b))
    ref = structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=-1
    )
    assert ours == pytest.approx(ref, abs=2e-4)
    assert ssim(torch.from_numpy(a), torch.from_numpy(a)) == pytest.approx(1.0, abs=1e-6)
    mse = float(np.mean((a - b) ** 2))
    assert psnr(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(-10 * math.log10(mse), abs=1e-3)


def test_adam_matches_torch():
    """Our Adam (moments we can slice) takes torch.optim.Adam's steps, learning rates per tensor included."""
    params = make_params()
    reference = {k: v.detach().clone().requires_grad_(True) for k, v in params.tensors.items()}
    torch_adam = torch.optim.Adam([{"params": [reference[k]], "lr": LRS[k]} for k in reference], eps=1e-15)
    for _ in range(5):
        adam_step(params)
        sum((t**2).sum() for t in reference.values()).backward()
        torch_adam.step()
        torch_adam.zero_grad()
    for k, v in params.tensors.items():
        assert torch.allclose(v, reference[k], atol=1e-6), k


def test_edit_rows_keeps_adam_moments_with_their_gaussians():
    params = make_params()
    adam_step(params)
    before = {k: v.clone() for k, v in params.exp_avg.items()}
    keep = torch.tensor([True, False, True, True, False, True])
    new = {k: torch.ones(2, *v.shape[1:]) for k, v in params.tensors.items()}
    params.edit_rows(keep, new, torch.tensor([3, 3]))
    assert params.num == 6 and params.parent.tolist() == [0, 2, 3, 1, 3, 3]
    for k, v in params.tensors.items():
        moment = params.exp_avg[k]
        assert torch.equal(moment[:4], before[k][keep]), k
        assert torch.equal(moment[4:], torch.zeros_like(moment[4:])), k
        assert torch.equal(v.detach()[4:], torch.ones_like(v[4:])), k
    adam_step(params)  # the optimizer still works on the edited tensors
    assert all(torch.isfinite(v).all() for v in params.tensors.values())


def test_densify_clones_small_and_splits_large():
    params = make_params()
    face_size = torch.ones(4)
    params.tensors["log_scales"].data[3:] = math.log(0.5)  # Gaussians 3..5 are large
    stats = DensifyStats.zeros(6)
    grad = torch.zeros(6, 2)
    grad[[0, 3], 0] = 1.0  # only 0 (small) and 3 (large) pass the threshold
    stats.accumulate(grad, torch.ones(6, dtype=torch.int32), 2, 2)
    before = {k: v.detach().clone() for k, v in params.tensors.items()}
    out = densify(
        params,
        stats,
        face_size,
        head_size=10.0,
        grad_threshold=0.5,
        dense_fraction=0.03,
        max_count=100,
        generator=torch.Generator().manual_seed(0),
    )
    assert out == {"cloned": 1, "split": 1}
    assert params.num == 6 - 1 + 1 + 2
    # kept rows first (3 removed), then the clone of 0, then the two children of 3
    kept = [0, 1, 2, 4, 5]
    assert torch.equal(params.tensors["local_means"].detach()[:5], before["local_means"][kept])
    assert torch.equal(params.tensors["local_means"].detach()[5], before["local_means"][0])
    assert params.parent.tolist() == [0, 1, 2, 0, 1, 0, 3, 3]
    children = params.tensors["log_scales"].detach()[6:]
    assert torch.allclose(children, before["log_scales"][3].expand(2, 3) - math.log(SPLIT_SHRINK))
    offsets = params.tensors["local_means"].detach()[6:] - before["local_means"][3]
    assert (offsets.norm(dim=1) > 0).all() and (offsets.norm(dim=1) < 0.5 * 5).all()  # drawn from its own spread


def test_densify_respects_the_cap_and_prefers_strong_gradients():
    params = make_params()
    stats = DensifyStats.zeros(6)
    grad = torch.tensor([[1.0, 0], [3.0, 0], [2.0, 0], [0, 0], [0, 0], [0, 0]])
    stats.accumulate(grad, torch.ones(6, dtype=torch.int32), 2, 2)
    densify(
        params,
        stats,
        torch.ones(4),
        head_size=100.0,
        grad_threshold=0.5,
        dense_fraction=0.5,
        max_count=8,
        generator=torch.Generator().manual_seed(0),
    )
    assert params.num == 8
    assert params.parent[6:].tolist() == [1, 2]  # the two strongest were cloned


def test_gradient_statistics_count_only_rendered_gaussians():
    stats = DensifyStats.zeros(3)
    for radius in ([1, 0, 1], [1, 0, 0]):
        stats.accumulate(torch.tensor([[1.0, 0.0], [5.0, 5.0], [0.0, 2.0]]), torch.tensor(radius), 4, 4)
    assert stats.count.tolist() == [2, 0, 1]
    assert torch.allclose(stats.mean(), torch.tensor([2.0, 0.0, 4.0]))


def test_prune_removes_transparent_and_oversized():
    params = make_params()
    params.tensors["opacity_logits"].data[1] = -8.0  # opacity 3e-4
    params.tensors["log_scales"].data[4, 2] = math.log(40.0)  # 40 triangle sizes
    removed = prune(params, torch.ones(4), head_size=100.0, min_opacity=0.005, max_size_fraction=0.1)
    assert removed == 2 and params.num == 4
    assert params.parent.tolist() == [0, 2, 3, 1]


def _render_info(n: int, grad: float) -> dict:
    """What rasterize(..., return_info=True) hands the strategy: every Gaussian seen, the same pixel gradient."""
    means2d = torch.zeros(n, 2, requires_grad=True)
    means2d.grad = torch.full((n, 2), grad)
    return {"means2d": means2d, "radii": torch.ones(n, dtype=torch.int32), "width": 2, "height": 2}


def test_strategy_grows_on_its_schedule_then_only_prunes():
    params = make_params()
    strategy = DensifyStrategy(
        torch.ones(4),
        100.0,
        torch.Generator().manual_seed(0),
        max_count=100,
        densify_from=4,
        densify_until=6,
        every=2,
        grad_threshold=0.5,
        dense_fraction=0.5,
        prune_opacity=0.005,
        prune_size=0.1,
    )
    strategy.initialize(params.num)
    counts = []
    for step in range(1, 9):
        done = strategy.step_post_backward(params, step, _render_info(params.num, 1.0))
        counts.append((params.num, done["cloned"]))
    # step 2: too early to grow (prunes only); steps 4 and 6 clone every Gaussian; after step 6 nothing grows
    assert counts == [(6, 0), (6, 0), (6, 0), (12, 6), (12, 0), (24, 12), (24, 0), (24, 0)]
    assert strategy.stats.count.tolist() == [0.0] * 24  # restarted at step 6 and not accumulated since
    params.tensors["opacity_logits"].data[:3] = -8.0  # pruning goes on after the growth phase
    assert strategy.step_post_backward(params, 10, _render_info(params.num, 1.0))["pruned"] == 3
    assert params.num == 21


def test_strategy_state_round_trips():
    params = make_params()
    args = dict(
        max_count=100,
        densify_from=4,
        densify_until=6,
        every=2,
        grad_threshold=0.5,
        dense_fraction=0.5,
        prune_opacity=0.005,
        prune_size=0.1,
    )
    strategy = DensifyStrategy(torch.ones(4), 100.0, torch.Generator(), **args)
    strategy.initialize(params.num)
    strategy.step_post_backward(params, 1, _render_info(params.num, 0.25))
    again = DensifyStrategy(torch.ones(4), 100.0, torch.Generator(), **args)
    again.load_state_dict(strategy.state_dict())
    assert torch.equal(again.stats.grad_sum, strategy.stats.grad_sum) and again.stats.count.tolist() == [1.0] * 6


def test_initial_gaussians_cover_carrying_triangles_area_uniformly():
    head = load_default_head()
    carry, region = face_regions(head)
    faces = head.faces_np
    in_region = np.zeros(head.num_vertices, bool)
    for verts in head.regions.values():
        in_region[verts] = True
    socket = ~in_region[faces].all(1)
    assert socket.any() and not (carry & socket).any()  # eye sockets carry nothing
    for name in ("scalp", "teeth", "mouth_interior", "ears", "neck"):
        inside = np.zeros(head.num_vertices, bool)
        inside[head.regions[name]] = True
        assert carry[inside[faces].all(1)].all(), name
    verts = head.v_template.numpy().astype(np.float64)
    parent, bary, share = sample_points(verts, faces, carry, 40_000, np.random.default_rng(0))
    assert carry[parent].all() and np.bincount(parent, minlength=len(faces))[carry].min() >= 1
    assert np.allclose(bary.sum(1), 1) and (bary >= 0).all()
    # density is uniform: points per unit area agree between the face and the scalp
    tri = verts[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    counts = np.bincount(parent, minlength=len(faces))
    for name in ("face", "scalp"):
        sel = carry & (
            region
            == list(("teeth", "mouth_interior", "eyes", "lips", "ears", "face", "neck", "scalp", "skull")).index(name)
        )
        density = counts[sel].sum() / area[sel].sum()
        assert density == pytest.approx(40_000 / area[carry].sum(), rel=0.1), name
    assert share.sum() == pytest.approx(area[carry].sum(), rel=1e-9)


def test_unseen_points_borrow_colours_from_their_own_region():
    pos = np.array([[0, 0, 0], [1, 0, 0], [0.1, 0, 0], [0.9, 0, 0]], float)
    colors = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0]], float)
    seen = np.array([True, True, False, False])
    groups = np.array([0, 1, 1, 0])  # the unseen point near 0 belongs to group 1: it takes group 1's colour
    out = fill_unseen(colors, seen, pos, groups)
    assert out[2].tolist() == [0, 1, 0] and out[3].tolist() == [1, 0, 0]
