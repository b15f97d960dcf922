"""Track the real photographs that installed packages ship, and save overlay figures to docs/.

    python scripts/track_photos.py [--out docs]

Photos: scikit-image's ``astronaut.png`` (Eileen Collins, NASA, public domain) and
matplotlib's ``grace_hopper.jpg`` (public domain). Each is tracked as a one-image
"video"; the figure shows, left to right: the output crop, the fitted mesh
wireframe with mediapipe's landmarks (green) and the fitted landmarks (red),
and the fitted mesh shaded over the photo.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

from splattalk.run import RunLayout, Tracks


def photo_paths() -> dict[str, Path]:
    import matplotlib
    import skimage

    return {
        "astronaut": Path(skimage.__file__).parent / "data" / "astronaut.png",
        "grace_hopper": Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
    }


def track_photo(path: Path, run_dir: Path, progress: bool = False) -> dict:
    """Track one image; returns the run's tracks (``tracks.npz``) and summary."""
    from splattalk.tracking.config import TrackConfig
    from splattalk.tracking.run import track

    summary = track(path, run_dir, TrackConfig(head="default", overlay=False), progress=progress)
    return {"summary": summary, "tracks": Tracks.load(RunLayout(run_dir).tracks)}


def figure(run_dir: Path, tracks: Tracks, panel: int = 384) -> np.ndarray:
    """[crop | wireframe + landmarks | shaded mesh] as RGB uint8."""
    from splattalk.head.default import load_default_head
    from splattalk.tracking.export import posed_vertices
    from splattalk.tracking.overlay import draw_overlay, shaded_blend

    model = load_default_head()
    image = cv2.imread(str(RunLayout(run_dir).frame(0)))[:, :, ::-1]
    vertices, landmarks = posed_vertices(model, tracks)
    view, K = tracks.viewmat.astype(np.float64), tracks.K.astype(np.float64)
    cam = landmarks[0] @ view[:3, :3].T + view[:3, 3]
    fitted = cam[:, :2] / cam[:, 2:] * np.diag(K)[:2] + K[:2, 2]
    detected = tracks.landmarks2d[0][model.lmk_ids.numpy()]
    text = f"landmark residual {float(tracks.residual_px[0]):.2f} px"
    wire = draw_overlay(image, vertices[0], model.faces_np, view, K, fitted=fitted, detected=detected, text=text)
    shaded = shaded_blend(image, vertices[0], model.faces_np, view, K)
    tiles = [cv2.resize(t, (panel, panel), interpolation=cv2.INTER_AREA) for t in (image, wire, shaded)]
    return np.concatenate(tiles, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs")
    args = parser.parse_args()
    from splattalk.atomic import write_bytes

    for name, path in photo_paths().items():
        with tempfile.TemporaryDirectory() as tmp:
            result = track_photo(path, Path(tmp) / name, progress=True)
            picture = figure(Path(tmp) / name, result["tracks"])
        ok, png = cv2.imencode(".png", picture[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
        out = args.out / f"track_{name}.png"
        write_bytes(out, png.tobytes())
        print(
            f"wrote {out}: residual {float(result['tracks'].residual_px[0]):.2f} px, "
            f"FOV {result['summary']['fov_deg']:.1f}°"
        )


if __name__ == "__main__":
    main()
