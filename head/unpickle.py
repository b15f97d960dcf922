"""Read the pickled model files of FLAME (and its masks) without running their code.

The official FLAME files are Python-2 pickles written with chumpy, an autodiff
library that no longer imports on current Python/numpy. A plain
``pickle.load`` would need chumpy installed and would run whatever callable the
file names. :func:`load_pickle` instead resolves every global the file names
through a fixed table:

- chumpy's array nodes (``chumpy.ch.Ch`` and the reorderings ``Select``,
  ``Reshape``, ``transpose``) become :class:`ChumpyNode` stand-ins that only
  record their state; :func:`to_plain` evaluates them to numpy arrays;
- scipy's compressed sparse matrices (``J_regressor``) become
  :class:`SparseMatrix` stand-ins, densified here, so scipy runs no code either;
- the numpy reconstruction functions are wrapped so that object arrays (the
  one numpy route back into arbitrary Python objects) are refused;
- ``set``/``frozenset``/``object`` and ``copy_reg._reconstructor`` (restricted
  to the stand-ins) cover what Python 2 wrote for plain instances;

and every other global is refused before anything is called.

:func:`load_npy_object` reads the one ``.npy`` flavour that holds a pickle —
``np.save`` of a dict, as VHAP's / GaussianAvatars' ``landmark_embedding_with_eyes.npy`` —
through the same table plus: the object dtype of that one 0-d container, and
stand-ins for torch's tensor-rebuild functions (:class:`TorchTensorStub`, which
keep the tensor's shape and never decode its bytes) and ``OrderedDict()``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from splattalk.errors import SplattalkError

MAX_ELEMENTS = 200_000_000
"""Largest array (in elements) a model file may ask for: FLAME's biggest, shapedirs, has 6 million."""


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global outside the allowed table."""

    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")
        self.module = module
        self.name = name


# -- stand-ins -------------------------------------------------------------------------


class ChumpyNode:
    """What a pickled chumpy object becomes: its class name and its state dict, nothing else."""

    kind = "chumpy"

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"{self.kind} state is a {type(state).__name__}, expected a dict")
        self.state = state


def _chumpy_class(kind: str) -> type[ChumpyNode]:
    return type(kind.rsplit(".", 1)[-1], (ChumpyNode,), {"kind": kind})


CHUMPY_NODES = {
    kind: _chumpy_class(kind)
    for kind in (
        "chumpy.ch.Ch",
        "chumpy.reordering.Select",
        "chumpy.reordering.Reshape",
        "chumpy.reordering.transpose",
    )
}


class SparseMatrix:
    """What a pickled scipy csc/csr matrix becomes; :meth:`dense` rebuilds it with numpy only."""

    layout = "csc"

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"sparse matrix state is a {type(state).__name__}, expected a dict")
        self.state = state

    def dense(self) -> np.ndarray:
        state = self.state
        shape = state.get("_shape", state.get("shape"))
        if not (isinstance(shape, tuple) and len(shape) == 2 and all(isinstance(n, int) and n >= 0 for n in shape)):
            raise ValueError(f"sparse matrix has no valid 2-D shape (found {shape!r})")
        if shape[0] * shape[1] > MAX_ELEMENTS:
            raise ValueError(f"sparse matrix of shape {shape} is too large")
        data, indices, indptr = (np.asarray(state.get(k)) for k in ("data", "indices", "indptr"))
        outer = shape[1] if self.layout == "csc" else shape[0]
        inner = shape[0] if self.layout == "csc" else shape[1]
        if data.dtype.kind not in "fiu" or indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu":
            raise ValueError("sparse matrix arrays have non-numeric dtypes")
        counts = np.diff(indptr.astype(np.int64))
        if (
            indptr.shape != (outer + 1,)
            or indptr[0] != 0
            or (counts < 0).any()
            or indices.shape != data.shape
            or data.ndim != 1
            or int(indptr[-1]) != len(data)
            or (len(indices) and (indices.min() < 0 or indices.max() >= inner))
        ):
            raise ValueError(f"sparse {self.layout} matrix arrays are inconsistent with its shape {shape}")
        out = np.zeros(shape, dtype=np.float64)
        major = np.repeat(np.arange(outer), counts)
        rows, cols = (indices, major) if self.layout == "csc" else (major, indices)
        np.add.at(out, (rows, cols), data.astype(np.float64))
        return out


class _CsrMatrix(SparseMatrix):
    layout = "csr"


def _sparse_globals() -> dict[tuple[str, str], type]:
    table = {}
    for layout, cls in (("csc", SparseMatrix), ("csr", _CsrMatrix)):
        for module in (f"scipy.sparse.{layout}", f"scipy.sparse._{layout}", "scipy.sparse"):
            for kind in ("matrix", "array"):
                table[(module, f"{layout}_{kind}")] = cls
    return table


# -- wrapped reconstruction callables ----------------------------------------------------

_np_reconstruct = np.zeros(1).__reduce__()[0]
_np_scalar = np.float64(0).__reduce__()[0]


def _checked_dtype(dtype: Any) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise pickle.UnpicklingError("the pickle holds an object array, which a model file never does")
    return dtype


def _dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    # Always a copy: the BUILD that follows must not mutate numpy's shared descriptors.
    return _checked_dtype(np.dtype(spec, bool(align), True))


def _reconstruct(subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"array subtype {subtype!r} is not numpy.ndarray")
    if not isinstance(shape, tuple) or np.prod(shape) > 1:
        raise pickle.UnpicklingError(f"unexpected array placeholder shape {shape!r}")
    return _np_reconstruct(np.ndarray, shape, typecode)


def _scalar(dtype: Any, data: Any = None) -> Any:
    return _np_scalar(_checked_dtype(dtype), data)


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    array = np.frombuffer(bytes(buffer), dtype=_checked_dtype(dtype))
    return array.reshape(shape, order=order).copy()


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    # Python 2 (protocol 0/1) wrote plain instances as copy_reg._reconstructor(cls, object, None).
    if base is not object or not (isinstance(cls, type) and issubclass(cls, (ChumpyNode, SparseMatrix))):
        raise pickle.UnpicklingError(f"refusing copy_reg._reconstructor({cls!r}, {base!r})")
    return cls.__new__(cls)


def _latin1_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(text, "latin1").
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode(..., {encoding!r})")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): _dtype}
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = _reconstruct
        table[(f"{core}.multiarray", "scalar")] = _scalar
        table[(f"{core}.numeric", "_frombuffer")] = _frombuffer
    for builtins in ("__builtin__", "builtins"):
        table.update({(builtins, "set"): set, (builtins, "frozenset"): frozenset, (builtins, "object"): object})
    for copyreg in ("copy_reg", "copyreg"):
        table[(copyreg, "_reconstructor")] = _reconstructor
    table[("_codecs", "encode")] = _latin1_encode
    for kind, cls in CHUMPY_NODES.items():
        module, name = kind.rsplit(".", 1)
        table[(module, name)] = cls
    table.update(_sparse_globals())
    return table


ALLOWED_GLOBALS = _allowed_globals()
"""(module, name) → the object a pickle gets for it. Nothing else resolves."""


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves globals only through :data:`ALLOWED_GLOBALS`."""

    def __init__(self, file):
        super().__init__(file, encoding="latin1")

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobal(module, name) from None


class TorchTensorStub:
    """What a pickled torch tensor becomes in :func:`load_npy_object`: its size only; its bytes are never parsed."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape

    def __repr__(self) -> str:
        return f"TorchTensorStub(shape={self.shape})"


class _TorchBytes:
    """A torch storage serialised as bytes (``torch.storage._load_from_bytes``): kept, not loaded."""

    def __init__(self, data: Any):
        if not isinstance(data, bytes):
            raise pickle.UnpicklingError("torch storage payload is not bytes")


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> TorchTensorStub:
    if not isinstance(storage, _TorchBytes) or not isinstance(size, tuple) or not all(isinstance(n, int) for n in size):
        raise pickle.UnpicklingError("torch tensor record is malformed")
    return TorchTensorStub(tuple(size))


def _empty_ordered_dict(*args: Any) -> dict:
    # torch writes its (empty) backward hooks as collections.OrderedDict(); anything with content is refused.
    if args:
        raise pickle.UnpicklingError("refusing collections.OrderedDict with arguments")
    return {}


def _object_dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    dtype = np.dtype(spec, bool(align), True)
    if dtype.hasobject and dtype != np.dtype(object):
        raise pickle.UnpicklingError(f"refusing structured dtype with objects: {dtype}")
    return dtype


NPY_OBJECT_GLOBALS = {
    ("numpy", "dtype"): _object_dtype,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): _TorchBytes,
    ("collections", "OrderedDict"): _empty_ordered_dict,
}
"""What :func:`load_npy_object` resolves on top of :data:`ALLOWED_GLOBALS`."""


class _NpyObjectUnpickler(RestrictedUnpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in NPY_OBJECT_GLOBALS:
            return NPY_OBJECT_GLOBALS[(module, name)]
        return super().find_class(module, name)


# -- entry points ----------------------------------------------------------------------


def load_pickle(path: Path, what: str = "FLAME model") -> Any:
    """Unpickle ``path`` through :class:`RestrictedUnpickler` and evaluate stand-ins to plain arrays.

    Raises :class:`SplattalkError` naming the file for a refused global, a
    truncated or non-pickle file, or chumpy/sparse state that does not make an array.
    """
    path = Path(path)
    if not path.is_file():
        raise SplattalkError(f"{what} file not found: {path}")
    try:
        with open(path, "rb") as f:
            raw = RestrictedUnpickler(f).load()
    except RefusedGlobal as err:
        if err.module.startswith("chumpy"):
            why = "a chumpy expression this loader does not evaluate (only Ch, Select, Reshape and transpose nodes)"
        else:
            why = f"which a {what} never does"
        raise SplattalkError(
            f"refusing to load {path}: it references {err.module}.{err.name}, {why}. "
            f"Loading stopped before anything it names was called. Re-download the file from its official source."
        ) from None
    except Exception as err:  # noqa: BLE001 - any failure to parse is a bad file
        raise SplattalkError(
            f"could not read {path} as a {what} pickle ({type(err).__name__}: {err}); "
            f"the file is truncated, corrupted or not a pickle. Re-download it from its official source."
        ) from None
    try:
        return to_plain(raw)
    except ValueError as err:
        raise SplattalkError(f"could not read {path} as a {what}: {err}") from None


def to_plain(value: Any, depth: int = 0) -> Any:
    """Replace stand-ins inside dicts/lists/tuples by numpy arrays (chumpy evaluated, sparse densified)."""
    if depth > 32:
        raise ValueError("nesting is too deep")
    if isinstance(value, ChumpyNode):
        return _evaluate_chumpy(value, depth)
    if isinstance(value, SparseMatrix):
        return value.dense()
    if isinstance(value, dict):
        return {k: to_plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_plain(v, depth + 1) for v in value)
    return value


def _evaluate_chumpy(node: ChumpyNode, depth: int) -> np.ndarray:
    state = getattr(node, "state", None)
    if state is None:
        raise ValueError(f"{node.kind} object has no state")

    def operand(key: str) -> np.ndarray:
        if key not in state:
            raise ValueError(f"{node.kind} object has no {key!r}")
        value = to_plain(state[key], depth + 1)
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise ValueError(f"{node.kind}.{key} is not numeric (dtype {array.dtype})")
        return array

    if node.kind == "chumpy.ch.Ch":
        return operand("x")
    if node.kind == "chumpy.reordering.Select":
        return operand("a").ravel()[operand("idxs").astype(np.int64)].reshape(state.get("preferred_shape", (-1,)))
    if node.kind == "chumpy.reordering.Reshape":
        return operand("a").reshape(state.get("newshape"))
    if node.kind == "chumpy.reordering.transpose":
        return np.transpose(operand("a"), state.get("axes"))
    raise ValueError(f"unsupported chumpy node {node.kind}")


def load_npy_object(path: Path, what: str) -> Any:
    """The object inside an ``np.save``-d 0-d object array (e.g. a dict), read without running its code.

    The ``.npy`` header is parsed by numpy's format reader (no pickle); the
    payload goes through the restricted table (see the module docstring). A
    plain numeric ``.npy`` is returned as its array, read with
    ``allow_pickle=False``. Failures raise :class:`SplattalkError` naming the file.
    """
    from numpy.lib import format as npy_format

    path = Path(path)
    if not path.is_file():
        raise SplattalkError(f"{what} file not found: {path}")
    try:
        with open(path, "rb") as f:
            version = npy_format.read_magic(f)
            header = npy_format.read_array_header_1_0(f) if version == (1, 0) else npy_format.read_array_header_2_0(f)
            shape, _, dtype = header
            if not dtype.hasobject:
                f.seek(0)
                return np.load(f, allow_pickle=False)
            if shape != ():
                raise pickle.UnpicklingError(f"an object array of shape {shape}, expected one saved object (shape ())")
            raw = _NpyObjectUnpickler(f).load()
    except RefusedGlobal as err:
        raise SplattalkError(
            f"refusing to load {path}: it references {err.module}.{err.name}, which a {what} never does. "
            f"Loading stopped before anything it names was called. Re-download the file from its official source."
        ) from None
    except Exception as err:  # noqa: BLE001 - any failure to parse is a bad file
        raise SplattalkError(
            f"could not read {path} as a {what} ({type(err).__name__}: {err}); the file is truncated, corrupted "
            f"or not an .npy. Re-download it from its official source."
        ) from None
    if not (isinstance(raw, np.ndarray) and raw.shape == () and raw.dtype == object):
        raise SplattalkError(f"{path} does not hold one saved object, so it is not a {what}.")
    try:
        return to_plain(raw.item())
    except ValueError as err:
        raise SplattalkError(f"could not read {path} as a {what}: {err}") from None
