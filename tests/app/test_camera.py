"""The one camera convention (splattalk.camera) and the cameras that show an avatar (avatar.views)."""

from __future__ import annotations

import numpy as np

from splattalk.avatar.framing import front_view
from splattalk.camera import focal_from_fov, fov_from_focal, intrinsics, look_at
from splattalk.tracking.camera import project


def test_intrinsics_is_focal_in_pixels_with_the_centre_at_half_the_size():
    K = intrinsics(800.0, 640, 480)
    np.testing.assert_array_equal(K, [[800, 0, 320], [0, 800, 240], [0, 0, 1]])


def test_fov_names_its_side():
    assert np.isclose(focal_from_fov(90.0, 640), 320.0)  # tan(45°) = 1: half the side
    assert np.isclose(fov_from_focal(focal_from_fov(37.0, 480), 480), 37.0)
    # the same angle across the shorter side needs a shorter focal length
    assert focal_from_fov(30.0, 480) < focal_from_fov(30.0, 640)


def test_look_at_puts_the_target_on_the_optical_axis():
    eye, target = np.array([0.3, 0.2, 1.0]), np.array([0.0, 0.05, 0.0])
    view = look_at(eye, target)
    np.testing.assert_allclose(view[:3, :3] @ view[:3, :3].T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(view[:3, :3] @ eye + view[:3, 3], 0, atol=1e-12)  # the eye is the camera centre
    K = intrinsics(500.0, 200, 100)
    np.testing.assert_allclose(project(target, view, K), [100, 50], atol=1e-9)  # the image centre
    above = project(target + [0, 0.1, 0], view, K)
    assert above[1] < 50  # world up is image up (OpenCV: y down)


def test_front_view_spans_its_field_of_view_vertically():
    rng = np.random.default_rng(0)
    head = rng.normal(scale=[0.08, 0.12, 0.09], size=(500, 3))
    view, K = front_view(head, 300, 200, fov_deg=20.0)
    assert view.dtype == np.float32 and K.dtype == np.float32
    assert np.isclose(fov_from_focal(float(K[0, 0]), 200), 20.0, atol=1e-4)
    assert (K[0, 2], K[1, 2]) == (150, 100)
