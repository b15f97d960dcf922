"""LVE, FDD, MOD on hand-made vertex sequences with answers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from splattalk.talk.metrics import (
    lip_vertex_error,
    lipsync_metrics,
    mouth_opening,
    mouth_opening_difference,
    upper_face_dynamics_deviation,
)

T, V = 4, 6
LIPS = [0, 1, 2]
UPPER = [4, 5]


def test_lve_is_mean_over_frames_of_max_lip_error():
    gt = np.zeros((T, V, 3))
    pred = gt.copy()
    # frame t: lip vertex 1 off by (t+1) mm along x, vertex 2 by 0.5 mm along y; a non-lip vertex off by 1 m
    for t in range(T):
        pred[t, 1, 0] = (t + 1) * 1e-3
        pred[t, 2, 1] = 0.5e-3
    pred[:, 5, 2] = 1.0
    # per-frame max: 1, 2, 3, 4 mm -> mean 2.5 mm
    assert lip_vertex_error(pred, gt, LIPS) == pytest.approx(2.5)
    # a 3-4-5 triangle: 5 mm in every frame
    pred2 = gt.copy()
    pred2[:, 0] = [3e-3, 4e-3, 0]
    assert lip_vertex_error(pred2, gt, LIPS) == pytest.approx(5.0)
    assert lip_vertex_error(gt, gt, LIPS) == 0.0


def test_fdd_compares_upper_face_dynamics():
    template = np.zeros((V, 3))
    gt = np.zeros((T, V, 3))
    pred = np.zeros((T, V, 3))
    # gt: vertex 4 displaced 0, 2, 0, 2 mm (std 1 mm); vertex 5 displaced 1, 3, 1, 3 mm (std 1 mm)
    gt[:, 4, 1] = [0, 2e-3, 0, 2e-3]
    gt[:, 5, 0] = [1e-3, 3e-3, 1e-3, 3e-3]
    # pred: vertex 4 still (std 0); vertex 5 displaced 0, 1, 0, 1 mm (std 0.5 mm)
    pred[:, 5, 2] = [0, 1e-3, 0, 1e-3]
    # mean over upper vertices of (1 - 0, 1 - 0.5) mm = 0.75 mm = 75 x 1e-5 m
    assert upper_face_dynamics_deviation(pred, gt, UPPER, template) == pytest.approx(75.0)
    # lips moving does not count; more motion than the truth gives a negative value
    assert upper_face_dynamics_deviation(gt, pred, UPPER, template) == pytest.approx(-75.0)
    lips_only = gt.copy()
    lips_only[:, 0] += 5.0
    assert upper_face_dynamics_deviation(lips_only, gt, UPPER, template) == 0.0


def test_fdd_uses_distance_from_template_not_direction():
    template = np.zeros((V, 3))
    a = np.zeros((T, V, 3))
    b = np.zeros((T, V, 3))
    a[:, 4, 0] = [1e-3, -1e-3, 1e-3, -1e-3]  # distance always 1 mm: no dynamics by this definition
    assert upper_face_dynamics_deviation(a, b, [4], template) == 0.0


def test_mod_is_mean_absolute_opening_difference():
    up, lo = [0, 1], [2, 3]
    gt = np.zeros((T, V, 3))
    pred = np.zeros((T, V, 3))
    # ground truth: pair (0,2) opens 10 mm in frames 1 and 3, pair (1,3) always 4 mm apart
    gt[:, 1, 1] = 4e-3
    gt[[1, 3], 0, 1] = 10e-3
    # prediction: both pairs 6 mm apart in every frame
    pred[:, 0, 1] = 6e-3
    pred[:, 1, 1] = 6e-3
    np.testing.assert_allclose(mouth_opening(gt, up, lo) * 1000, [4, 10, 4, 10])
    # |6-4|, |6-10|, |6-4|, |6-10| -> mean 3 mm
    assert mouth_opening_difference(pred, gt, up, lo) == pytest.approx(3.0)
    assert mouth_opening_difference(gt, gt, up, lo) == 0.0


def test_all_three_and_bad_input():
    rng = np.random.default_rng(0)
    gt = rng.normal(0, 0.01, (T, V, 3))
    regions = {"lips": LIPS, "upper_face": UPPER, "upper_lip": [0], "lower_lip": [2]}
    m = lipsync_metrics(gt, gt, np.zeros((V, 3)), regions)
    assert m == {"LVE": 0.0, "FDD": 0.0, "MOD": 0.0}
    with pytest.raises(ValueError):
        lip_vertex_error(gt, gt[:2], LIPS)
