"""Files that come with a FLAME model: landmark embeddings and the vertex masks.

Tracking needs ``mediapipe_landmark_embedding.npz``, which metrical-tracker
ships (``flame/mediapipe/mediapipe_landmark_embedding.npz``): it places 105 of
mediapipe's 478 face-landmarker points on the FLAME mesh with
``lmk_face_idx [L]`` (triangle ids), ``lmk_b_coords [L,3]`` (barycentrics) and
``landmark_indices [L]`` (which mediapipe point each is). It is read with
``allow_pickle=False``.

VHAP and GaussianAvatars ship a different file, ``landmark_embedding_with_eyes.npy``:
a dict saved with ``np.save`` (so a pickle) whose ``full_lmk_faces_idx [1,70]`` /
``full_lmk_bary_coords [1,70,3]`` place the 68 iBUG points of face-alignment /
STAR detectors plus the two eye centres (also ``static_*`` / ``dynamic_*``
contour tables, the dynamic ones as torch tensors). :func:`load_vhap_embedding`
reads it through the restricted unpickler; it is not a mediapipe embedding (no
mediapipe ids), so it cannot drive our mediapipe-based tracker, and passing it
where the mediapipe file is needed raises an error that says so.

``FLAME_masks.pkl`` maps region names (``lips``, ``forehead``, ``eye_region``,
``face``, ``scalp``, ``neck``, …) to vertex index arrays; it is read through
the same restricted unpickler as the model.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from splattalk.errors import SplattalkError
from splattalk.head import unpickle

MEDIAPIPE_EMBEDDING_SOURCE = (
    "metrical-tracker ships it as flame/mediapipe/mediapipe_landmark_embedding.npz "
    "(https://github.com/Zielon/metrical-tracker)"
)
VHAP_EMBEDDING_KEYS = ("full_lmk_faces_idx", "full_lmk_bary_coords")

NUM_VERTICES = 5023
NUM_FACES = 9976
NUM_MEDIAPIPE_LANDMARKS = 478  # mirrors head.model's constant; kept here so this module needs no torch

EMBEDDING_KEYS = {
    "lmk_face_idx": ("[L] integer", "the FLAME triangle each landmark lies on"),
    "lmk_b_coords": ("[L, 3] float", "its barycentric coordinates in that triangle"),
    "landmark_indices": ("[L] integer", "which of mediapipe's 478 landmarks it is"),
}


def read_npz(path: str | Path, what: str) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz``, read with ``allow_pickle=False``; bad files raise :class:`SplattalkError`."""
    path = Path(path)
    if not path.is_file():
        raise SplattalkError(f"{what} file not found: {path}")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise SplattalkError(f"could not read {path} as a {what}: it is not an .npz (zip) file. Re-download it.")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise SplattalkError(
                f"refusing to load {path}: it stores pickled Python objects, which a {what} never does."
            ) from None
        raise SplattalkError(f"could not read {path} as a {what} .npz ({err}); re-download it.") from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise SplattalkError(
            f"could not read {path} as a {what} .npz ({type(err).__name__}: {err}); "
            "the file is truncated or not an .npz."
        ) from None


def _flat(value: np.ndarray) -> np.ndarray:
    """[L], [1, L] or [L, 1] → [L]."""
    value = np.asarray(value)
    if value.ndim == 2 and 1 in value.shape:
        return value.reshape(-1)
    return value


def validate_mediapipe_embedding(
    data: dict[str, np.ndarray], path: Any, num_faces: int = NUM_FACES
) -> dict[str, np.ndarray]:
    """Check an embedding's arrays; return ``lmk_face_ids`` [L] int64, ``lmk_bary`` [L,3] float32,
    ``lmk_ids`` [L] int64."""

    def fail(field: str, found: str, expected: str) -> SplattalkError:
        return SplattalkError(
            f"{path}: field '{field}' {found}, expected {expected}. This is not an intact mediapipe landmark "
            f"embedding; get mediapipe_landmark_embedding.npz again ({MEDIAPIPE_EMBEDDING_SOURCE})."
        )

    for key, (shape, meaning) in EMBEDDING_KEYS.items():
        if key not in data:
            keys = ", ".join(sorted(data)) or "none"
            raise fail(key, f"is missing (the file has: {keys})", f"{shape}: {meaning}")
    faces, bary, ids = _flat(data["lmk_face_idx"]), np.asarray(data["lmk_b_coords"]), _flat(data["landmark_indices"])
    for key, value, kinds in (
        ("lmk_face_idx", faces, "iu"),
        ("landmark_indices", ids, "iu"),
        ("lmk_b_coords", bary, "f"),
    ):
        if value.dtype.kind not in kinds:
            raise fail(key, f"has dtype {value.dtype}", EMBEDDING_KEYS[key][0])
    count = faces.shape[0] if faces.ndim == 1 else -1
    if faces.ndim != 1 or count == 0:
        raise fail("lmk_face_idx", f"has shape {list(faces.shape)}", "[L] with L > 0")
    if bary.shape != (count, 3):
        raise fail("lmk_b_coords", f"has shape {list(bary.shape)}", f"[{count}, 3] (one row per lmk_face_idx entry)")
    if ids.shape != (count,):
        raise fail("landmark_indices", f"has shape {list(ids.shape)}", f"[{count}] (one per lmk_face_idx entry)")
    if faces.min() < 0 or faces.max() >= num_faces:
        raise fail("lmk_face_idx", f"holds triangle ids {faces.min()}..{faces.max()}", f"ids in 0..{num_faces - 1}")
    if ids.min() < 0 or ids.max() >= NUM_MEDIAPIPE_LANDMARKS or len(np.unique(ids)) != count:
        raise fail(
            "landmark_indices",
            f"holds {ids.min()}..{ids.max()} ({len(np.unique(ids))} distinct of {count})",
            f"distinct mediapipe ids in 0..{NUM_MEDIAPIPE_LANDMARKS - 1}",
        )
    if not np.isfinite(bary).all() or np.abs(bary.sum(-1) - 1.0).max() > 1e-3:
        raise fail("lmk_b_coords", "has rows that do not sum to 1", "barycentric coordinates (each row sums to 1)")
    return {
        "lmk_face_ids": faces.astype(np.int64),
        "lmk_bary": bary.astype(np.float32),
        "lmk_ids": ids.astype(np.int64),
    }


def load_mediapipe_embedding(path: str | Path, num_faces: int = NUM_FACES) -> dict[str, np.ndarray]:
    """Read and validate ``mediapipe_landmark_embedding.npz``.

    Returns ``lmk_face_ids`` [L] int64, ``lmk_bary`` [L, 3] float32 and
    ``lmk_ids`` [L] int64 (mediapipe landmark ids), ready for ``HeadModel``.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        raise SplattalkError(
            f"{path} is an .npy file; tracking needs mediapipe_landmark_embedding.npz (105 of mediapipe's 478 points "
            f"on FLAME: lmk_face_idx, lmk_b_coords, landmark_indices). VHAP's / GaussianAvatars' "
            f"landmark_embedding_with_eyes.npy places the 68 iBUG points + 2 eye centres for other detectors and has "
            f"no mediapipe ids, so it cannot stand in; {MEDIAPIPE_EMBEDDING_SOURCE}."
        )
    return validate_mediapipe_embedding(read_npz(path, "mediapipe landmark embedding"), path, num_faces)


def load_vhap_embedding(path: str | Path, num_faces: int = NUM_FACES) -> dict[str, np.ndarray]:
    """Read VHAP's / GaussianAvatars' ``landmark_embedding_with_eyes.npy`` without running its pickle.

    Returns ``lmk_face_ids`` [70] int64 and ``lmk_bary`` [70, 3] float32 (the
    ``full_lmk_*`` tables: 68 iBUG points, then the two eye centres) and
    ``keys``: every key the file holds (its torch-tensor contour tables are not decoded).
    """
    path = Path(path)
    data = unpickle.load_npy_object(path, "landmark embedding (landmark_embedding_with_eyes.npy)")
    if not isinstance(data, dict) or not all(k in data for k in VHAP_EMBEDDING_KEYS):
        found = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise SplattalkError(
            f"{path}: expected VHAP's landmark_embedding_with_eyes.npy (a dict with {', '.join(VHAP_EMBEDDING_KEYS)}), "
            f"found {found}. Get it again from VHAP's or GaussianAvatars' asset folder."
        )
    faces, bary = np.asarray(data["full_lmk_faces_idx"]), np.asarray(data["full_lmk_bary_coords"])
    faces = faces.reshape(-1) if faces.ndim == 2 and faces.shape[0] == 1 else faces
    bary = bary[0] if bary.ndim == 3 and bary.shape[0] == 1 else bary
    count = faces.shape[0] if faces.ndim == 1 else -1
    if (
        faces.dtype.kind not in "iu"
        or bary.dtype.kind != "f"
        or count <= 0
        or bary.shape != (count, 3)
        or faces.min() < 0
        or faces.max() >= num_faces
        or not np.isfinite(bary).all()
        or np.abs(bary.sum(-1) - 1.0).max() > 1e-3
    ):
        raise SplattalkError(
            f"{path}: full_lmk_faces_idx {faces.dtype} {list(faces.shape)} / full_lmk_bary_coords {bary.dtype} "
            f"{list(bary.shape)} are not [1, L] triangle ids in 0..{num_faces - 1} with [1, L, 3] barycentrics "
            f"summing to 1. Get the file again from VHAP's or GaussianAvatars' asset folder."
        )
    return {
        "lmk_face_ids": faces.astype(np.int64),
        "lmk_bary": bary.astype(np.float32),
        "keys": np.array(sorted(map(str, data))),
    }


def load_flame_masks(path: str | Path, num_vertices: int = NUM_VERTICES) -> dict[str, np.ndarray]:
    """Read ``FLAME_masks.pkl``: region name → vertex indices [N] int64 (e.g. ``lips`` for the LVE metric)."""
    path = Path(path)
    data = unpickle.load_pickle(path, "FLAME vertex-mask file")
    if not isinstance(data, dict) or not data:
        raise SplattalkError(
            f"{path} holds a {type(data).__name__}, not FLAME_masks.pkl's dict of region → vertex ids."
        )
    if "v_template" in data or "shapedirs" in data:
        raise SplattalkError(f"{path} is a FLAME *model* file, not FLAME_masks.pkl; pass it as the model instead.")
    regions = {}
    for name, value in data.items():
        ids = np.asarray(value)
        if not isinstance(name, str) or ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise SplattalkError(
                f"{path}: region {name!r} is {ids.dtype} of shape {list(ids.shape)}, "
                f"expected a [N] integer array of vertex ids."
            )
        if len(ids) and (ids.min() < 0 or ids.max() >= num_vertices):
            raise SplattalkError(
                f"{path}: region {name!r} holds vertex ids {ids.min()}..{ids.max()}, expected 0..{num_vertices - 1}."
            )
        regions[name] = ids.astype(np.int64)
    return regions
