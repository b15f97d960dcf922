"""LBS on a FLAME-layout model loaded from a file: invariants, a numpy oracle, and posedirs ordering by hand."""

from __future__ import annotations

import flame_layouts as layouts
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from splattalk.head import flame


@pytest.fixture(scope="module")
def raw():
    return layouts.flame_arrays(seed=3)


@pytest.fixture(scope="module")
def model(tmp_path_factory, raw):
    path = layouts.write_flame(tmp_path_factory.mktemp("lbs") / "generic_model.pkl", raw)
    return flame.load_flame(path).double()


def flame_reference(raw, shape, expr, pose, translation):
    """FLAME's forward pass written out in numpy (float64) from the raw file arrays, as chumpy's lbs defines it.

    pose: [5, 3] axis-angle (root, neck, jaw, eye_left, eye_right). Rotations come from scipy, not our code.
    """
    rots = Rotation.from_rotvec(pose).as_matrix()
    shaped = raw["v_template"] + raw["shapedirs"] @ np.concatenate([shape, expr])
    joints = raw["J_regressor"] @ shaped
    feature = np.concatenate([(rots[j] - np.eye(3)).ravel() for j in range(1, 5)])  # lrotmin: row-major
    posed = shaped + raw["posedirs"] @ feature
    parents = [-1, 0, 1, 1, 1]
    world = []
    for j in range(5):
        local = np.eye(4)
        local[:3, :3] = rots[j]
        local[:3, 3] = joints[j] - (joints[parents[j]] if j else 0)
        world.append(local if j == 0 else world[parents[j]] @ local)
    skin = []
    for j in range(5):
        transform = world[j].copy()
        transform[:3, 3] -= world[j][:3, :3] @ joints[j]
        skin.append(transform)
    blended = np.einsum("vj,jrc->vrc", raw["weights"], np.stack(skin))
    out = np.einsum("vrc,vc->vr", blended[:, :3, :3], posed) + blended[:, :3, 3]
    return out + translation


def pose_kwargs(pose, batch=True):
    pose = torch.as_tensor(pose, dtype=torch.float64).reshape(5, 3)
    return {"rotation": pose[None, 0], "neck": pose[None, 1], "jaw": pose[None, 2], "eyes": pose[3:].reshape(1, 6)}


def test_zero_parameters_give_the_template(model, raw):
    out = model()
    np.testing.assert_allclose(out.vertices[0].numpy(), raw["v_template"], atol=1e-7)
    np.testing.assert_allclose(out.joints[0].numpy(), raw["J_regressor"] @ raw["v_template"], atol=1e-7)
    assert out.landmarks.shape == (1, 0, 3)


def test_matches_numpy_flame_reference(model, raw):
    rng = np.random.default_rng(0)
    for _ in range(3):
        shape, expr = rng.normal(0, 2, 300), rng.normal(0, 2, 100)
        pose, translation = rng.normal(0, 0.3, (5, 3)), rng.normal(0, 0.1, 3)
        out = model(
            shape=torch.from_numpy(shape)[None],
            expr=torch.from_numpy(expr)[None],
            translation=torch.from_numpy(translation)[None],
            **pose_kwargs(pose),
        )
        expected = flame_reference(raw, shape, expr, pose, translation)
        np.testing.assert_allclose(out.vertices[0].numpy(), expected, atol=1e-6)


def test_global_rotation_is_rigid(model, raw):
    rotvec = np.array([0.4, -1.1, 0.7])
    out = model(rotation=torch.from_numpy(rotvec)[None]).vertices[0].numpy()
    sample = np.random.default_rng(1).choice(5023, 300, replace=False)
    before = np.linalg.norm(raw["v_template"][sample, None] - raw["v_template"][None, sample], axis=-1)
    after = np.linalg.norm(out[sample, None] - out[None, sample], axis=-1)
    np.testing.assert_allclose(after, before, atol=1e-7)  # the model holds float32 arrays
    # …and it is the rotation about the root joint
    root = raw["J_regressor"][0] @ raw["v_template"]
    expected = (raw["v_template"] - root) @ Rotation.from_rotvec(rotvec).as_matrix().T + root
    np.testing.assert_allclose(out, expected, atol=1e-7)


def test_translation_shifts_everything(model, raw):
    t = torch.tensor([[0.1, -0.2, 0.3]], dtype=torch.float64)
    pose = pose_kwargs(np.random.default_rng(2).normal(0, 0.2, (5, 3)))
    moved, still = model(translation=t, **pose), model(**pose)
    np.testing.assert_allclose(
        (moved.vertices - still.vertices).numpy(), np.broadcast_to(t.numpy(), (1, 5023, 3)), atol=1e-12
    )
    np.testing.assert_allclose((moved.joints - still.joints).numpy(), np.broadcast_to(t.numpy(), (1, 5, 3)), atol=1e-12)


def test_posedirs_feature_order_by_hand(tmp_path):
    """One pose corrective, one rotation: the offset must be posedirs[..., k] times entry (r, c) of (R - I).

    Feature k = 9 * (joint - 1) + 3 * r + c. Take k = 10: jaw (joint 2), r = 0, c = 1. A jaw rotation by θ
    about z has (R - I)[0, 1] = -sin θ and (R - I)[1, 0] = +sin θ, so a transposed (column-major) reading
    of posedirs would flip the sign.
    """
    raw = layouts.flame_arrays(seed=4)
    raw["weights"] = np.zeros_like(raw["weights"])
    raw["weights"][:, 0] = 1.0  # skinning follows the root only: vertices move by correctives alone
    corrective = np.random.default_rng(5).normal(0, 0.01, (5023, 3))
    raw["posedirs"] = np.zeros_like(raw["posedirs"])
    raw["posedirs"][:, :, 10] = corrective
    model = flame.load_flame(layouts.write_flame(tmp_path / "generic_model.pkl", raw)).double()
    theta = 0.3
    out = model(jaw=torch.tensor([[0.0, 0.0, theta]], dtype=torch.float64)).vertices[0].numpy()
    np.testing.assert_allclose(out - raw["v_template"], -np.sin(theta) * corrective, atol=1e-7)
    # the neck's (0, 1) entry is feature 1: the same corrective must not respond to the neck
    out = model(neck=torch.tensor([[0.0, 0.0, theta]], dtype=torch.float64)).vertices[0].numpy()
    np.testing.assert_allclose(out, raw["v_template"], atol=1e-7)


def test_embedded_landmarks_follow_the_posed_mesh(tmp_path, raw):
    written = layouts.write_embedding(tmp_path / "mediapipe_landmark_embedding.npz", seed=7)
    model = flame.load_flame(
        layouts.write_flame(tmp_path / "generic_model.pkl", raw), tmp_path / "mediapipe_landmark_embedding.npz"
    ).double()
    assert model.lmk_ids.tolist() == layouts.MEDIAPIPE_IDS.tolist()
    rng = np.random.default_rng(8)
    out = model(expr=torch.from_numpy(rng.normal(0, 2, 100))[None], **pose_kwargs(rng.normal(0, 0.3, (5, 3))))
    corners = out.vertices[0].numpy()[raw["f"].astype(np.int64)[written["lmk_face_idx"].astype(np.int64)]]
    expected = (corners * written["lmk_b_coords"][:, :, None]).sum(1)
    np.testing.assert_allclose(out.landmarks[0].numpy(), expected, atol=1e-7)
