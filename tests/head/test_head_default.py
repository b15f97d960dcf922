"""The built-in default head: interface, LBS invariants, landmarks, topology."""

import numpy as np
import pytest
import torch

from splattalk.head.default import EXPR_NAMES, load_default_head
from splattalk.head.lbs import axis_angle_to_matrix


@pytest.fixture(scope="module")
def head():
    return load_default_head()


def test_sizes_and_interface(head):
    assert head.num_vertices >= 3000
    assert head.num_shape >= 10
    assert head.num_expr == len(EXPR_NAMES) >= 20
    assert head.expr_names == EXPR_NAMES
    assert head.lmk_ids.tolist() == list(range(478))
    assert head.uvs is not None and head.uv_faces.shape == head.faces.shape
    w = head.lbs_weights
    assert torch.allclose(w.sum(1), torch.ones(head.num_vertices), atol=1e-5) and (w >= 0).all()
    assert torch.allclose(head.J_regressor.sum(1), torch.ones(5), atol=1e-5)


def test_zero_parameters_give_the_template(head):
    out = head()
    assert torch.allclose(out.vertices[0], head.v_template, atol=1e-7)


def test_global_rotation_is_rigid(head):
    rot = torch.tensor([[0.3, -0.5, 0.2]])
    out = head(rotation=rot)
    base = head()
    # rotation about the root joint: v' = R (v - j0) + j0
    r = axis_angle_to_matrix(rot)[0]
    j0 = base.joints[0, 0]
    expected = (base.vertices[0] - j0) @ r.T + j0
    assert torch.allclose(out.vertices[0], expected, atol=1e-6)
    idx = torch.randperm(head.num_vertices)[:300]
    d0 = torch.cdist(base.vertices[0, idx], base.vertices[0, idx], compute_mode="donot_use_mm_for_euclid_dist")
    d1 = torch.cdist(out.vertices[0, idx], out.vertices[0, idx], compute_mode="donot_use_mm_for_euclid_dist")
    assert torch.allclose(d0, d1, atol=1e-6)


def test_translation_shifts_everything(head):
    t = torch.tensor([[0.01, -0.02, 0.5]])
    out, base = head(translation=t), head()
    assert torch.allclose(out.vertices, base.vertices + t[:, None], atol=1e-6)
    assert torch.allclose(out.landmarks, base.landmarks + t[:, None], atol=1e-6)


def test_jaw_opens_the_mouth_and_leaves_the_forehead(head):
    base = head().vertices[0]
    opened = head(jaw=torch.tensor([[0.3, 0.0, 0.0]])).vertices[0]
    lower_lip, upper_lip, forehead, nose = 17, 0, 10, 1
    assert opened[lower_lip, 1] < base[lower_lip, 1] - 0.01  # moves down by more than a centimetre
    for still in (upper_lip, forehead, nose, 468, 473):
        assert torch.allclose(opened[still], base[still], atol=1e-5)
    teeth = torch.as_tensor(head.regions["teeth"])
    moved = (opened[teeth] - base[teeth]).norm(dim=1) > 1e-3
    assert 0.3 < moved.float().mean() < 0.7  # lower teeth follow the jaw, upper teeth do not


def test_eyes_rotate_rigidly_about_their_centres(head):
    base = head()
    out = head(eyes=torch.tensor([[0.0, 0.3, 0.0, 0.0, 0.3, 0.0]]))
    for side, joint in (("left", 3), ("right", 4)):
        ids = torch.as_tensor(head.regions[f"eyeball_{side}"])
        c = base.joints[0, joint]
        r0 = (base.vertices[0, ids] - c).norm(dim=1)
        r1 = (out.vertices[0, ids] - c).norm(dim=1)
        assert torch.allclose(r0, r1, atol=1e-6)
        assert (out.vertices[0, ids] - base.vertices[0, ids]).norm(dim=1).max() > 3e-3
    skin = torch.as_tensor(head.regions["face"])
    assert torch.allclose(out.vertices[0, skin], base.vertices[0, skin], atol=1e-7)


# where each expression should act (mediapipe landmark ids around which the region is drawn)
_MOUTH = [0, 17, 61, 291, 13, 14]
_EYE_L, _EYE_R = [386, 374, 263, 362], [159, 145, 33, 133]
_BROWS = [105, 334, 107, 336, 66, 296]
_REGION_OF = {
    "blink_left": (_EYE_L, 0.025),
    "blink_right": (_EYE_R, 0.025),
    "squint_left": (_EYE_L, 0.03),
    "squint_right": (_EYE_R, 0.03),
    "eyes_wide": (_EYE_L + _EYE_R, 0.025),
    "brow_inner_up": (_BROWS, 0.04),
    "brow_outer_up": (_BROWS, 0.045),
    "brow_down": (_BROWS, 0.045),
    "brow_in": (_BROWS, 0.03),
    "nose_wrinkle": ([1, 4, 129, 358, 6, 205, 425], 0.04),
    "cheek_puff": ([205, 425, 61, 291], 0.045),
    "cheek_raise": ([205, 425, 50, 280, 145, 374, 61, 291], 0.045),
    "jaw_forward": ([152, 17], 0.09),
    "smile": (_MOUTH + [205, 425], 0.05),
    "frown": (_MOUTH + [205, 425], 0.05),
}


@pytest.mark.parametrize("name", EXPR_NAMES)
def test_each_expression_acts_on_its_region(head, name):
    k = EXPR_NAMES.index(name)
    d = head.exprdirs[..., k].norm(dim=1)
    assert d.max() > 1.5e-3, f"{name} barely moves anything"
    anchors, radius = _REGION_OF.get(name, (_MOUTH, 0.045))
    centre = head.v_template[anchors]
    near = torch.cdist(head.v_template, centre).min(1).values < radius
    energy = d**2
    assert energy[near].sum() / energy.sum() > 0.97, f"{name} leaks outside its region"


def test_expression_basis_is_orthogonal_and_blink_closes_the_eye(head):
    flat = head.exprdirs.reshape(-1, head.num_expr)
    gram = flat.T @ flat
    off = gram - torch.diag(torch.diag(gram))
    assert off.abs().max() < 1e-6 * gram.diag().max()
    # after orthogonalization, blink=1 still closes the lid gap to under a quarter of the open gap
    for side, upper, lower in (("left", 386, 374), ("right", 159, 145)):
        expr = torch.zeros(1, head.num_expr)
        expr[0, EXPR_NAMES.index(f"blink_{side}")] = 1.0
        v = head(expr=expr).vertices[0]
        base = head().vertices[0]
        open_gap = (base[upper] - base[lower]).norm()
        assert open_gap > 5e-3
        assert (v[upper] - v[lower]).norm() < 0.25 * open_gap


def test_shape_basis_is_orthogonal(head):
    flat = head.shapedirs.reshape(-1, head.num_shape)
    gram = flat.T @ flat
    assert (gram - torch.diag(torch.diag(gram))).abs().max() < 1e-6 * gram.diag().max()


def test_landmark_embedding_lands_on_vertices(head):
    shape = torch.randn(1, head.num_shape)
    expr = torch.randn(1, head.num_expr) * 0.5
    out = head(shape=shape, expr=expr, jaw=torch.tensor([[0.2, 0.0, 0.0]]), rotation=torch.tensor([[0.1, 0.4, 0.0]]))
    assert out.landmarks.shape == (1, 478, 3)
    assert torch.allclose(out.landmarks[0], out.vertices[0, :478], atol=1e-7)


def _directed_edges(faces):
    return np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])


def test_watertight_with_consistent_outward_normals(head):
    faces = head.faces_np
    v = head.v_template.numpy()
    # each connected part: every edge used twice, in opposite directions (closed, consistently oriented)
    import scipy.sparse as sp
    import scipy.sparse.csgraph as cg

    e = _directed_edges(faces)
    adj = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(len(v), len(v)))
    n_parts, labels = cg.connected_components(adj, directed=False)
    face_label = labels[faces[:, 0]]
    part_names = []
    for c in np.unique(face_label):
        part = faces[face_label == c]
        d = _directed_edges(part)
        keys = set(map(tuple, d))
        assert len(keys) == len(d), "an edge is used twice in the same direction"
        assert all((b, a) in keys for a, b in keys), "an open boundary"
        tri = v[part]
        volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
        assert volume > 0, "normals point inwards"
        part_names.append(len(np.unique(part)))
    # head shell (with mouth cavity and eye sockets), two eyeballs, two teeth arches
    assert sorted(part_names)[-1] > 3000 and len(part_names) == 5


def test_left_right_symmetry(head):
    mirror = torch.as_tensor(
        head.to_arrays().get(
            "mirror", np.load(__import__("splattalk.head.default", fromlist=["x"]).ASSET_PATH)["mirror"]
        )
    )
    v = head.v_template
    ok = mirror >= 0
    assert ok.float().mean() > 0.99  # all but the few quads mediapipe splits along different diagonals
    assert torch.allclose(v[mirror[ok]] * torch.tensor([-1.0, 1, 1]), v[ok], atol=1e-5)
