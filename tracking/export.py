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
from splattalk.tracking import camera

PER_FRAME = ("expr", "jaw", "neck", "rot", "transl", "eyes")
"""Per-frame arrays of ``tracks.npz`` (see shared/DESIGN.md)."""


def posed_vertices(model, tracks: dict, frames=slice(None)):
    """Vertices [T, V, 3] and landmarks [T, L, 3] of the tracked head (``static_offset`` applied)."""
    import torch

    from splattalk.tracking.offsets import personalized_head

    head = personalized_head(model, tracks.get("static_offset"))
    with torch.no_grad():
        out = head(shape=torch.as_tensor(tracks["shape"]), expr=torch.as_tensor(tracks["expr"][frames]),
                   rotation=torch.as_tensor(tracks["rot"][frames]), neck=torch.as_tensor(tracks["neck"][frames]),
                   jaw=torch.as_tensor(tracks["jaw"][frames]), eyes=torch.as_tensor(tracks["eyes"][frames]),
                   translation=torch.as_tensor(tracks["transl"][frames]))
    return out.vertices.numpy().astype(np.float64), out.landmarks.numpy().astype(np.float64)


def frame_name(index: int) -> str:
    return f"{index:06d}"


def transforms_json(K: np.ndarray, viewmat: np.ndarray, width: int, height: int, num_frames: int,
                    masks: bool, params_folder: str | None = "flame_param") -> dict:
    """The VHAP / nerfstudio camera file for a fixed camera seeing ``num_frames`` frames."""
    fl_x, fl_y, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
    intrinsics = {
        "camera_model": "PINHOLE",
        "fl_x": fl_x, "fl_y": fl_y, "cx": cx, "cy": cy, "w": int(width), "h": int(height),
        "camera_angle_x": 2 * math.atan(width / (2 * fl_x)),
        "camera_angle_y": 2 * math.atan(height / (2 * fl_y)),
    }
    c2w = camera.opengl_camera_to_world(viewmat).tolist()
    frames = []
    for t in range(num_frames):
        name = frame_name(t)
        item = {
            "timestep_index": t, "timestep_index_original": t, "timestep_id": name,
            "camera_index": 0, "camera_id": "0",
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


def write_frame_params(folder: Path, tracks: dict) -> None:
    """One ``.npz`` per frame with VHAP's parameter names, plus ``canonical_flame_param.npz`` (neutral, mouth slightly open as VHAP writes it)."""
    num_frames = len(tracks["expr"])
    for t in range(num_frames):
        save_npz(
            folder / f"{frame_name(t)}.npz",
            translation=tracks["transl"][t : t + 1], rotation=tracks["rot"][t : t + 1],
            neck_pose=tracks["neck"][t : t + 1], jaw_pose=tracks["jaw"][t : t + 1],
            eyes_pose=tracks["eyes"][t : t + 1], shape=tracks["shape"], expr=tracks["expr"][t : t + 1],
            static_offset=tracks["static_offset"][None],
        )
    zeros = {k: np.zeros_like(tracks[k][:1]) for k in PER_FRAME}
    save_npz(
        folder.parent / "canonical_flame_param.npz",
        translation=zeros["transl"], rotation=zeros["rot"], neck_pose=zeros["neck"],
        jaw_pose=np.array([[0.3, 0.0, 0.0]], np.float32), eyes_pose=zeros["eyes"], shape=tracks["shape"], expr=zeros["expr"],
        static_offset=tracks["static_offset"][None],
    )


def write_transforms(path: Path, tracks: dict, masks: bool) -> None:
    write_json(path, transforms_json(tracks["K"], tracks["viewmat"], int(tracks["width"]), int(tracks["height"]),
                                     len(tracks["expr"]), masks))


def load_tracks(path: str | Path) -> dict[str, np.ndarray]:
    """``tracks.npz`` as a dict of arrays (strings as Python str)."""
    with np.load(path, allow_pickle=False) as data:
        out = {k: data[k] for k in data.files}
    for key in ("head_model", "key"):
        if key in out:
            out[key] = str(out[key])
    return out
