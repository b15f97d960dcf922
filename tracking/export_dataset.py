"""``splattalk export-dataset``: a tracked run as a dataset other tools train on as they are.

Formats (written from the peers' documented readers, see docs/interop.md):

- ``gaussian-avatars``: the layout VHAP's ``export_as_nerf_dataset`` writes and
  GaussianAvatars' ``DynamicNerf`` reader takes (it picks that reader when
  ``canonical_flame_param.npz`` exists): ``images/TTTTT_00.png`` as **RGBA**
  (alpha = our matte; GaussianAvatars reads the foreground from the alpha
  channel and appends ``.png`` to any ``file_path`` without it),
  ``fg_masks/TTTTT_00.png``, ``flame_param/TTTTT.npz`` (FLAME-sized: shape
  [300], expr [1,100], static_offset [1,5023,3]), ``canonical_flame_param.npz``
  and ``transforms.json`` + ``transforms_{train,val,test}.json`` split as VHAP
  splits one camera (first ``ceil(ratio·T)`` timesteps train, the rest test,
  an empty validation set).
- ``vhap``: the same, with RGB frames composited on a plain background as
  VHAP's own export writes them (VHAP's ``NeRFDataset`` multiplies 3-channel
  images by masks, so RGBA would not do). GaussianAvatars trains on it too.
- ``nerfstudio``: one ``transforms.json`` with ``file_path`` (RGB PNG) and
  ``mask_path``; no head-model parameters, so it also works with the default head.

Cameras are nerfstudio's / VHAP's ``transform_matrix`` (camera→world, OpenGL
axes), written by :func:`splattalk.tracking.export.transforms_json`, the one
place that converts our OpenCV ``viewmat``. The run folder is read through
:mod:`splattalk.tracking.export` (``tracks.npz``) and the run's
``frames/`` / ``masks/`` folders.

This lives in ``tracking/`` next to ``export.py`` because it writes tracking
results in other tools' layouts and needs nothing above ``tracking`` (no
avatar, no viewer). The command's config is here too; the CLI imports this
module for ``--help``, so numpy, cv2 and the run-folder readers are imported
inside the functions that use them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tyro.conf import Positional

from splattalk.errors import SplattalkError

FLAME_SHAPE, FLAME_EXPR, FLAME_VERTICES = 300, 100, 5023
"""The sizes GaussianAvatars' and VHAP's FLAME take (``n_shape=300``, ``n_expr=100``, the 5023-vertex mesh)."""
Format = Literal["gaussian-avatars", "vhap", "nerfstudio"]


@dataclass(frozen=True)
class ExportDatasetCommand:
    """Write a tracked run as a dataset GaussianAvatars, VHAP or nerfstudio trains on as it is."""

    run: Positional[Path]
    """Run folder tracked by `splattalk track` (RUN/tracking/tracks.npz, RUN/frames, RUN/masks)."""
    out: Path
    """Folder to write the dataset into (created; must be empty unless --overwrite)."""
    format: Format = "gaussian-avatars"
    """gaussian-avatars: RGBA frames + FLAME parameters + split jsons; vhap: the same with RGB frames on --background;
    nerfstudio: frames + masks + cameras."""
    train_ratio: float = 0.7
    """Share of timesteps (from the start) in transforms_train.json; the rest go to transforms_test.json
    (VHAP's default 0.7)."""
    background: Literal["white", "black"] = "white"
    """Background the vhap format composites the frames on (VHAP's export default: white)."""
    overwrite: bool = False
    """Write into a folder that already holds files."""


def _refuse_default_head(head_model: str, fmt: str) -> None:
    if head_model.startswith("flame"):
        return
    raise SplattalkError(
        f"--format {fmt} needs FLAME parameters, but this run was tracked with {head_model!r} (the built-in head: "
        f"16 shape / 26 expression components on its own mesh), which GaussianAvatars' and VHAP's FLAME "
        f"({FLAME_SHAPE} shape / {FLAME_EXPR} expression on {FLAME_VERTICES} vertices) cannot take. Put a FLAME model "
        f"and mediapipe_landmark_embedding.npz in $SPLATTALK_ASSETS (`splattalk doctor` checks them), re-track with "
        f"`splattalk track VIDEO --run RUN --head flame2023`, or use --format nerfstudio (cameras and frames only)."
    )


def flame_sized(tracks: dict) -> dict:
    """Per-run FLAME arrays padded to the peers' sizes: shape [300], expr [T,100], static_offset [1,5023,3]."""
    import numpy as np  # lazy: `splattalk --help` imports this module

    shape, expr = np.asarray(tracks["shape"], np.float32), np.asarray(tracks["expr"], np.float32)
    offset = np.asarray(tracks.get("static_offset", np.zeros((FLAME_VERTICES, 3))), np.float32)
    if shape.shape[0] > FLAME_SHAPE or expr.shape[1] > FLAME_EXPR or offset.shape != (FLAME_VERTICES, 3):
        raise SplattalkError(
            f"the run's FLAME parameters have shape [{shape.shape[0]}], expr [{expr.shape[1]}], static_offset "
            f"{list(offset.shape)}; expected at most {FLAME_SHAPE} / {FLAME_EXPR} components "
            f"and [{FLAME_VERTICES}, 3]. "
            f"Re-track the run with the current `splattalk track`."
        )
    # Components the tracker did not fit are zero: padding leaves the mesh unchanged.
    return {
        "shape": np.pad(shape, (0, FLAME_SHAPE - shape.shape[0])),
        "expr": np.pad(expr, ((0, 0), (0, FLAME_EXPR - expr.shape[1]))),
        "static_offset": offset[None],
    }


def split(num_frames: int, train_ratio: float) -> tuple[list[int], list[int]]:
    """Train and test timesteps as VHAP splits a one-camera recording (train first, ``ceil``)."""
    if not 0 < train_ratio <= 1:
        raise SplattalkError(f"--train-ratio {train_ratio}: use a value in (0, 1]")
    num_train = math.ceil(num_frames * train_ratio)
    return list(range(num_train)), list(range(num_train, num_frames))


def _read_frame(run: Path, t: int, masks: bool):
    """RGB [H, W, 3] uint8 and matte [H, W] uint8 (None without masks) of frame ``t``."""
    import cv2  # lazy: `splattalk --help` imports this module

    from splattalk.tracking.export import frame_name  # lazy: `splattalk --help` imports this module

    name = frame_name(t)
    path = run / "frames" / f"{name}.jpg"
    rgb = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if rgb is None:
        raise SplattalkError(f"cannot read frame {path}; re-run `splattalk track` on this run folder")
    if not masks:
        return rgb[:, :, ::-1], None
    mask_path = run / "masks" / f"{name}.png"
    alpha = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
    if alpha is None or alpha.shape != rgb.shape[:2]:
        raise SplattalkError(f"cannot read mask {mask_path} (or its size differs from the frame's)")
    return rgb[:, :, ::-1], alpha


def _png(image) -> bytes:
    """PNG bytes of an RGB(A) [H, W, 3|4] or grey [H, W] uint8 image."""
    import cv2  # lazy: `splattalk --help` imports this module
    import numpy as np  # lazy: `splattalk --help` imports this module

    if image.ndim == 3:
        image = image[:, :, [2, 1, 0, 3]] if image.shape[2] == 4 else image[:, :, ::-1]
    ok, data = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:
        raise SplattalkError("PNG encoding failed")
    return data.tobytes()


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise SplattalkError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise SplattalkError(f"--out {out} already holds files; choose an empty folder or pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)


def export_dataset(
    run: str | Path,
    out: str | Path,
    fmt: str = "gaussian-avatars",
    train_ratio: float = 0.7,
    background: str = "white",
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Write the dataset (see the module docstring); returns a summary, also saved as ``config.json``
    (with the settings)."""
    import numpy as np  # lazy: `splattalk --help` imports this module

    from splattalk.atomic import save_npz, write_bytes, write_json  # lazy: `splattalk --help` imports this module
    from splattalk.run import RunLayout, Tracks  # lazy: `splattalk --help` imports this module
    from splattalk.tracking.export import frame_name, transforms_json  # lazy: `splattalk --help` imports this module

    run, out = Path(run), Path(out)
    tracks_path = RunLayout(run).tracks
    if not tracks_path.is_file():
        raise SplattalkError(f"no tracks at {tracks_path}: run `splattalk track VIDEO --run {run}` first")
    tracks = Tracks.load(tracks_path).to_arrays()
    head_model = str(tracks["head_model"])
    flame = fmt in ("gaussian-avatars", "vhap")
    if flame:
        _refuse_default_head(head_model, fmt)
        sized = flame_sized(tracks)
    num_frames = len(tracks["expr"])
    has_masks = (run / "masks" / f"{frame_name(0)}.png").is_file()
    if fmt == "gaussian-avatars" and not has_masks:
        raise SplattalkError(
            f"{run}/masks/ is empty: GaussianAvatars takes the foreground from the frames' alpha, "
            f"so re-track with masks (the default) before exporting"
        )
    train, test = split(num_frames, train_ratio)
    _prepare_out(out, overwrite)

    K, viewmat = np.asarray(tracks["K"], np.float64), np.asarray(tracks["viewmat"], np.float64)
    width, height = int(tracks["width"]), int(tracks["height"])
    db = transforms_json(
        K, viewmat, width, height, num_frames, masks=has_masks, params_folder="flame_param" if flame else None
    )
    bg = np.full(3, 255.0 if background == "white" else 0.0)
    frames = range(num_frames)
    if progress:
        from tqdm import tqdm  # lazy: `splattalk --help` imports this module

        frames = tqdm(frames, desc=f"export {fmt}", unit="frame")
    for t in frames:
        item = db["frames"][t]
        rgb, alpha = _read_frame(run, t, has_masks)
        stem = f"{t:05d}_00"
        item["file_path"] = f"images/{stem}.png"
        item.pop("fg_mask_path", None)
        if alpha is not None:
            key = "mask_path" if fmt == "nerfstudio" else "fg_mask_path"
            item[key] = f"{'masks' if fmt == 'nerfstudio' else 'fg_masks'}/{stem}.png"
            write_bytes(out / item[key], _png(alpha))
        if fmt == "gaussian-avatars":
            image = np.concatenate([rgb, alpha[:, :, None]], axis=2)
        elif fmt == "vhap" and alpha is not None:
            a = alpha[:, :, None].astype(np.float64) / 255.0
            image = np.round(rgb * a + bg * (1 - a)).astype(np.uint8)
        else:
            image = rgb
        write_bytes(out / item["file_path"], _png(image))
        if flame:
            item["flame_param_path"] = f"flame_param/{t:05d}.npz"
            save_npz(
                out / item["flame_param_path"],
                translation=tracks["transl"][t : t + 1],
                rotation=tracks["rot"][t : t + 1],
                neck_pose=tracks["neck"][t : t + 1],
                jaw_pose=tracks["jaw"][t : t + 1],
                eyes_pose=tracks["eyes"][t : t + 1],
                shape=sized["shape"],
                expr=sized["expr"][t : t + 1],
                static_offset=sized["static_offset"],
            )

    notes = []
    write_json(out / "transforms.json", db)
    if flame:

        def zeros(key):
            return np.zeros_like(np.asarray(tracks[key][:1], np.float32))

        save_npz(
            out / "canonical_flame_param.npz",
            translation=zeros("transl"),
            rotation=zeros("rot"),
            neck_pose=zeros("neck"),
            jaw_pose=np.array([[0.3, 0.0, 0.0]], np.float32),  # mouth open, as VHAP
            eyes_pose=zeros("eyes"),
            shape=sized["shape"],
            expr=np.zeros((1, FLAME_EXPR), np.float32),
            static_offset=sized["static_offset"],
        )
        shared = {k: v for k, v in db.items() if k not in ("frames", "timestep_indices", "camera_indices")}
        parts = {
            "train": {
                **shared,
                "frames": [db["frames"][t] for t in train],
                "timestep_indices": train,
                "camera_indices": [0],
            },
            # one camera: VHAP leaves validation empty (it shares the training timesteps)
            "val": {**shared, "frames": [], "timestep_indices": train, "camera_indices": []},
            "test": {
                **shared,
                "frames": [db["frames"][t] for t in test],
                "timestep_indices": test,
                "camera_indices": [0],
            },
        }
        for division, part in parts.items():
            write_json(out / f"transforms_{division}.json", part)
        if head_model != "flame2023":
            notes.append(
                f"tracked with {head_model}: GaussianAvatars and VHAP load flame2023.pkl by default; point their "
                f"FLAME_MODEL_PATH at the same release (generic_model.pkl for flame2020)"
            )
    summary = {
        "format": fmt,
        "run": str(run),
        "frames": num_frames,
        "train": len(train),
        "test": len(test),
        "head_model": head_model,
        "width": width,
        "height": height,
        "notes": notes,
        "config": {"format": fmt, "train_ratio": train_ratio, "background": background},
    }
    write_json(out / "config.json", summary)
    return summary


def run(cmd: ExportDatasetCommand) -> int:
    summary = export_dataset(cmd.run, cmd.out, cmd.format, cmd.train_ratio, cmd.background, cmd.overwrite)
    print(
        f"wrote {summary['frames']} frames ({summary['train']} train / {summary['test']} test) as "
        f"{summary['format']} to {cmd.out}"
    )
    for note in summary["notes"]:
        print(f"note: {note}")
    return 0
