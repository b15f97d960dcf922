"""The inner-lip gap of the default head and of mediapipe landmarks."""

import numpy as np
import pytest

from splattalk.head.default import EXPR_NAMES, load_default_head
from splattalk.head.mouth import EYE_CORNERS, landmark_gap, mouth_gap


@pytest.fixture(scope="module")
def head():
    return load_default_head()


def test_gap_zero_with_jaw_closed_and_positive_open(head):
    E = head.num_expr
    jaw = np.array([[0.0, 0, 0], [0.1, 0, 0], [0.25, 0, 0]])
    gap = mouth_gap(head, np.zeros((3, E)), jaw)
    assert gap[0] == pytest.approx(0.0, abs=1e-6)
    assert 0.05 < gap[1] < gap[2]  # ≈ 8 mm over an 89 mm eye span at 0.1 rad


def test_mouth_open_parts_and_lips_press_keeps_closed(head):
    E = head.num_expr
    expr = np.zeros((2, E))
    expr[0, EXPR_NAMES.index("mouth_open")] = 1.0
    expr[1, EXPR_NAMES.index("lips_press")] = 1.0
    gap = mouth_gap(head, expr, np.zeros((2, 3)))
    assert gap[0] > 0.03
    assert gap[1] < 0.02


def test_gap_ignores_identity_scale(head):
    """Normalised by the eye corners: a bigger face (template scaled) gives the same gap."""
    E = head.num_expr
    jaw = np.array([[0.15, 0, 0]])
    base = mouth_gap(head, np.zeros((1, E)), jaw)
    offset = head.v_template.numpy() * 0.1  # the whole head 10 % bigger
    bigger = mouth_gap(head, np.zeros((1, E)), jaw, static_offset=offset)
    assert bigger[0] == pytest.approx(base[0], rel=0.02)
    assert np.allclose(head.v_template.numpy() * 1.1, head.v_template.numpy() + offset)  # template restored


def test_landmark_gap():
    pts = np.zeros((2, 478, 2))
    pts[:, EYE_CORNERS[0]] = [0, 0]
    pts[:, EYE_CORNERS[1]] = [100, 0]
    pts[1, 14] = [0, 10]
    np.testing.assert_allclose(landmark_gap(pts), [0.0, 0.1])
