"""The light splat stream: what the browser composes (head node transform × latest group buffers) stays within
the tolerance of the exact pose, a head turn alone sends only the transform, and speech sends far less than
every Gaussian."""

from __future__ import annotations

import numpy as np
import pytest
from viewer_helpers import small_avatar

from splattalk.viewer.splats import SplatPoser
from splattalk.viewer.stream import SplatStream, compose, voxel_groups


@pytest.fixture(scope="module")
def poser():
    return SplatPoser(small_avatar(3000), None, 10.0)


def _speech_rows(dim: int, n: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None] / 25.0
    rows = np.zeros((n, dim), np.float32)
    rows[:, :4] = 0.3 * np.sin(2 * np.pi * (rng.uniform(2, 5, 4) * t + rng.uniform(0, 1, 4)))  # mouth channels
    rows[:, dim - 6 : dim - 3] = 0.05 * np.sin(2 * np.pi * 0.5 * t + np.arange(3))  # head sway
    rows[:, dim - 3] = 0.15 + 0.15 * np.sin(2 * np.pi * 4 * t[:, 0])  # jaw
    return rows


def test_voxel_groups_partition_every_gaussian_once():
    rng = np.random.default_rng(1)
    pts = rng.uniform(-0.1, 0.1, (500, 3))
    groups = voxel_groups(pts, 0.05)
    idx = np.sort(np.concatenate(groups))
    np.testing.assert_array_equal(idx, np.arange(500))
    for g in groups:  # one voxel per group
        assert len(np.unique(np.floor(pts[g] / 0.05), axis=0)) == 1


@pytest.mark.parametrize("tolerance", [0.0, 1e-4])
def test_composed_frames_stay_within_the_tolerance(poser, tolerance):
    stream = SplatStream(poser, tolerance, budget=None)
    shown: dict[int, np.ndarray] = {}
    sent = 0
    rows = _speech_rows(poser.motion_dim)
    for i, row in enumerate(rows):
        u = stream.update(row)
        shown.update(dict(u.groups))
        if i:
            sent += sum(b.shape[0] for _, b in u.groups)
        centers, triu = compose(shown, stream.groups, u.wxyz, u.position, poser.num)
        ref_centers, ref_triu = poser.pose(row)
        err = np.linalg.norm(centers - ref_centers, axis=1).max() / poser.scene_scale
        assert err <= tolerance + 2e-6, f"frame {i}: {err * 1000:.4f} mm off"
        # each covariance within what the criterion allows: dΣ ≈ 2σ·dσ with dσ ≤ tolerance, plus float16 rounding
        sigma = np.sqrt(ref_triu[:, [0, 3, 5]].max(1))
        allowed = 2 * sigma * tolerance * poser.scene_scale * 1.1 + 2e-3 * np.abs(ref_triu).max(1) + 1e-9
        assert (np.abs(triu - ref_triu).max(1) <= allowed).all()
    per_frame = sent / (len(rows) - 1)
    assert per_frame < 0.6 * poser.num  # the skull, hair and neck are not resent for speech
    if tolerance:
        exact = SplatStream(poser, 0.0, budget=None)
        total = 0
        for i, row in enumerate(rows):
            u = exact.update(row)
            total += sum(b.shape[0] for _, b in u.groups) if i else 0
        assert sent < total  # the tolerance skips sub-threshold moves


def test_a_head_turn_alone_sends_only_the_transform(poser):
    stream = SplatStream(poser, 1e-4, budget=None)
    row = np.zeros(poser.motion_dim, np.float32)
    first = stream.update(row)
    assert len(first.groups) == stream.num_groups  # a new page gets everything
    row[poser.motion_dim - 5] = 0.4  # turn the head 0.4 rad
    u = stream.update(row)
    assert u.groups == [] and u.nbytes < 64
    assert abs(u.wxyz[0] - np.cos(0.2)) < 1e-6
    centers, _ = compose(dict(first.groups), stream.groups, u.wxyz, u.position, poser.num)
    np.testing.assert_allclose(centers, poser.pose(row)[0], atol=1e-4)


def test_budget_caps_the_bytes_and_reports_the_lag(poser):
    stream = SplatStream(poser, 0.0, budget=8 * 1024)
    rows = _speech_rows(poser.motion_dim)
    stream.update(rows[0])
    lags = []
    for row in rows[1:]:
        u = stream.update(row)
        assert sum(b.nbytes for _, b in u.groups) <= 8 * 1024 or len(u.groups) == 1
        lags.append(stream.lag)
    assert max(lags) > 0  # speech at this budget does leave some motion for later frames
