"""The landmark fit on synthetic ground truth: the sample's known motion, projected, plus noise (no mediapipe)."""

from __future__ import annotations

import numpy as np
import pytest
from track_media import SAMPLE_GT

from splattalk.camera import focal_from_fov, fov_from_focal, intrinsics
from splattalk.head.default import load_default_head
from splattalk.run import PER_FRAME
from splattalk.tracking import camera, metrics
from splattalk.tracking.config import LandmarkFitConfig
from splattalk.tracking.export import pose
from splattalk.tracking.fit import fit_tracks

FRAMES = 40


@pytest.fixture(scope="module")
def truth():
    with np.load(SAMPLE_GT) as data:
        gt = {k: data[k] for k in data.files}
    model = load_default_head()
    keys = ("expr", "rot", "neck", "jaw", "eyes", "transl")
    params = {k: gt[k][:FRAMES] for k in keys} | {"shape": gt["shape"]}
    vertices, landmarks = pose(model, gt["shape"], params)
    pixels = camera.project(landmarks, gt["viewmat"].astype(np.float64), gt["K"].astype(np.float64))
    return model, gt, params, vertices, pixels


def fit(model, pixels, valid, noise=0.5, seed=0, **overrides):
    observed = pixels + np.random.default_rng(seed).normal(0, noise, pixels.shape)
    cfg = LandmarkFitConfig(**overrides)
    return fit_tracks(model, observed, valid, 512, 512, cfg, focal_from_fov(55.0, 512), progress=False)


def test_recovers_known_motion(truth):
    model, gt, params, vertices, pixels = truth
    result = fit(model, pixels, np.ones(FRAMES, bool), offset_prior=0.0)
    fitted, landmarks = pose(model, result.shape, {k: getattr(result, k) for k in PER_FRAME})
    view, K = result.viewmat(), intrinsics(result.focal, 512, 512)
    error_px = np.linalg.norm(camera.project(landmarks, view, K) - pixels, axis=-1).mean()
    width = np.ptp(vertices[0, :, 0])
    assert error_px < 0.8, error_px  # against the noise-free truth, with 0.5 px noise in
    assert metrics.aligned_vertex_error(fitted, vertices).mean() / width < 0.01
    jaw = metrics.rotation_angle_deg(result.jaw, params["jaw"])
    assert jaw.max() < 1.5, jaw.max()
    fov_true = fov_from_focal(gt["K"][0, 0], 512)
    assert abs(fov_from_focal(result.focal, 512) - fov_true) < 0.15 * fov_true  # focal from perspective alone
    assert np.nanmax(result.residual_px) < 1.5


def test_frames_without_face_are_filled_smoothly(truth):
    model, gt, params, vertices, pixels = truth
    valid = np.ones(FRAMES, bool)
    valid[20:26] = False
    broken = pixels.copy()
    broken[~valid] = 0.0  # garbage where nothing was detected: it must be ignored
    result = fit(model, broken, valid, offset_prior=0.0)
    assert np.isnan(result.residual_px[~valid]).all() and np.isfinite(result.residual_px[valid]).all()
    rot = metrics.rotation_angle_deg(result.rot, params["rot"])
    assert rot[~valid].max() < 3.0  # head pose bridged over a quarter second
    assert np.abs(np.diff(result.transl[18:28], 2, axis=0)).max() < 1e-3  # no jumps


def test_offsets_absorb_a_static_landmark_bias(truth):
    """A detector that sees every landmark shifted by a fixed amount (in the face's frame): with static offsets
    the reprojection residual drops to the noise level and the expressions do not soak up the bias."""
    model, gt, params, vertices, pixels = truth
    rng = np.random.default_rng(7)
    bias = rng.normal(0, 1.5, (1, 478, 2))
    biased = pixels + bias
    plain = fit(model, biased, np.ones(FRAMES, bool), offset_prior=0.0)
    with_offsets = fit(model, biased, np.ones(FRAMES, bool))
    assert np.nanmean(with_offsets.residual_px) < np.nanmean(plain.residual_px) - 0.3
    assert np.nanmean(with_offsets.residual_px) < 1.0


def test_long_clips_are_fitted_in_chunks(truth):
    """Clips longer than chunk_frames: identity from key frames, then overlapping chunks, cross-faded."""
    model, gt, params, vertices, pixels = truth
    result = fit(model, pixels, np.ones(FRAMES, bool), offset_prior=0.0, chunk_frames=16)
    jaw = metrics.rotation_angle_deg(result.jaw, params["jaw"])
    rot = metrics.rotation_angle_deg(result.rot, params["rot"])
    assert jaw.max() < 2.0 and rot.max() < 2.0
    assert np.nanmax(result.residual_px) < 1.5
    # no seams: the frame-to-frame change stays as small as the true motion's
    assert np.abs(np.diff(result.transl, axis=0)).max() < 2e-3
