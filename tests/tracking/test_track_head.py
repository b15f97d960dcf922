"""Which head model `splattalk track` uses: the built-in one, or the user's FLAME with its mediapipe embedding."""

from __future__ import annotations

import flame_layouts as layouts
import numpy as np
import pytest

from splattalk.errors import SplattalkError
from splattalk.tracking.landmark_model import LandmarkModel
from splattalk.tracking.run import select_head


def test_default_when_nothing_is_installed(isolated_assets):
    model, note = select_head("auto")
    assert model.model_id == "default-head-v1" and "no FLAME" in note
    assert select_head("default")[0].model_id == "default-head-v1"


def test_flame_asked_for_but_missing(isolated_assets):
    with pytest.raises(SplattalkError, match="flame2023.pkl not found"):
        select_head("flame2023")


def test_flame_without_embedding(isolated_assets):
    layouts.write_flame(isolated_assets / "generic_model.pkl", variant="2020")
    with pytest.raises(SplattalkError, match="mediapipe_landmark_embedding.npz"):
        select_head("flame2020")
    model, note = select_head("auto")  # auto falls back, and says why
    assert model.model_id == "default-head-v1" and "generic_model.pkl" in note


def test_flame_with_embedding(isolated_assets):
    layouts.write_flame(isolated_assets / "generic_model.pkl", variant="2020")
    layouts.write_embedding(isolated_assets / "mediapipe_landmark_embedding.npz")
    model, note = select_head("auto")
    assert model.model_id == "flame2020" and "generic_model.pkl" in note
    assert len(model.lmk_ids) == 105
    lm = LandmarkModel(model)
    assert lm.direct is None and lm.num_landmarks == 105
    frames = 2
    rng = np.random.default_rng(0)
    posed = lm(
        rng.normal(size=model.num_shape),
        rng.normal(size=(frames, model.num_expr)),
        0.1 * rng.normal(size=(frames, 3)),
        0.1 * rng.normal(size=(frames, 3)),
        np.zeros((frames, 6)),
        np.zeros((frames, 3)),
    )
    assert posed.points.shape == (frames, 105, 3) and np.isfinite(posed.points).all()
