"""End to end: `splattalk track` with a FLAME-format model, then `export-dataset`, read back as GaussianAvatars does.

The FLAME file is random (tests/head/flame_layouts.py: real layout, random arrays), so the fit itself means
nothing; what is checked is that a run folder the real tracker wrote exports into GaussianAvatars' layout.
"""

from __future__ import annotations

import json

import flame_layouts as layouts
import numpy as np
from PIL import Image
from track_media import SAMPLE

from splattalk.tracking.config import TrackConfig
from splattalk.tracking.export_dataset import export_dataset
from splattalk.tracking.run import track


def test_flame_tracked_run_exports_for_gaussian_avatars(isolated_assets, tmp_path):
    (isolated_assets / "flame").mkdir()  # smplx's layout: $SPLATTALK_ASSETS/flame/FLAME_NEUTRAL.pkl
    layouts.write_flame(isolated_assets / "flame" / "FLAME_NEUTRAL.pkl", variant="2020")
    layouts.write_embedding(isolated_assets / "mediapipe_landmark_embedding.npz")
    run = tmp_path / "run"
    summary = track(
        SAMPLE, run, TrackConfig(head="flame2020", max_seconds=0.5, size=128, overlay=False), progress=False
    )
    assert summary["head_model"] == "flame2020"
    out = tmp_path / "ga"
    export_dataset(run, out, "gaussian-avatars", progress=False)
    train = json.loads((out / "transforms_train.json").read_text())
    frame = train["frames"][0]
    rgba = np.array(Image.open(out / frame["file_path"]).convert("RGBA"))
    assert rgba.shape == (128, 128, 4) and rgba[:, :, 3].max() > 200 and rgba[:, :, 3].min() < 50
    params = dict(np.load(out / frame["flame_param_path"], allow_pickle=True))
    assert params["shape"].shape == (300,) and params["expr"].shape == (1, 100)
    assert params["static_offset"].shape == (1, 5023, 3)
