"""FLAME head models from the user's own files, loaded strictly and without chumpy.

Supported: FLAME 2020 (``generic_model.pkl``, also ``male_model.pkl`` /
``female_model.pkl``; smplx keeps them as ``flame/FLAME_NEUTRAL.pkl``,
``FLAME_MALE.pkl``, ``FLAME_FEMALE.pkl``), FLAME 2023 (``flame2023.pkl``) and
its no-jaw variant (``flame2023_no_jaw.pkl``, whose mouth opening lives in the
expression space). All share one layout — a dict with ``v_template [5023,3]``,
``f [9976,3]``, ``shapedirs [5023,3,400]`` (300 shape + 100 expression),
``posedirs [5023,3,36]``, a sparse ``J_regressor [5,5023]``, ``weights
[5023,5]``, ``kintree_table [2,5]``, optionally ``J [5,3]``, and the strings
``bs_style`` / ``bs_type``. Joints always come from ``J_regressor`` applied to
the shaped template, as in smplx, VHAP and GaussianAvatars, none of which read
``J``; a file without ``J`` loads the same. No documented field tells the
releases apart, so the release is read from the file name (official or
smplx's), its ``FLAMEyyyy`` folder or a symlink's target, or given as
``version=``.

Every array is checked for presence, shape, dtype and finiteness; any problem
raises :class:`SplattalkError` naming the file, the field, what was found and
what was expected. Files that are not FLAME models at all (SMPL, SMPL-X, MANO,
FLAME's texture space, its masks or landmark embeddings) are recognised and
named. The mediapipe landmark embedding and FLAME's vertex masks are in
:mod:`splattalk.head.flame_extras`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from splattalk.errors import SplattalkError
from splattalk.head import unpickle
from splattalk.head.flame_extras import (
    NUM_FACES,
    NUM_VERTICES,
    load_flame_masks,
    load_mediapipe_embedding,
    load_vhap_embedding,
    read_npz,
)

__all__ = [
    "MODEL_IDS",
    "detect_flame_version",
    "release_reason",
    "read_flame_arrays",
    "to_head_arrays",
    "load_flame",
    "load_mediapipe_embedding",
    "load_vhap_embedding",
    "load_flame_masks",
]

NUM_SHAPE = 300
NUM_EXPR = 100
NUM_JOINTS = 5
NUM_POSE_FEATURES = (NUM_JOINTS - 1) * 9
PARENTS = (-1, 0, 1, 1, 1)
"""FLAME's kinematic tree: root ← neck ← jaw, eye_left, eye_right (our ``JOINT_NAMES`` order)."""

MODEL_IDS = ("flame2020", "flame2023", "flame2023-nojaw")
DOWNLOAD = "https://flame.is.tue.mpg.de"
_RELEASE = {
    "flame2020": "FLAME 2020 (FLAME2020.zip: generic_model.pkl)",
    "flame2023": "FLAME 2023 (FLAME2023.zip: flame2023.pkl)",
    "flame2023-nojaw": "FLAME 2023 without jaw rotation (FLAME2023.zip: flame2023_no_jaw.pkl)",
}

# field → (expected shape, dtype family, what it is)
FIELDS: dict[str, tuple[tuple[int, ...], str, str]] = {
    "v_template": ((NUM_VERTICES, 3), "float", "template vertices"),
    "f": ((NUM_FACES, 3), "int", "triangles"),
    "shapedirs": ((NUM_VERTICES, 3, NUM_SHAPE + NUM_EXPR), "float", "300 shape + 100 expression components"),
    "posedirs": ((NUM_VERTICES, 3, NUM_POSE_FEATURES), "float", "pose correctives of the 4 non-root joints"),
    "J_regressor": ((NUM_JOINTS, NUM_VERTICES), "float", "joint regressor (sparse in the official files)"),
    "weights": ((NUM_VERTICES, NUM_JOINTS), "float", "skinning weights"),
    "kintree_table": ((2, NUM_JOINTS), "int", "kinematic tree (parents, joint ids)"),
    "J": ((NUM_JOINTS, 3), "float", "rest joint locations"),
}
OPTIONAL = frozenset({"J"})
"""Fields a file may leave out: the peers' loaders regress joints from ``J_regressor`` and never read ``J``."""

SMPLX_NAMES = ("flame_neutral", "flame_male", "flame_female")
"""smplx's names (``models/flame/FLAME_{GENDER}.pkl``) for FLAME 2020's generic / male / female files."""

_VERTEX_COUNTS = {
    6890: "a SMPL / SMPL-H body model file, not FLAME",
    10475: "a SMPL-X body model file, not FLAME (SMPL-X's head is FLAME-like, but its file is not a FLAME model)",
    778: "a MANO hand model file, not FLAME",
}


# -- reading and recognising ---------------------------------------------------------------


def read_flame_arrays(path: str | Path) -> dict[str, Any]:
    """The raw contents of a FLAME file as plain numpy arrays (chumpy evaluated, J_regressor dense).

    ``.pkl`` goes through the restricted unpickler; ``.npz`` (a re-saved model)
    is read with ``allow_pickle=False``. Nothing is validated here.
    """
    path = Path(path)
    if path.suffix.lower() == ".npz":
        return read_npz(path, "FLAME model")
    data = unpickle.load_pickle(path, "FLAME model")
    if not isinstance(data, dict):
        raise SplattalkError(
            f"{path} holds a {type(data).__name__}, not the dict of arrays a FLAME model file is. "
            f"Download the model from {DOWNLOAD}."
        )
    return data


def _what_else(data: Mapping[str, Any]) -> str | None:
    """If ``data`` is a known file that is not a FLAME model, say what it is."""
    keys = set(data)
    if {"lmk_face_idx", "lmk_b_coords", "landmark_indices"} <= keys:
        return "the mediapipe landmark embedding for FLAME; pass it as mediapipe_embedding=, not as the model"
    if {"lmk_face_idx", "lmk_b_coords"} <= keys or any("lmk_faces_idx" in str(k) for k in keys):
        return "a FLAME landmark embedding (68-point / contour), not the model"
    if {"tex_dir", "mean"} <= keys or {"MU", "PC"} <= keys or ({"vt", "ft"} <= keys and "v_template" not in keys):
        return "the FLAME *texture* file (albedo space / UV layout), not the model"
    if "v_template" not in keys and keys & {"lips", "face", "forehead", "scalp", "left_eyeball"}:
        return "FLAME_masks.pkl (the vertex masks); pass it as masks=, not as the model"
    if keys & {"hands_components", "hands_componentsl", "hands_mean"}:
        count = np.shape(data.get("v_template"))[:1]
        return _VERTEX_COUNTS.get(count[0] if count else 0, "a MANO / SMPL-X hand-model file, not FLAME")
    template = data.get("v_template")
    if template is not None and np.ndim(template) == 2:
        return _VERTEX_COUNTS.get(np.shape(template)[0])
    return None


def _version_from_name(path: Path) -> tuple[str | None, str]:
    """(model id, reason) from the official file name or its FLAMEyyyy folder; (None, "") when they say nothing.

    A symlink (e.g. smplx's FLAME_NEUTRAL.pkl pointing at flame2023.pkl) is judged by its target first.
    """
    if path.is_symlink():
        found = _version_from_one_name(path.resolve())
        if found[0] is not None:
            return found
    return _version_from_one_name(path)


def _version_from_one_name(path: Path) -> tuple[str | None, str]:
    name = path.name.lower()
    folder = re.search(r"flame[\W_]*(20\d\d)", path.parent.name.lower())
    if re.search(r"no_?jaw", name):
        return "flame2023-nojaw", f"its name {path.name} is FLAME 2023's no-jaw variant"
    for year in ("2023", "2020", "2019", "2017"):
        if year in name:
            return f"flame{year}", f"its name {path.name} says FLAME {year}"
    if folder:
        return f"flame{folder.group(1)}", f"it is in the folder {path.parent.name}"
    if name in ("generic_model.pkl", "male_model.pkl", "female_model.pkl"):
        return "flame2020", f"{path.name} is the FLAME 2020 release's file name"
    if path.stem.lower() in SMPLX_NAMES:
        return "flame2020", (
            f"{path.name} is smplx's name for FLAME 2020; if it is a renamed flame2023.pkl, put it in a folder named "
            f"FLAME2023 or pass version='flame2023'"
        )
    return None, ""


def release_reason(path: str | Path) -> str:
    """Why ``path``'s name says which release it is ("" when it says nothing); for reports such as doctor's."""
    return _version_from_name(Path(path))[1]


def detect_flame_version(path_or_dict: str | Path | Mapping[str, Any], name: str | Path | None = None) -> str:
    """Which FLAME release a file (or its already-read dict) is: one of :data:`MODEL_IDS`.

    The file must have FLAME's layout (else a :class:`SplattalkError` says what
    it is instead: SMPL, SMPL-X, MANO, the texture, masks or a landmark
    embedding). The release is read from the file/folder name — ``name`` gives
    it for a dict — since FLAME 2020 and 2023 files have identical layouts.
    """
    if isinstance(path_or_dict, Mapping):
        data, where = path_or_dict, Path(name) if name is not None else None
    else:
        where = Path(path_or_dict)
        data = read_flame_arrays(where)
    label = where or "the given arrays"
    other = _what_else(data)
    if other:
        raise SplattalkError(
            f"{label} is {other}. The FLAME model itself is generic_model.pkl (2020) or flame2023.pkl from {DOWNLOAD}."
        )
    if "v_template" not in data or "shapedirs" not in data:
        raise SplattalkError(
            f"{label} is not a FLAME model: it has no 'v_template'/'shapedirs' (keys: {sorted(map(str, data))[:12]}). "
            f"Download the model from {DOWNLOAD}."
        )
    model_id, reason = _version_from_name(where) if where is not None else (None, "")
    if model_id is not None and model_id not in MODEL_IDS:
        raise SplattalkError(
            f"{label} looks like FLAME {model_id[5:]} ({reason}), which splattalk does not support; use "
            f"{_RELEASE['flame2020']} or {_RELEASE['flame2023']} from {DOWNLOAD}, "
            f"or pass version= if the name misleads."
        )
    if model_id is None:
        raise SplattalkError(
            f"{label} has FLAME's layout, but FLAME 2020 and 2023 files have identical layouts, "
            f"so its release cannot be "
            f"told from its contents and its name does not say. Keep the official name (generic_model.pkl for 2020, "
            f"flame2023.pkl / flame2023_no_jaw.pkl for 2023; smplx's FLAME_NEUTRAL.pkl counts as 2020), "
            f"put it in a folder "
            f"named FLAME2020 or FLAME2023, or pass version= (one of {', '.join(MODEL_IDS)})."
        )
    return model_id


# -- validation -------------------------------------------------------------------------


def _fail(path: Any, field: str, found: str, expected: str) -> SplattalkError:
    return SplattalkError(
        f"{path}: field '{field}' {found}, expected {expected}. This is not an intact FLAME model file; "
        f"download it again from {DOWNLOAD}."
    )


def validate_flame_arrays(data: Mapping[str, Any], path: Any = "FLAME model") -> None:
    """Check every field's presence, shape, dtype and values; raise :class:`SplattalkError` on the first problem."""
    other = _what_else(data)
    if other:
        raise SplattalkError(f"{path} is {other}.")
    for field, (shape, family, meaning) in FIELDS.items():
        if field not in data and field in OPTIONAL:
            continue
        if field not in data:
            raise _fail(path, field, "is missing", f"{meaning} of shape {list(shape)}")
        value = np.asarray(data[field]) if not isinstance(data[field], np.ndarray) else data[field]
        if value.dtype.kind not in ("f" if family == "float" else "iu"):
            wanted = "a floating-point" if family == "float" else "an integer"
            raise _fail(path, field, f"has dtype {value.dtype}", f"{wanted} array ({meaning})")
        if value.shape != shape:
            raise _fail(path, field, f"has shape {list(value.shape)}", f"{list(shape)} ({meaning})")
        if family == "float" and not np.isfinite(value).all():
            raise _fail(path, field, "contains NaN or infinite values", "finite numbers")
    faces = np.asarray(data["f"]).astype(np.int64)
    if faces.min() < 0 or faces.max() >= NUM_VERTICES:
        raise _fail(path, "f", f"indexes vertices {faces.min()}..{faces.max()}", f"indices in 0..{NUM_VERTICES - 1}")
    kintree = np.asarray(data["kintree_table"]).astype(np.int64)
    if list(kintree[1]) != list(range(NUM_JOINTS)) or parents_from_kintree(kintree) != PARENTS:
        wanted = f"parents {list(PARENTS)} for joints 0..4 (root, neck, jaw, eyes)"
        raise _fail(path, "kintree_table", f"is {kintree.tolist()}", wanted)
    style = {k: data[k] for k in ("bs_type", "bs_style") if k in data}
    if style and (str(style.get("bs_type", "lrotmin")) != "lrotmin" or str(style.get("bs_style", "lbs")) != "lbs"):
        raise _fail(
            path, "bs_type/bs_style", f"is {style}", "'lrotmin' / 'lbs' (FLAME's pose correctives and skinning)"
        )


def parents_from_kintree(kintree: np.ndarray) -> tuple[int, ...]:
    """Parents from kintree_table row 0; the root's entry (stored as 2**32-1 in the official files) becomes -1."""
    row = np.asarray(kintree[0]).astype(np.int64)
    return tuple(-1 if (p < 0 or p >= row.shape[0]) else int(p) for p in row)


# -- mapping to HeadModel ------------------------------------------------------------------


def to_head_arrays(data: Mapping[str, Any], embedding: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """FLAME's (validated) arrays as :class:`~splattalk.head.model.HeadModel` arrays.

    posedirs [V,3,36] → [36, V*3]: row k is pose feature k, i.e. entry (r, c) of
    (R_j - I) for joint j = 1 + k // 9, r = (k % 9) // 3, c = k % 3 — the
    row-major order ``pose_corrective_offsets`` flattens ``rot_mats[:, 1:] - I``
    in, and the one FLAME's ``lrotmin`` pose map uses.
    """
    shapedirs = np.asarray(data["shapedirs"], dtype=np.float32)
    posedirs = np.asarray(data["posedirs"], dtype=np.float32)
    empty = embedding is None
    return {
        "v_template": np.asarray(data["v_template"], dtype=np.float32),
        "faces": np.asarray(data["f"]).astype(np.int64),
        "shapedirs": np.ascontiguousarray(shapedirs[:, :, :NUM_SHAPE]),
        "exprdirs": np.ascontiguousarray(shapedirs[:, :, NUM_SHAPE : NUM_SHAPE + NUM_EXPR]),
        "posedirs": np.ascontiguousarray(posedirs.reshape(-1, NUM_POSE_FEATURES).T),
        "J_regressor": np.asarray(data["J_regressor"], dtype=np.float32),
        "parents": np.asarray(parents_from_kintree(data["kintree_table"]), dtype=np.int64),
        "lbs_weights": np.asarray(data["weights"], dtype=np.float32),
        "lmk_face_ids": np.zeros(0, np.int64) if empty else np.asarray(embedding["lmk_face_ids"], np.int64),
        "lmk_bary": np.zeros((0, 3), np.float32) if empty else np.asarray(embedding["lmk_bary"], np.float32),
        "lmk_ids": np.zeros(0, np.int64) if empty else np.asarray(embedding["lmk_ids"], np.int64),
    }


def check_version(model_id: str, expect: str | tuple[str, ...], path: Any, reason: str = "") -> None:
    """Raise a :class:`SplattalkError` with a hint when ``model_id`` is not one of ``expect``."""
    wanted = (expect,) if isinstance(expect, str) else tuple(expect)
    if model_id in wanted:
        return
    because = f" ({reason})" if reason else ""
    need = " or ".join(_RELEASE.get(w, w) for w in wanted)
    hint = ""
    if "flame2020" in wanted and model_id.startswith("flame2023"):
        hint = " The official ARTalk checkpoint was trained in FLAME 2020's expression space and needs FLAME 2020."
    if model_id == "flame2023-nojaw":
        hint += " The no-jaw variant opens the mouth through its expression components, not the jaw joint."
    raise SplattalkError(
        f"{path} looks like {_RELEASE.get(model_id, model_id)}{because}, but {need} is needed here.{hint} "
        f"Download it from {DOWNLOAD} and put it in $SPLATTALK_ASSETS (run `splattalk doctor`)."
    )


def load_flame(
    path: str | Path,
    mediapipe_embedding: str | Path | Mapping[str, np.ndarray] | None = None,
    *,
    masks: str | Path | None = None,
    version: str | None = None,
    expect: str | tuple[str, ...] | None = None,
):
    """Load a FLAME model file as a :class:`~splattalk.head.model.HeadModel`.

    path: FLAME 2020 / 2023 / 2023-no-jaw ``.pkl`` (or a re-saved ``.npz``), under
    its official name or smplx's (``FLAME_NEUTRAL.pkl`` = FLAME 2020).
    mediapipe_embedding: ``mediapipe_landmark_embedding.npz`` (metrical-tracker's,
    or its loaded dict); without it the model has no landmarks (L = 0) and cannot
    be tracked. VHAP's ``landmark_embedding_with_eyes.npy`` is a 68-point
    embedding for other detectors and is refused here with a note saying so.
    masks: ``FLAME_masks.pkl``, loaded into ``HeadModel.regions``.
    version: one of :data:`MODEL_IDS`, overriding the name-based detection.
    expect: the release(s) the caller needs; any other raises with a hint.
    """
    path = Path(path)
    data = read_flame_arrays(path)
    validate_flame_arrays(data, path)
    if version is not None:
        if version not in MODEL_IDS:
            raise SplattalkError(f"unknown FLAME version {version!r}; use one of {', '.join(MODEL_IDS)}")
        model_id, reason = version, "as given"
    else:
        model_id = detect_flame_version(data, name=path)
        reason = _version_from_name(path)[1]
    if expect is not None:
        check_version(model_id, expect, path, reason)
    if isinstance(mediapipe_embedding, (str, Path)):
        mediapipe_embedding = load_mediapipe_embedding(mediapipe_embedding)
    if mediapipe_embedding is not None and int(np.max(mediapipe_embedding["lmk_face_ids"], initial=0)) >= NUM_FACES:
        raise SplattalkError(f"the mediapipe embedding indexes triangles beyond FLAME's {NUM_FACES}")
    regions = load_flame_masks(masks) if masks is not None else None

    from splattalk.head.model import HeadModel  # lazy: torch; doctor reads FLAME files without it

    return HeadModel(to_head_arrays(data, mediapipe_embedding), model_id=model_id, regions=regions)
