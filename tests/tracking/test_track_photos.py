"""Real photographs of real people that installed packages ship, tracked as one-image videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from splattalk.head.default import load_default_head
from splattalk.run import Tracks
from splattalk.tracking.config import TrackConfig
from splattalk.tracking.export import posed_vertices
from splattalk.tracking.run import track


def photos() -> dict[str, Path]:
    import skimage

    paths = {"astronaut": Path(skimage.__file__).parent / "data" / "astronaut.png"}
    try:
        import matplotlib

        paths["grace_hopper"] = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    except ImportError:  # matplotlib is in the dev extra
        pass
    return paths


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_photo_is_tracked(tmp_path, name):
    path = photos().get(name)
    if path is None:
        pytest.skip("matplotlib (dev extra) is not installed")
    run = tmp_path / name
    summary = track(path, run, TrackConfig(head="default"), progress=False)
    assert summary["frames"] == 1 and summary["faces_found"] == 1
    tracks = Tracks.load(run / "tracking" / "tracks.npz")
    model = load_default_head()
    _, landmarks = posed_vertices(model, tracks)
    view, K = tracks.viewmat.astype(np.float64), tracks.K.astype(np.float64)
    cam = landmarks[0] @ view[:3, :3].T + view[:3, 3]
    fitted = cam[:, :2] / cam[:, 2:] * np.diag(K)[:2] + K[:2, 2]
    detected = tracks.landmarks2d[0]
    assert np.linalg.norm(fitted - detected, axis=-1).mean() < 3.0  # the mesh sits on the face
    # the fitted face covers the detected one: boxes overlap almost entirely
    lo = np.maximum(fitted.min(0), detected.min(0))
    hi = np.minimum(fitted.max(0), detected.max(0))
    inter = np.prod(np.clip(hi - lo, 0, None))
    union = np.prod(np.ptp(fitted, 0)) + np.prod(np.ptp(detected, 0)) - inter
    assert inter / union > 0.9
    assert (run / "tracking" / "overlay.mp4").is_file() and (run / "masks" / "000000.png").is_file()
