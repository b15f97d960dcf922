"""Quality-check pictures of a fit: the frame with the projected mesh wireframe and the landmarks."""

from __future__ import annotations

import cv2
import numpy as np

from splattalk.head.raster import render_mesh
from splattalk.mp4 import write_mp4
from splattalk.run import RunLayout, Tracks
from splattalk.tracking.export import posed_vertices

DETECTED = (60, 220, 60)
"""Colour of mediapipe's landmarks (RGB)."""
FITTED = (240, 60, 60)
"""Colour of the fitted model's landmarks."""
WIRE = (255, 255, 255)


def _pixels(vertices: np.ndarray, viewmat: np.ndarray, K: np.ndarray) -> np.ndarray:
    cam = vertices @ viewmat[:3, :3].T + viewmat[:3, 3]
    return cam[:, :2] / cam[:, 2:3] * np.diag(K)[:2] + K[:2, 2]


def visible_faces(
    vertices: np.ndarray, faces: np.ndarray, viewmat: np.ndarray, K: np.ndarray, width: int, height: int
) -> np.ndarray:
    """Indices of the triangles that cover at least one pixel centre (z-buffered)."""
    render = render_mesh(vertices, faces, viewmat, K, width, height, shading=0.0, supersample=1)
    ids = np.unique(render.face_id)
    return ids[ids >= 0]


def draw_overlay(
    frame: np.ndarray,
    vertices: np.ndarray,
    faces: np.ndarray,
    viewmat: np.ndarray,
    K: np.ndarray,
    fitted: np.ndarray | None = None,
    detected: np.ndarray | None = None,
    text: str = "",
    wire_alpha: float = 0.35,
) -> np.ndarray:
    """Frame [H, W, 3] uint8 with the visible mesh edges, fitted (red) and detected (green) landmarks [L, 2]."""
    height, width = frame.shape[:2]
    shift = 4  # sub-pixel drawing: cv2 takes fixed-point coordinates with this many fractional bits
    pix = _pixels(np.asarray(vertices, np.float64), viewmat, K)
    tris = faces[visible_faces(vertices, faces, viewmat, K, width, height)]
    # continuous coordinates (pixel centres at +0.5) → cv2's pixel-index coordinates
    polys = ((pix[tris] - 0.5) * (1 << shift)).round().astype(np.int32)
    wire = frame.copy()
    cv2.polylines(wire, list(polys), True, WIRE, 1, cv2.LINE_AA, shift)
    out = cv2.addWeighted(wire, wire_alpha, frame, 1 - wire_alpha, 0)
    for points, colour in ((detected, DETECTED), (fitted, FITTED)):
        if points is None:
            continue
        for x, y in ((np.asarray(points)[:, :2] - 0.5) * (1 << shift)).round().astype(np.int64):
            cv2.circle(out, (int(x), int(y)), 1 << shift, colour, -1, cv2.LINE_AA, shift)
    if text:
        cv2.putText(out, text, (8, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, text, (8, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def shaded_blend(
    frame: np.ndarray, vertices: np.ndarray, faces: np.ndarray, viewmat: np.ndarray, K: np.ndarray, alpha: float = 0.6
) -> np.ndarray:
    """The fitted mesh rendered grey-shaded over the frame (``alpha`` opacity)."""
    height, width = frame.shape[:2]
    render = render_mesh(vertices, faces, viewmat, K, width, height, shading=1.0, background=(0, 0, 0))
    cover = render.alpha[..., None] * alpha
    mixed = frame.astype(np.float32) / 255 * (1 - cover) + render.rgb * alpha
    return (np.clip(mixed, 0, 1) * 255 + 0.5).astype(np.uint8)


def write_overlay_video(path, run_dir, model, tracks: Tracks, key: str, progress: bool = True, batch: int = 50) -> None:
    """``overlay.mp4``: every frame of ``run_dir/frames`` with the fitted mesh and both landmark sets."""
    from tqdm import tqdm

    layout = RunLayout(run_dir)
    faces = model.faces_np
    viewmat, K = tracks.viewmat.astype(np.float64), tracks.K.astype(np.float64)
    num_frames = len(tracks)
    lmk_ids = model.lmk_ids.numpy()

    def frames():
        for start in range(0, num_frames, batch):
            vertices, landmarks = posed_vertices(model, tracks, slice(start, start + batch))
            for i, (verts, lmk) in enumerate(zip(vertices, landmarks)):
                t = start + i
                image = cv2.imread(str(layout.frame(t)))[:, :, ::-1]
                detected = tracks.landmarks2d[t][lmk_ids] if tracks.valid[t] else None
                text = f"{t:06d}  " + (
                    f"landmark residual {tracks.residual_px[t]:.2f} px"
                    if tracks.valid[t]
                    else "no face detected: interpolated"
                )
                yield draw_overlay(
                    image,
                    verts.astype(np.float64),
                    faces,
                    viewmat,
                    K,
                    fitted=_pixels(lmk.astype(np.float64), viewmat, K),
                    detected=detected,
                    text=text,
                )

    stream = tqdm(frames(), total=num_frames, desc="overlay", unit="frame", disable=not progress)
    # one thread and a fixed preset: the same tracks give the same bytes (the metadata key marks it current)
    write_mp4(path, stream, tracks.fps, crf=23, preset="medium", threads=1, metadata={"comment": key})
