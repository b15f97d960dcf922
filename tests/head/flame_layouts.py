"""Write files in the exact layouts of the official FLAME downloads, filled with random arrays.

The official ``generic_model.pkl`` / ``flame2023.pkl`` / ``flame2023_no_jaw.pkl``
are Python-2 pickles (protocol 2) of a dict: numpy arrays rebuilt through
``numpy.core.multiarray._reconstruct`` with their raw bytes as Python-2 ``str``
(BINSTRING), ``shapedirs`` (and possibly other arrays) as ``chumpy.ch.Ch``
objects, ``J_regressor`` as a ``scipy.sparse.csc.csc_matrix``, the root's
parent in ``kintree_table`` stored as 2**32-1, and ``bs_style``/``bs_type``
strings. :func:`write_py2_pickle` reproduces that byte-for-byte in spirit: fake
``chumpy.ch`` / ``scipy.sparse.csc`` classes are registered in ``sys.modules``
only while writing, and bytes/ASCII strings are written as Python 2 wrote them.
"""

from __future__ import annotations

import contextlib
import pickle
import struct
import sys
import types
from pathlib import Path

import numpy as np

V, F, J = 5023, 9976, 5
PARENTS_ROW = np.array([2**32 - 1, 0, 1, 1, 1], dtype=np.int64)

# The 105 mediapipe ids in the public FLAME mediapipe embedding (metrical-tracker's selection).
MEDIAPIPE_IDS = np.array(
    [
        276,
        282,
        283,
        285,
        293,
        295,
        296,
        300,
        334,
        336,
        46,
        52,
        53,
        55,
        63,
        65,
        66,
        70,
        105,
        107,
        249,
        263,
        362,
        373,
        374,
        380,
        381,
        382,
        384,
        385,
        386,
        387,
        388,
        390,
        398,
        466,
        7,
        33,
        133,
        144,
        145,
        153,
        154,
        155,
        157,
        158,
        159,
        160,
        161,
        163,
        173,
        246,
        168,
        6,
        197,
        195,
        5,
        4,
        129,
        98,
        97,
        2,
        326,
        327,
        358,
        0,
        13,
        14,
        17,
        37,
        39,
        40,
        61,
        78,
        80,
        81,
        82,
        84,
        87,
        88,
        91,
        95,
        146,
        178,
        181,
        185,
        191,
        267,
        269,
        270,
        291,
        308,
        310,
        311,
        312,
        314,
        317,
        318,
        321,
        324,
        375,
        402,
        405,
        409,
        415,
    ]
)


# -- fake classes standing in for chumpy / old scipy while writing -----------------------


class Ch:
    """Pickles like chumpy.ch.Ch: NEWOBJ + a state dict holding the array under 'x'."""

    def __init__(self, x):
        self.x = np.asarray(x, dtype=np.float64)

    def __getstate__(self):
        return {
            "_dirty_vars": set(),
            "_itr": None,
            "_make_dense": False,
            "_make_sparse": False,
            "_depends_on_deps": {},
            "x": self.x,
        }


class Select:
    """Pickles like chumpy.reordering.Select (a.ravel()[idxs].reshape(preferred_shape))."""

    def __init__(self, a, idxs, preferred_shape):
        self.a, self.idxs, self.preferred_shape = a, idxs, preferred_shape

    def __getstate__(self):
        return {
            "_dirty_vars": {"a"},
            "_itr": None,
            "_make_dense": False,
            "_make_sparse": False,
            "_depends_on_deps": {},
            "a": self.a,
            "idxs": self.idxs,
            "preferred_shape": self.preferred_shape,
        }


class csc_matrix:  # noqa: N801 - the name the real files reference
    """Pickles like an old scipy.sparse.csc.csc_matrix."""

    def __init__(self, dense):
        dense = np.asarray(dense, dtype=np.float64)
        rows, cols = np.nonzero(dense.T)  # column-major order
        self._shape = dense.shape
        self.maxprint = 50
        self.indices = cols.astype(np.int32)
        self.data = dense.T[rows, cols]
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=dense.shape[1]))]).astype(np.int32)


_FAKE_MODULES = {
    "chumpy": {},
    "chumpy.ch": {"Ch": Ch},
    "chumpy.reordering": {"Select": Select},
    "scipy.sparse.csc": {"csc_matrix": csc_matrix},
}


@contextlib.contextmanager
def fake_writer_modules():
    """Register the fake chumpy / scipy.sparse.csc modules only for the duration of a dump."""
    saved = {name: sys.modules.get(name) for name in _FAKE_MODULES}
    try:
        for name, members in _FAKE_MODULES.items():
            module = types.ModuleType(name)
            for attr, cls in members.items():
                cls.__module__, cls.__qualname__ = name, attr
                setattr(module, attr, cls)
            sys.modules[name] = module
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


class Py2Pickler(pickle._Pickler):
    """Protocol-2 pickler writing bytes and ASCII text as Python 2's ``str`` (SHORT_BINSTRING / BINSTRING)."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj, data: bytes):
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    def save_bytes(self, obj):
        self._save_py2_str(obj, obj)

    def save_str(self, obj):
        if obj.isascii():
            self._save_py2_str(obj, obj.encode("ascii"))
        else:
            pickle._Pickler.save_str(self, obj)

    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def write_py2_pickle(path: Path, obj) -> Path:
    with fake_writer_modules(), open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(obj)
    return path


# -- FLAME-layout arrays -----------------------------------------------------------------------


def flame_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """Random arrays with the real FLAME shapes and dtypes (plain numpy; J_regressor dense)."""
    rng = np.random.default_rng(seed)
    template = rng.normal(0, 0.08, (V, 3))
    regressor = np.zeros((J, V))
    for j in range(J):  # each joint: a convex combination of a few vertices, like FLAME's sparse regressor
        ids = rng.choice(V, 12, replace=False)
        regressor[j, ids] = rng.dirichlet(np.ones(12))
    weights = rng.random((V, J)) ** 3
    weights /= weights.sum(1, keepdims=True)
    return {
        "f": rng.integers(0, V, (F, 3)).astype(np.uint32),
        "J_regressor": regressor,
        "kintree_table": np.stack([PARENTS_ROW, np.arange(J, dtype=np.int64)]),
        "J": regressor @ template,
        "bs_style": "lbs",
        "weights": weights,
        "posedirs": rng.normal(0, 1e-3, (V, 3, 36)),
        "v_template": template,
        "shapedirs": rng.normal(0, 1e-3, (V, 3, 400)),
        "bs_type": "lrotmin",
    }


def as_official(arrays: dict, variant: str = "2020") -> dict:
    """Wrap arrays as the official pickles hold them: chumpy shapedirs, sparse J_regressor.

    The "2023" variant additionally wraps posedirs in a Ch and J in a Select, so
    the loader is exercised on every chumpy node kind it evaluates.
    """
    out = dict(arrays)

    def wrap(key, make):
        value = arrays.get(key)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            out[key] = make(value)

    wrap("shapedirs", Ch)
    if np.shape(arrays.get("J_regressor")) == (J, V):
        wrap("J_regressor", csc_matrix)
    if variant != "2020":
        wrap("posedirs", Ch)
        if np.shape(arrays.get("J")) == (J, 3):
            wrap("J", lambda x: Select(Ch(x), np.arange(x.size), x.shape))
    return out


def write_flame(path: Path, arrays: dict | None = None, variant: str = "2020", seed: int = 0) -> Path:
    """Write a FLAME-layout Python-2 pickle at ``path``."""
    return write_py2_pickle(Path(path), as_official(arrays if arrays is not None else flame_arrays(seed), variant))


def write_embedding(path: Path, seed: int = 0, **overrides) -> dict[str, np.ndarray]:
    """Write a mediapipe_landmark_embedding.npz (105 points); returns what was written."""
    rng = np.random.default_rng(seed)
    data = {
        "lmk_face_idx": rng.integers(0, F, len(MEDIAPIPE_IDS)).astype(np.uint32),
        "lmk_b_coords": rng.dirichlet(np.ones(3), len(MEDIAPIPE_IDS)),
        "landmark_indices": MEDIAPIPE_IDS.astype(np.int64),
    }
    data.update(overrides)
    data = {k: v for k, v in data.items() if v is not None}
    np.savez(path, **data)
    return data


def masks(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    names = (
        "eye_region",
        "neck",
        "left_eyeball",
        "right_eyeball",
        "right_ear",
        "right_eye_region",
        "forehead",
        "lips",
        "nose",
        "scalp",
        "boundary",
        "face",
        "left_ear",
        "left_eye_region",
    )
    return {name: np.sort(rng.choice(V, 200, replace=False)).astype(np.int64) for name in names}


def write_vhap_embedding(path: Path, seed: int = 0, **overrides) -> dict:
    """Write a landmark_embedding_with_eyes.npy in VHAP's layout: ``np.save`` of a dict (so a pickle, protocol 3)
    with numpy ``static_*`` [53] / [53,3] and ``full_*`` [1,70] / [1,70,3] tables and torch ``dynamic_*`` ones."""
    import torch

    rng = np.random.default_rng(seed)
    data = {
        "static_lmk_faces_idx": rng.integers(0, F, 53).astype(np.int64),
        "static_lmk_bary_coords": rng.dirichlet(np.ones(3), 53),
        "dynamic_lmk_faces_idx": torch.from_numpy(rng.integers(0, F, (79, 17))),
        "dynamic_lmk_bary_coords": torch.from_numpy(rng.dirichlet(np.ones(3), (79, 17))),
        "full_lmk_faces_idx": rng.integers(0, F, (1, 70)).astype(np.int64),
        "full_lmk_bary_coords": rng.dirichlet(np.ones(3), (1, 70)),
    }
    data.update(overrides)
    np.save(path, data, allow_pickle=True)
    return data
