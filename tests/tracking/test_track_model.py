"""Tracker internals against oracles: closed-form landmarks vs HeadModel, analytic vs numeric Jacobians,
banded Gauss–Newton solve vs dense, crop/camera conventions, static offsets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from splattalk.camera import focal_from_fov, fov_from_focal, intrinsics
from splattalk.head.default import load_default_head
from splattalk.tracking import camera
from splattalk.tracking.config import LandmarkFitConfig
from splattalk.tracking.crop import Crop, plan_crop, warp_square
from splattalk.tracking.fit import Problem
from splattalk.tracking.landmark_model import LandmarkModel
from splattalk.tracking.smooth import interpolate_missing
from splattalk.tracking.solver import ACCELERATION, VELOCITY, Normal


@pytest.fixture(scope="module")
def model():
    return load_default_head()


def random_state(rng, frames=3, offsets=True):
    return dict(
        shape=rng.normal(size=16),
        expr=rng.uniform(0, 1, (frames, 26)),
        rot=0.3 * rng.normal(size=(frames, 3)),
        jaw=0.2 * rng.normal(size=(frames, 3)),
        eyes=0.2 * rng.normal(size=(frames, 6)),
        transl=0.05 * rng.normal(size=(frames, 3)),
        offsets=0.002 * rng.normal(size=(478, 3)) if offsets else None,
    )


def head_landmarks(model, state: dict) -> np.ndarray:
    """The head model's own landmarks for a tracker parameter ``state`` (the oracle of the tracker's LandmarkModel)."""
    t = {k: torch.tensor(state[k], dtype=torch.float32) for k in ("shape", "expr", "rot", "jaw", "eyes", "transl")}
    with torch.no_grad():
        return model(
            shape=t["shape"], expr=t["expr"], rotation=t["rot"], jaw=t["jaw"], eyes=t["eyes"], translation=t["transl"]
        ).landmarks.numpy()


def test_landmark_model_equals_head_model(model):
    lm = LandmarkModel(model)
    state = random_state(np.random.default_rng(1), offsets=False)
    ours = lm(**state).points
    ref = head_landmarks(model, state)
    assert np.abs(ours - ref).max() < 1e-6  # metres; float32 reference


def test_pixel_jacobians_match_finite_differences(model):
    lm = LandmarkModel(model)
    rng = np.random.default_rng(2)
    state = random_state(rng)
    problem = Problem(
        lm,
        np.zeros((3, 478, 2)),
        np.ones(3, bool),
        np.ones(478),
        np.ones(478, bool),
        512,
        512,
        LandmarkFitConfig(),
        1000.0,
    )
    problem.distance = 0.6
    log_f = np.log(1000.0)
    posed = lm(**state, jacobian=True)
    uv, d_x, d_focal = problem.project(posed.points, log_f, jacobian=True)
    jac = lm.pixel_jacobians(posed, d_x)
    eps = 1e-6
    for key, group in (
        ("rot", "rot"),
        ("transl", "transl"),
        ("jaw", "jaw"),
        ("eyes", "eyes"),
        ("expr", "expr"),
        ("shape", "shape"),
        ("offsets", "offset"),
    ):
        for k in range(state[key].shape[-1]):
            bumped = {**state, key: state[key].copy()}
            bumped[key][..., k] += eps
            numeric = (problem.project(lm(**bumped).points, log_f) - uv) / eps
            assert np.abs(numeric - jac[group][..., k]).max() < 1e-3 * max(1.0, np.abs(jac[group]).max()), (key, k)
    numeric = (problem.project(posed.points, log_f + eps) - uv) / eps
    assert np.abs(numeric - d_focal).max() < 1e-3


def test_banded_solve_equals_dense():
    rng = np.random.default_rng(3)
    frames, p, q = 7, 4, 3
    normal = Normal.zeros(frames, p, q)
    a = rng.normal(size=(frames, p, p))
    normal.blocks[:] = a @ a.transpose(0, 2, 1) + np.eye(p)
    normal.cross[:] = 0.1 * rng.normal(size=(frames, p, q))
    b = rng.normal(size=(q, q))
    normal.shared[:] = b @ b.T + 5 * np.eye(q)
    normal.grad_frames[:] = rng.normal(size=(frames, p))
    normal.grad_shared[:] = rng.normal(size=q)
    x = rng.normal(size=(frames, p))
    weight = rng.uniform(0.5, 2, p)
    cost = normal.add_stencil(x, ACCELERATION, weight) + normal.add_stencil(x, VELOCITY, 0.3 * weight)
    # dense oracle of the same system
    n = frames * p
    dense = np.zeros((n + q, n + q))
    for t in range(frames):
        dense[t * p : (t + 1) * p, t * p : (t + 1) * p] = normal.blocks[t]
        dense[t * p : (t + 1) * p, n:] = normal.cross[t]
    for d, values in normal.band.items():
        for t in range(frames - d):
            i = np.arange(p)
            dense[t * p + i, (t + d) * p + i] = values[t]
    dense[n:, n:] = normal.shared
    dense = np.triu(dense) + np.triu(dense, 1).T
    grad = np.concatenate([normal.grad_frames.ravel(), normal.grad_shared])
    step = np.linalg.solve(dense, -grad)
    dx, dy = normal.solve(0.0, np.zeros((frames, p), bool), np.zeros(q, bool))
    assert np.allclose(dx.ravel(), step[:n], atol=1e-6) and np.allclose(dy, step[n:], atol=1e-6)
    # the stencil cost is what it says: Σ_r |x[r] − 2x[r+1] + x[r+2]|² + 0.3 Σ_r |x[r+1] − x[r]|², weighted
    acc = x[:-2] - 2 * x[1:-1] + x[2:]
    vel = x[1:] - x[:-1]
    assert np.isclose(cost, (weight * acc**2).sum() + (0.3 * weight * vel**2).sum())


def test_fixed_parameters_do_not_move():
    rng = np.random.default_rng(4)
    normal = Normal.zeros(5, 3, 2)
    normal.blocks[:] = np.eye(3)
    normal.shared[:] = np.eye(2)
    normal.grad_frames[:] = rng.normal(size=(5, 3))
    normal.grad_shared[:] = 1.0
    fixed = np.zeros((5, 3), bool)
    fixed[:, 1] = True
    dx, dy = normal.solve(0.0, fixed, np.array([False, True]))
    assert np.abs(dx[:, 1]).max() < 1e-9 and abs(dy[1]) < 1e-9 and np.abs(dx[:, 0]).min() > 0


def test_interpolate_missing():
    values = np.array([[0.0], [np.nan], [np.nan], [3.0], [np.nan]])
    valid = np.array([True, False, False, True, False])
    assert np.allclose(interpolate_missing(values, valid)[:, 0], [0, 1, 2, 3, 3])


def test_warp_square_uses_pixel_centres():
    image = np.zeros((80, 80), np.float32)
    image[30, 20] = 1.0  # pixel centre at (20.5, 30.5)
    out = warp_square(image, x0=4.0, y0=6.0, scale=2.0, size=96)
    ys, xs = np.nonzero(out)
    w = out[ys, xs]
    centre = np.array([(xs * w).sum(), (ys * w).sum()]) / w.sum() + 0.5
    crop = Crop(4.0, 6.0, 48.0, 96)
    assert np.allclose(centre, crop.to_output(np.array([20.5, 30.5])), atol=1e-3)
    assert np.allclose(crop.to_source(crop.to_output(np.array([[3.0, 7.0]]))), [[3.0, 7.0]])


def test_plan_crop_covers_the_face_and_stays_in_frame():
    rng = np.random.default_rng(5)
    frames = 50
    base = rng.uniform(0, 100, (1, 478, 2)) + [500, 300]
    points = base + np.linspace(0, 40, frames)[:, None, None] * [1, 0]  # the face drifts 40 px right
    found = np.ones(frames, bool)
    found[10] = False
    crop = plan_crop(points, found, 1280, 720, 512)
    assert crop.x0 >= 0 and crop.y0 >= 0 and crop.x0 + crop.side <= 1280 and crop.y0 + crop.side <= 720
    inside = crop.to_output(points[found].reshape(-1, 2))
    assert inside.min() > 0 and inside.max() < 512


def test_camera_conventions():
    view = camera.fixed_viewmat(0.6)
    K = intrinsics(1000.0, 512, 512)
    # a point in front of the face (+z) and above (+y) projects to the upper image half, centre column
    uv = camera.project(np.array([0.0, 0.05, 0.0]), view, K)
    assert np.isclose(uv[0], 256) and uv[1] < 256
    c2w = camera.opengl_camera_to_world(view)
    assert np.allclose(c2w[:3, 3], [0, 0, 0.6]) and np.allclose(c2w[:3, :3], np.eye(3))  # OpenGL: looks down −z
    assert np.isclose(fov_from_focal(focal_from_fov(30.0, 640), 640), 30.0)


def test_transforms_json_follows_vhap(tmp_path):
    from splattalk.tracking.export import transforms_json

    K = intrinsics(900.0, 512, 512)
    data = transforms_json(K, camera.fixed_viewmat(0.7), 512, 512, 3, masks=True)
    json.dumps(data)
    for key in ("fl_x", "fl_y", "cx", "cy", "w", "h", "camera_angle_x", "camera_angle_y", "frames", "timestep_indices"):
        assert key in data
    frame = data["frames"][2]
    assert frame["file_path"] == "../frames/000002.jpg" and frame["fg_mask_path"] == "../masks/000002.png"
    assert frame["flame_param_path"] == "flame_param/000002.npz" and frame["timestep_index"] == 2
    # camera→world in OpenGL axes; flipping y/z back gives the inverse of our OpenCV viewmat
    c2w = np.array(frame["transform_matrix"])
    c2w[:3, 1:3] *= -1
    assert np.allclose(np.linalg.inv(c2w), camera.fixed_viewmat(0.7))


def test_static_offset_field(model):
    from splattalk.tracking.offsets import personalized_head, static_offset_field

    rng = np.random.default_rng(6)
    offsets = 0.001 * rng.normal(size=(478, 3))
    offsets[468:] = 0
    field = static_offset_field(model, offsets)
    assert np.allclose(field[:478], offsets, atol=1e-7)  # every landmark is its own vertex
    for name in ("teeth", "eyeball_left", "mouth_interior"):
        assert np.abs(field[model.regions[name]]).max() == 0  # rigid inner parts stay put
    back = model.v_template.numpy()[:, 2] < -0.1
    assert np.abs(field[back]).max() == 0  # the back of the head is far from every landmark
    head = personalized_head(model, field)
    with torch.no_grad():
        a, b = model(), head()
    assert np.allclose(b.landmarks.numpy()[0] - a.landmarks.numpy()[0], offsets, atol=1e-6)
    assert np.abs(b.joints.numpy() - a.joints.numpy()).max() < 5e-4  # the jaw joint moves < 0.5 mm


def synthetic_flame_like(rng, posedirs: bool):
    """A random head model with FLAME's joint tree, barycentric (not one-hot) landmarks and pose correctives."""
    from splattalk.head.model import HeadModel

    v, f, s, e, lmk = 300, 500, 6, 5, 40
    weights = rng.uniform(0, 1, (v, 5)) * (rng.uniform(0, 1, (v, 5)) > 0.5)
    weights[:, 0] += 0.1
    regressor = rng.uniform(0, 1, (5, v)) * (rng.uniform(0, 1, (5, v)) > 0.9)
    bary = rng.uniform(0.1, 1, (lmk, 3))
    arrays = {
        "v_template": rng.normal(0, 0.05, (v, 3)),
        "faces": rng.integers(0, v, (f, 3)),
        "shapedirs": rng.normal(0, 0.003, (v, 3, s)),
        "exprdirs": rng.normal(0, 0.003, (v, 3, e)),
        "J_regressor": regressor / regressor.sum(1, keepdims=True),
        "parents": np.array([-1, 0, 1, 1, 1]),
        "lbs_weights": weights / weights.sum(1, keepdims=True),
        "lmk_face_ids": rng.integers(0, f, lmk),
        "lmk_bary": bary / bary.sum(1, keepdims=True),
        "lmk_ids": np.arange(lmk),
    }
    if posedirs:
        arrays["posedirs"] = rng.normal(0, 0.002, (36, v * 3))
    return HeadModel(arrays, model_id="synthetic")


def test_landmark_model_general_embedding():
    rng = np.random.default_rng(8)
    model = synthetic_flame_like(rng, posedirs=True)
    lm = LandmarkModel(model)
    assert lm.direct is None
    frames = 3
    state = dict(
        shape=rng.normal(size=6),
        expr=rng.normal(size=(frames, 5)),
        rot=0.3 * rng.normal(size=(frames, 3)),
        jaw=0.2 * rng.normal(size=(frames, 3)),
        eyes=0.2 * rng.normal(size=(frames, 6)),
        transl=0.05 * rng.normal(size=(frames, 3)),
    )
    ref = head_landmarks(model, state)
    assert np.abs(lm(**state).points - ref).max() < 1e-6
    # Jacobians (exact without pose correctives, which they leave out by design)
    lm = LandmarkModel(synthetic_flame_like(np.random.default_rng(8), posedirs=False))
    state["offsets"] = 0.002 * rng.normal(size=(40, 3))
    problem = Problem(
        lm,
        np.zeros((frames, 40, 2)),
        np.ones(frames, bool),
        np.ones(40),
        np.ones(40, bool),
        512,
        512,
        LandmarkFitConfig(),
        1000.0,
    )
    problem.distance = 0.6
    posed = lm(**state, jacobian=True)
    uv, d_x, _ = problem.project(posed.points, np.log(1000.0), jacobian=True)
    jac = lm.pixel_jacobians(posed, d_x)
    for key, group in (
        ("rot", "rot"),
        ("jaw", "jaw"),
        ("eyes", "eyes"),
        ("expr", "expr"),
        ("shape", "shape"),
        ("offsets", "offset"),
    ):
        for k in range(state[key].shape[-1]):
            bumped = {**state, key: state[key].copy()}
            bumped[key][..., k] += 1e-6
            numeric = (problem.project(lm(**bumped).points, np.log(1000.0)) - uv) / 1e-6
            assert np.abs(numeric - jac[group][..., k]).max() < 1e-3 * max(1.0, np.abs(jac[group]).max()), (key, k)


def test_region_sets_are_mediapipes():
    from mediapipe.python.solutions import face_mesh_connections as conn

    from splattalk.tracking import regions

    def points(*sets):
        return tuple(sorted({i for s in sets for edge in s for i in edge}))

    assert regions.FACE_OVAL == points(conn.FACEMESH_FACE_OVAL)
    assert regions.LIPS == points(conn.FACEMESH_LIPS)
    assert regions.EYES == points(conn.FACEMESH_LEFT_EYE, conn.FACEMESH_RIGHT_EYE)
    assert regions.BROWS == points(conn.FACEMESH_LEFT_EYEBROW, conn.FACEMESH_RIGHT_EYEBROW)
    assert regions.NOSE == points(conn.FACEMESH_NOSE)
    assert set(points(conn.FACEMESH_IRISES)) < set(regions.RIGHT_IRIS + regions.LEFT_IRIS)
    assert set(regions.CHIN) < set(regions.FACE_OVAL)
