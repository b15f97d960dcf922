"""The light splat stream: what the browser composes (head node × group node transforms × latest group
buffers) stays within the tolerance of the exact pose on every frame of a long sequence (nothing drifts),
group transforms replace most resends, a head turn alone sends only the head's transform, and speech sends far
less than every Gaussian."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from viewer_helpers import small_avatar

from splattalk.viewer.splats import SplatPoser, triu_to_full
from splattalk.viewer.stream import (
    CELL_M,
    PageState,
    SplatStream,
    _quat,
    motion_groups,
    stream_groups,
    voxel_groups,
)

SLACK = 2e-6
"""Metres the page may exceed the tolerance by: float32 centres and the quaternion round trip."""


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


def _talk_rows(dim: int, n: int = 60, seed: int = 0) -> np.ndarray:
    """Motion as smooth as the talk model's: its rows for the sample clip change the mouth channels by ≤ 0.06 and
    the jaw by ≤ 0.03 rad a frame (90th percentiles); these by ≤ 0.09 and 0.045."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None] / 25.0
    rows = np.zeros((n, dim), np.float32)
    rows[:, :4] = 0.15 * np.sin(2 * np.pi * (rng.uniform(1, 2.5, 4) * t + rng.uniform(0, 1, 4)))
    rows[:, dim - 3] = 0.06 + 0.06 * np.sin(2 * np.pi * 2 * t[:, 0])
    return rows


def _check_page(poser, page, row, tolerance, label):
    centers, triu = page.world()
    ref_centers, ref_triu = poser.pose(row)
    err = np.linalg.norm(centers - ref_centers, axis=1).max() / poser.scene_scale
    assert err <= tolerance + SLACK, f"{label}: {err * 1000:.4f} mm off"
    # each covariance within what the criterion allows: dΣ ≈ 2σ·dσ with dσ ≤ tolerance (σ its largest axis), plus
    # float16 rounding
    sigma = np.sqrt(np.linalg.eigvalsh(triu_to_full(ref_triu.astype(np.float64)))[:, -1])
    # the criterion holds in the head's frame (an element-wise bound is not rotation-invariant): turn both back
    w, x, y, z = page.wxyz
    head = Rotation.from_quat([x, y, z, w]).as_matrix()
    back = lambda tri: (head.T @ triu_to_full(tri.astype(np.float64)) @ head).reshape(-1, 9)[:, [0, 1, 2, 4, 5, 8]]  # noqa: E731
    triu, ref_triu = back(triu), back(ref_triu)
    allowed = 2 * sigma * tolerance * poser.scene_scale * 1.1 + 2e-3 * np.abs(ref_triu).max(1) + 1e-9
    assert (np.abs(triu - ref_triu).max(1) <= allowed).all(), label


def test_voxel_groups_partition_every_gaussian_once():
    rng = np.random.default_rng(1)
    pts = rng.uniform(-0.1, 0.1, (500, 3))
    groups = voxel_groups(pts, 0.05)
    np.testing.assert_array_equal(np.sort(np.concatenate(groups)), np.arange(500))
    for g in groups:  # one voxel per group
        assert len(np.unique(np.floor(pts[g] / 0.05), axis=0)) == 1


def test_motion_groups_keep_still_and_moving_gaussians_apart():
    # two interleaved sets on the same surface patch: one follows the probe motion, the other stays put
    rng = np.random.default_rng(2)
    pts = rng.uniform(-0.01, 0.01, (400, 3))
    response = np.zeros((400, 2, 3))
    moving = np.arange(400) % 2 == 0
    response[moving, 0, 1] = 0.004
    groups = motion_groups(pts, response, 8)
    np.testing.assert_array_equal(np.sort(np.concatenate(groups)), np.arange(400))
    for g in groups:
        assert moving[g].all() or not moving[g].any()
    again = motion_groups(pts, response, 8)  # seeded: the same groups every time
    assert all(np.array_equal(a, b) for a, b in zip(groups, again))


def test_stream_groups_are_computed_once_per_avatar(poser):
    groups = stream_groups(poser)
    other = SplatPoser(poser.avatar, None, 10.0)  # another tab of the same server
    assert stream_groups(other) is groups
    np.testing.assert_array_equal(np.sort(np.concatenate(groups)), np.arange(poser.num))


def test_quaternion_kernel_matches_scipy():
    out = np.empty(4)
    for r in Rotation.random(50, random_state=3):
        _quat(r.as_matrix(), out)
        x, y, z, w = r.as_quat()
        ref = np.array([w, x, y, z])
        assert np.allclose(out, ref, atol=1e-9) or np.allclose(out, -ref, atol=1e-9)


@pytest.mark.parametrize("tolerance, transforms", [(0.0, True), (1e-4, True), (1e-4, False)])
def test_composed_frames_stay_within_the_tolerance(poser, tolerance, transforms):
    stream = SplatStream(poser, tolerance, transforms=transforms)
    page = PageState(stream.groups, poser.num)
    rows = _speech_rows(poser.motion_dim)
    sent = 0
    for i, row in enumerate(rows):
        u = stream.update(row)
        page.apply(u)
        if i:
            sent += sum(b.shape[0] for _, b in u.groups)
        else:
            assert len(u.groups) == stream.num_groups  # a new page gets everything
        _check_page(poser, page, row, tolerance, f"frame {i}")
    assert sent / (len(rows) - 1) < 0.6 * poser.num  # the skull, hair and neck are not resent for speech


def test_group_transforms_replace_resends(poser):
    rows = _talk_rows(poser.motion_dim)
    counts = {}
    for transforms in (False, True):
        stream = SplatStream(poser, 1e-4, transforms=transforms)
        stream.update(rows[0])
        us = [stream.update(row) for row in rows[1:]]
        counts[transforms] = (sum(len(u.groups) for u in us), sum(len(u.transforms) for u in us))
    resent_without, _ = counts[False]
    resent_with, moved_with = counts[True]
    assert resent_with < 0.7 * resent_without  # a fitted transform keeps many groups within the tolerance
    assert moved_with > resent_with  # those groups sent ~100 bytes instead of 32 a Gaussian


def test_nothing_drifts_over_a_long_slow_sequence(poser):
    # 400 frames of slow motion: every frame moves each Gaussian less than the tolerance, so a stream comparing
    # frame to frame would never send anything and drift; ours compares against what the page shows
    n, dim = 400, poser.motion_dim
    t = np.linspace(0, 1, n)[:, None]
    rows = np.zeros((n, dim), np.float32)
    rows[:, :6] = 0.6 * t * np.array([1, -1, 0.5, 0.8, -0.5, 0.3])
    rows[:, dim - 3] = 0.25 * t[:, 0]
    rows[:, dim - 5] = 0.3 * np.sin(np.pi * t[:, 0])  # a head turn on top
    stream = SplatStream(poser, 1e-4)
    page = PageState(stream.groups, poser.num)
    for i, row in enumerate(rows):
        page.apply(stream.update(row))
        if i % 20 == 0 or i == n - 1:
            _check_page(poser, page, row, 1e-4, f"frame {i}")


def test_voxel_groups_with_transforms_stay_within_the_tolerance(poser):
    rest = poser.pose(np.zeros(poser.motion_dim, np.float32))[0] / poser.scene_scale
    stream = SplatStream(poser, 1e-4, groups=voxel_groups(rest, CELL_M))
    page = PageState(stream.groups, poser.num)
    for i, row in enumerate(_speech_rows(poser.motion_dim, 20, seed=4)):
        page.apply(stream.update(row))
        _check_page(poser, page, row, 1e-4, f"frame {i}")


def test_a_head_turn_alone_sends_only_the_head_transform(poser):
    stream = SplatStream(poser, 1e-4)
    row = np.zeros(poser.motion_dim, np.float32)
    page = PageState(stream.groups, poser.num)
    page.apply(stream.update(row))
    row[poser.motion_dim - 5] = 0.4  # turn the head 0.4 rad
    u = stream.update(row)
    assert u.groups == [] and u.transforms == [] and u.nbytes < 64
    assert abs(u.wxyz[0] - np.cos(0.2)) < 1e-6
    page.apply(u)
    _check_page(poser, page, row, 1e-4, "turned")
    stream.reset()  # a reloaded page gets everything again
    assert len(stream.update(row).groups) == stream.num_groups
