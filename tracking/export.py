"""Writing the tracking results: ``tracks.npz`` (ours) and ``transforms.json`` (VHAP / nerfstudio).

``transforms.json`` follows VHAP's ``export_as_nerf_dataset``: shared intrinsics
at the top (``fl_x fl_y cx cy w h camera_angle_x camera_angle_y``), and per frame
the same plus ``transform_matrix`` (camera→world, OpenGL axes as in nerfstudio
and Blender), ``file_path``, ``fg_mask_path``, ``flame_param_path``,
``timestep_index`` and ``camera_index``. Paths are relative to the json's
folder. The per-frame parameter files use VHAP's keys (``translation rotation
neck_pose jaw_pose eyes_pose shape expr static_offset``, with a leading batch axis of 1 except ``shape``),
so GaussianAvatars-style loaders read them; with the default head the sizes
are the default head's (16 shape, 26 expression).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from splattalk.atomic import save_npz, write_json
from splattalk.run import Tracks, frame_name
from splattalk.tracking import camera
from splattalk.tracking.offsets import personalized_head


def posed_vertices(model, tracks: Tracks, frames=slice(None)):
    """Vertices [T, V, 3] and landmarks [T, L, 3] of the tracked head (``static_offset`` applied)."""
    return pose(model, tracks.shape, {k: v[frames] for k, v in tracks.per_frame().items()}, tracks.static_offset)


def pose(model, shape: np.ndarray, params: dict[str, np.ndarray], static_offset: np.ndarray | None = None):
    """Vertices [T, V, 3] and landmarks [T, L, 3] (float64) of ``model`` with identity ``shape`` [S] and per-frame
    ``params`` (expr [T, E], rot, neck, jaw, transl [T, 3], eyes [T, 6])."""
    import torch  # lazy: writing transforms.json and the per-frame files needs no torch

    head = personalized_head(model, static_offset)
    t = torch.as_tensor
    with torch.no_grad():
        out = head(
            shape=t(shape),
            expr=t(params["expr"]),
            rotation=t(params["rot"]),
            neck=t(params["neck"]),
            jaw=t(params["jaw"]),
            eyes=t(params["eyes"]),
            translation=t(params["transl"]),
        )
    return out.vertices.numpy().astype(np.float64), out.landmarks.numpy().astype(np.float64)


def transforms_json(
    K: np.ndarray,
    viewmat: np.ndarray,
    width: int,
    height: int,
    num_frames: int,
    masks: bool,
    params_folder: str | None = "flame_param",
) -> dict:
    """The VHAP / nerfstudio camera file for a fixed camera seeing ``num_frames`` frames."""
    fl_x, fl_y, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
    intrinsics = {
        "camera_model": "PINHOLE",
        "fl_x": fl_x,
        "fl_y": fl_y,
        "cx": cx,
        "cy": cy,
        "w": int(width),
        "h": int(height),
        "camera_angle_x": 2 * math.atan(width / (2 * fl_x)),
        "camera_angle_y": 2 * math.atan(height / (2 * fl_y)),
    }
    c2w = camera.opengl_camera_to_world(viewmat).tolist()
    frames = []
    for t in range(num_frames):
        name = frame_name(t)
        item = {
            "timestep_index": t,
            "timestep_index_original": t,
            "timestep_id": name,
            "camera_index": 0,
            "camera_id": "0",
            **intrinsics,
            "transform_matrix": c2w,
            "file_path": f"../frames/{name}.jpg",
        }
        if masks:
            item["fg_mask_path"] = f"../masks/{name}.png"
        if params_folder:
            item["flame_param_path"] = f"{params_folder}/{name}.npz"
        frames.append(item)
    return {**intrinsics, "frames": frames, "timestep_indices": list(range(num_frames)), "camera_indices": [0]}


def write_frame_params(folder: Path, canonical: Path, tracks: Tracks) -> None:
    """One ``.npz`` per frame in ``folder`` with VHAP's parameter names, plus ``canonical`` (neutral, mouth
    slightly open as VHAP writes it)."""
    static_offset = tracks.static_offset[None]
    for t in range(len(tracks)):
        save_npz(
            folder / f"{frame_name(t)}.npz",
            translation=tracks.transl[t : t + 1],
            rotation=tracks.rot[t : t + 1],
            neck_pose=tracks.neck[t : t + 1],
            jaw_pose=tracks.jaw[t : t + 1],
            eyes_pose=tracks.eyes[t : t + 1],
            shape=tracks.shape,
            expr=tracks.expr[t : t + 1],
            static_offset=static_offset,
        )
    zeros = {k: np.zeros_like(v[:1]) for k, v in tracks.per_frame().items()}
    save_npz(
        canonical,
        translation=zeros["transl"],
        rotation=zeros["rot"],
        neck_pose=zeros["neck"],
        jaw_pose=np.array([[0.3, 0.0, 0.0]], np.float32),
        eyes_pose=zeros["eyes"],
        shape=tracks.shape,
        expr=zeros["expr"],
        static_offset=static_offset,
    )


def write_transforms(path: Path, tracks: Tracks, masks: bool) -> None:
    write_json(path, transforms_json(tracks.K, tracks.viewmat, tracks.width, tracks.height, len(tracks), masks))
