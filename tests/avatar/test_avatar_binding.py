"""Gaussians bound to the head mesh: invariants, animate(), file round-trips."""

import numpy as np
import pytest
import torch

from splattalk.avatar import quaternion
from splattalk.avatar.binding import BoundGaussians, bind_world_gaussians, face_frames, pose_gaussians
from splattalk.avatar.io import load_avatar, load_ply, save_avatar, save_ply
from splattalk.avatar.model import Avatar, animate
from splattalk.errors import SplattalkError
from splattalk.head.default import load_default_head
from splattalk.head.lbs import axis_angle_to_matrix
from splattalk.head.params import HeadParams


@pytest.fixture(scope="module")
def head():
    return load_default_head()


def random_bound(num_faces: int, n: int = 2000, sh_degree: int = 1, seed: int = 0) -> BoundGaussians:
    g = torch.Generator().manual_seed(seed)
    return BoundGaussians(
        parent=torch.randint(0, num_faces, (n,), generator=g),
        local_means=torch.randn(n, 3, generator=g) * 0.3,
        local_quats=torch.randn(n, 4, generator=g),
        log_scales=torch.randn(n, 3, generator=g) * 0.3 - 1.0,
        opacity_logits=torch.randn(n, generator=g),
        sh=torch.randn(n, (sh_degree + 1) ** 2, 3, generator=g) * 0.3,
    )


@pytest.fixture(scope="module")
def avatar(head):
    return Avatar(
        head=head,
        shape=torch.randn(head.num_shape) * 0.5,
        gaussians=random_bound(head.faces.shape[0]),
        config={"seed": 0},
    )


def test_quaternion_matrix_round_trip():
    q = quaternion.normalize(torch.randn(1000, 4, dtype=torch.float64))
    q = torch.where(q[:, :1] < 0, -q, q)
    assert torch.allclose(quaternion.from_matrix(quaternion.to_matrix(q)), q, atol=1e-10)
    a, b = (
        quaternion.normalize(torch.randn(50, 4, dtype=torch.float64)),
        quaternion.normalize(torch.randn(50, 4, dtype=torch.float64)),
    )
    assert torch.allclose(
        quaternion.to_matrix(quaternion.multiply(a, b)), quaternion.to_matrix(a) @ quaternion.to_matrix(b), atol=1e-10
    )


def test_zero_offsets_put_means_on_their_triangles(head):
    bound = random_bound(head.faces.shape[0])
    bound.local_means = torch.zeros_like(bound.local_means)
    verts = head().vertices[0]
    g = pose_gaussians(bound, face_frames(verts, head.faces))
    centroids = verts[head.faces[bound.parent]].mean(1)
    assert torch.allclose(g.means, centroids, atol=1e-7)
    # an in-plane offset (local z = 0) stays in the triangle's plane
    bound.local_means = torch.randn(bound.num, 3) * 0.2
    bound.local_means[:, 2] = 0
    g = pose_gaussians(bound, face_frames(verts, head.faces))
    tri = verts[head.faces[bound.parent]]
    n = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    n = n / n.norm(dim=-1, keepdim=True)
    assert ((g.means - tri[:, 0]) * n).sum(-1).abs().max() < 1e-7


def test_rigid_head_motion_moves_gaussians_rigidly(avatar):
    rest = HeadParams.zeros(1, avatar.head.num_expr)
    moved = HeadParams.zeros(1, avatar.head.num_expr)
    moved.rot[:] = [0.2, -0.6, 0.1]
    moved.transl[:] = [0.05, -0.02, 0.3]
    a, b = animate(avatar, rest), animate(avatar, moved)
    r = axis_angle_to_matrix(torch.tensor(moved.rot))[0]
    root = avatar.head(shape=avatar.shape).joints[0, 0]
    expected = (a.means[0] - root) @ r.T + root + torch.tensor(moved.transl[0])
    assert torch.allclose(b.means[0], expected, atol=2e-6)
    assert torch.allclose(b.scales, a.scales, rtol=1e-5)
    rq = quaternion.from_matrix(r)
    expected_q = quaternion.multiply(rq.expand_as(a.quats[0]), a.quats[0])
    same = (quaternion.to_matrix(b.quats[0]) - quaternion.to_matrix(expected_q)).abs().max()
    assert same < 1e-4


def test_bind_is_the_inverse_of_pose(head):
    bound = random_bound(head.faces.shape[0])
    frames = face_frames(head(jaw=torch.tensor([[0.2, 0.0, 0.0]])).vertices[0], head.faces)
    g = pose_gaussians(bound, frames)
    lm, lq, ls = bind_world_gaussians(g.means, g.quats, g.scales, bound.parent, frames)
    assert torch.allclose(lm, bound.local_means, atol=1e-4)
    assert torch.allclose(ls, bound.log_scales, atol=1e-5)
    back = pose_gaussians(BoundGaussians(bound.parent, lm, lq, ls, bound.opacity_logits, bound.sh), frames)
    assert torch.allclose(back.means, g.means, atol=1e-6)


def test_animate_batch_matches_single_frames(avatar):
    params = HeadParams.zeros(3, avatar.head.num_expr)
    params.jaw[:, 0] = [0.0, 0.15, 0.3]
    params.expr[:, 4] = [0.0, 0.5, 1.0]
    batch = animate(avatar, params)
    for i in range(3):
        single = animate(avatar, params.slice(i))
        assert torch.allclose(batch.means[i], single.means[0], atol=1e-6)
    # the jaw moves Gaussians bound to the chin, not those on the forehead
    jaw_w = avatar.head.lbs_weights[:, 2]
    chin_faces = torch.nonzero((jaw_w[avatar.head.faces] > 0.95).all(1))[:, 0]
    on_chin = torch.isin(avatar.gaussians.parent, chin_faces)
    assert on_chin.any()
    assert (batch.means[2, on_chin] - batch.means[0, on_chin]).norm(dim=-1).median() > 5e-3
    forehead_faces = torch.nonzero((avatar.head.v_template[avatar.head.faces][..., 1] > 0.05).all(1))[:, 0]
    on_forehead = torch.isin(avatar.gaussians.parent, forehead_faces)
    assert on_forehead.any()
    assert (batch.means[2, on_forehead] - batch.means[0, on_forehead]).norm(dim=-1).max() < 1e-4


def test_safetensors_round_trip_is_exact(tmp_path, avatar, head):
    path = tmp_path / "avatar.safetensors"
    save_avatar(path, avatar)
    back = load_avatar(path, head=head)
    for k, v in avatar.gaussians.tensors().items():
        assert torch.equal(getattr(back.gaussians, k), v), k
    assert torch.equal(back.shape, avatar.shape)
    assert back.config == avatar.config and back.model_id == avatar.model_id


def test_ply_round_trip(tmp_path, avatar):
    g = animate(avatar, HeadParams.zeros(1, avatar.head.num_expr)).frame(0)
    path = tmp_path / "canonical.ply"
    save_ply(path, g)
    back = load_ply(path)
    assert torch.equal(back.means, g.means)
    assert torch.equal(back.sh, g.sh)
    assert torch.equal(back.quats, g.quats)
    # scales and opacities are stored pre-activation (log, logit): equal to float32 precision
    assert torch.allclose(back.scales, g.scales, rtol=1e-6, atol=0)
    assert torch.allclose(back.opacities, g.opacities, rtol=1e-6, atol=1e-7)
    save_ply(tmp_path / "again.ply", back)
    assert load_ply(tmp_path / "again.ply").means.equal(back.means)
    header = path.read_bytes()[:2000].decode("ascii", errors="ignore")
    for name in ("property float f_dc_0", "property float f_rest_8", "property float opacity", "property float rot_3"):
        assert name in header


def test_bad_files_are_refused(tmp_path, head):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(SplattalkError, match="not a readable avatar"):
        load_avatar(bad, head=head)
    ply = tmp_path / "x.ply"
    ply.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\n0\n")
    with pytest.raises(SplattalkError, match="binary little-endian"):
        load_ply(ply)
    with pytest.raises(SplattalkError, match="no avatar"):
        load_avatar(tmp_path / "missing.safetensors", head=head)


def test_motion_round_trip_and_head_model_check():
    p = HeadParams.zeros(4, 26)
    p.expr[:] = np.random.randn(4, 26)
    p.jaw[:, 0] = 0.2
    p.rot[:, 1] = 0.1
    back = HeadParams.from_motion(p.to_motion())
    assert np.allclose(back.expr, p.expr) and np.allclose(back.jaw, p.jaw) and np.allclose(back.rot, p.rot)
    with pytest.raises(SplattalkError, match="another head model"):
        HeadParams.from_motion(np.zeros((5, 106)), base=p)


def test_fast_playback_path_matches_the_differentiable_one(avatar):
    params = HeadParams.zeros(2, avatar.head.num_expr)
    params.jaw[1, 0] = 0.25
    params.rot[1] = [0.1, 0.3, -0.05]
    params.expr[1, :5] = 0.7
    with torch.no_grad():
        fast = animate(avatar, params)
    trainable = avatar.gaussians.local_means.requires_grad_(True)
    try:
        slow = animate(avatar, params)
        assert slow.means.requires_grad
    finally:
        trainable.requires_grad_(False)
    assert torch.allclose(fast.means, slow.means.detach(), atol=1e-6)
    assert torch.allclose(fast.scales, slow.scales.detach(), rtol=1e-5)
    dots = (fast.quats * slow.quats.detach()).sum(-1).abs()
    assert dots.min() > 1 - 1e-6
