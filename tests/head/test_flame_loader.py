"""The FLAME loader on files of the official layouts, on broken ones and on hostile ones."""

from __future__ import annotations

import os
import pickle
import pickletools
import re
import sys

import flame_layouts as layouts
import numpy as np
import pytest

from splattalk.errors import SplattalkError
from splattalk.head import flame, unpickle


@pytest.fixture(scope="module")
def arrays():
    return layouts.flame_arrays(seed=1)


@pytest.fixture(scope="module")
def files(tmp_path_factory, arrays):
    root = tmp_path_factory.mktemp("flame")
    (root / "FLAME2020").mkdir()
    (root / "FLAME2023").mkdir()
    return {
        "flame2020": layouts.write_flame(root / "FLAME2020" / "generic_model.pkl", arrays, "2020"),
        "flame2023": layouts.write_flame(root / "FLAME2023" / "flame2023.pkl", arrays, "2023"),
        "flame2023-nojaw": layouts.write_flame(root / "FLAME2023" / "flame2023_no_jaw.pkl", arrays, "2023"),
    }


def broken(tmp_path, arrays, name="generic_model.pkl", **changes):
    data = dict(arrays)
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    return layouts.write_flame(tmp_path / name, data)


# -- the official layouts load ----------------------------------------------------------


def test_written_files_have_the_official_pickle_layout(files):
    """Guard the helper itself: Python-2 protocol 2, chumpy/scipy.csc globals, no Python-3 unicode or bytes opcodes."""
    raw = files["flame2020"].read_bytes()
    ops = list(pickletools.genops(raw))
    assert raw[:2] == b"\x80\x02"
    globals_ = {arg for op, arg, _ in ops if op.name == "GLOBAL"}
    assert {
        "chumpy.ch Ch",
        "scipy.sparse.csc csc_matrix",
        "numpy.core.multiarray _reconstruct",
        "numpy dtype",
    } <= globals_
    assert not {op.name for op, _, _ in ops} & {"BINUNICODE", "SHORT_BINUNICODE", "BINBYTES", "SHORT_BINBYTES"}
    assert "chumpy" not in sys.modules and "chumpy.ch" not in sys.modules


@pytest.mark.parametrize("model_id", flame.MODEL_IDS)
def test_loads_each_release(files, arrays, model_id):
    model = flame.load_flame(files[model_id])
    assert model.model_id == model_id
    assert (model.num_vertices, model.num_shape, model.num_expr) == (5023, 300, 100)
    assert model.parents.tolist() == [-1, 0, 1, 1, 1]
    assert model.lmk_ids.shape == (0,) and model.lmk_bary.shape == (0, 3)
    np.testing.assert_allclose(model.v_template.numpy(), arrays["v_template"], rtol=1e-6)
    np.testing.assert_allclose(model.shapedirs.numpy(), arrays["shapedirs"][:, :, :300], rtol=1e-6)
    np.testing.assert_allclose(model.exprdirs.numpy(), arrays["shapedirs"][:, :, 300:], rtol=1e-6)
    np.testing.assert_allclose(model.J_regressor.numpy(), arrays["J_regressor"], rtol=1e-6)
    np.testing.assert_allclose(model.lbs_weights.numpy(), arrays["weights"], rtol=1e-6)
    assert model.faces.numpy().tolist() == arrays["f"].astype(np.int64).tolist()
    # posedirs [V,3,36] → [36, V*3], row k = pose feature k
    np.testing.assert_allclose(model.posedirs.numpy()[7].reshape(-1, 3), arrays["posedirs"][:, :, 7], rtol=1e-6)


def test_raw_arrays_round_trip_exactly(files, arrays):
    data = flame.read_flame_arrays(files["flame2023"])
    for key, value in arrays.items():
        if isinstance(value, str):
            assert data[key] == value
        else:
            assert np.array_equal(np.asarray(data[key]), value), key


@pytest.mark.parametrize("protocol", [0, 1, 4, 5])
def test_loads_python3_resaved_pickles(tmp_path, arrays, protocol):
    """Files re-saved by `chumpy → numpy` fix scripts: plain arrays, modern scipy csc_matrix, any protocol."""
    scipy_sparse = pytest.importorskip("scipy.sparse")
    data = dict(arrays, J_regressor=scipy_sparse.csc_matrix(arrays["J_regressor"]))
    path = tmp_path / "flame2023.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    model = flame.load_flame(path)
    assert model.model_id == "flame2023"
    np.testing.assert_allclose(model.J_regressor.numpy(), arrays["J_regressor"], rtol=1e-6)


def test_loads_protocol0_chumpy_via_copy_reg_reconstructor(tmp_path, arrays):
    path = tmp_path / "generic_model.pkl"
    with layouts.fake_writer_modules():
        path.write_bytes(pickle.dumps(layouts.as_official(arrays, "2023"), protocol=0))
    assert b"copy_reg\n_reconstructor" in path.read_bytes()
    np.testing.assert_array_equal(flame.read_flame_arrays(path)["shapedirs"], arrays["shapedirs"])


def test_loads_resaved_npz(tmp_path, arrays):
    path = tmp_path / "flame2023_no_jaw.npz"
    np.savez(path, **arrays)
    assert flame.load_flame(path).model_id == "flame2023-nojaw"


# -- version detection and hints ----------------------------------------------------------


def test_detect_version_from_names(files, arrays):
    for model_id, path in files.items():
        assert flame.detect_flame_version(path) == model_id
    assert flame.detect_flame_version(arrays, name="some/dir/female_model.pkl") == "flame2020"
    assert flame.detect_flame_version(arrays, name="FLAME2023/generic_model.pkl") == "flame2023"


def test_renamed_file_needs_version(tmp_path, files, arrays):
    path = tmp_path / "my_head.pkl"
    path.write_bytes(files["flame2020"].read_bytes())
    with pytest.raises(SplattalkError, match="identical layouts.*pass version="):
        flame.load_flame(path)
    assert flame.load_flame(path, version="flame2020").model_id == "flame2020"
    with pytest.raises(SplattalkError, match="unknown FLAME version"):
        flame.load_flame(path, version="flame2030")


def test_symlinked_smplx_name_is_judged_by_its_target(tmp_path, files):
    link = tmp_path / "FLAME_NEUTRAL.pkl"
    link.symlink_to(files["flame2023"])
    assert flame.detect_flame_version(link) == "flame2023"


def test_older_release_is_named(tmp_path, arrays):
    (tmp_path / "FLAME2019").mkdir()
    path = layouts.write_flame(tmp_path / "FLAME2019" / "generic_model.pkl", arrays)
    with pytest.raises(SplattalkError, match="FLAME 2019.*does not support"):
        flame.load_flame(path)


def test_artalk_needs_flame2020_hint(files):
    with pytest.raises(SplattalkError, match="looks like FLAME 2023.*ARTalk.*needs FLAME 2020") as err:
        flame.load_flame(files["flame2023"], expect="flame2020")
    assert str(files["flame2023"]) in str(err.value)
    with pytest.raises(SplattalkError, match="no-jaw variant opens the mouth through its expression"):
        flame.load_flame(files["flame2023-nojaw"], expect="flame2020")
    assert flame.load_flame(files["flame2020"], expect="flame2020").model_id == "flame2020"


def test_smpl_files_are_named(tmp_path):
    rng = np.random.default_rng(0)
    smpl = {
        "v_template": rng.random((6890, 3)),
        "shapedirs": layouts.Ch(rng.random((6890, 3, 10))),
        "weights_prior": rng.random((6890, 24)),
        "kintree_table": np.zeros((2, 24), np.int64),
    }
    path = layouts.write_py2_pickle(tmp_path / "basicModel_neutral.pkl", smpl)
    with pytest.raises(SplattalkError, match="SMPL / SMPL-H body model file, not FLAME"):
        flame.load_flame(path)
    smplx = {
        "v_template": rng.random((10475, 3)),
        "hands_componentsl": rng.random((45, 45)),
        "shapedirs": rng.random((10475, 3, 2)),
    }
    path = tmp_path / "SMPLX_NEUTRAL.npz"
    np.savez(path, **smplx)
    with pytest.raises(SplattalkError, match="SMPL-X body model file, not FLAME"):
        flame.load_flame(path)


def test_companion_files_are_named(tmp_path):
    texture = tmp_path / "FLAME_texture.npz"
    np.savez(
        texture,
        mean=np.zeros((8, 8, 3)),
        tex_dir=np.zeros((8, 8, 3, 2)),
        vt=np.zeros((5118, 2)),
        ft=np.zeros((9976, 3), np.int64),
    )
    with pytest.raises(SplattalkError, match=r"FLAME \*texture\* file"):
        flame.load_flame(texture)
    embedding = tmp_path / "mediapipe_landmark_embedding.npz"
    layouts.write_embedding(embedding)
    with pytest.raises(SplattalkError, match="mediapipe landmark embedding.*mediapipe_embedding="):
        flame.load_flame(embedding)
    masks = layouts.write_py2_pickle(tmp_path / "FLAME_masks.pkl", layouts.masks())
    with pytest.raises(SplattalkError, match="FLAME_masks.pkl.*masks="):
        flame.load_flame(masks)


# -- broken files ------------------------------------------------------------------------


@pytest.mark.parametrize("field", sorted(set(flame.FIELDS) - flame.OPTIONAL))
def test_missing_field(tmp_path, arrays, field):
    path = broken(tmp_path, arrays, **{field: None})
    with pytest.raises(SplattalkError) as err:
        flame.load_flame(path)
    message = str(err.value)
    assert str(path) in message and f"'{field}' is missing" in message and "expected" in message


@pytest.mark.parametrize(
    "field, value, found",
    [
        ("shapedirs", np.zeros((5023, 3, 300)), "shape [5023, 3, 300]"),
        ("v_template", np.zeros((5023, 2)), "shape [5023, 2]"),
        ("posedirs", np.zeros((5023, 3, 207)), "shape [5023, 3, 207]"),
        ("weights", np.zeros((5023, 4)), "shape [5023, 4]"),
        ("J_regressor", np.zeros((24, 5023)), "shape [24, 5023]"),
        ("f", np.zeros((9000, 3), np.int64), "shape [9000, 3]"),
    ],
)
def test_wrong_shape(tmp_path, arrays, field, value, found):
    path = broken(tmp_path, arrays, **{field: value})
    with pytest.raises(SplattalkError, match=rf"'{field}' has {re.escape(found)}, expected \[") as err:
        flame.load_flame(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    "field, value, found",
    [
        ("v_template", np.zeros((5023, 3), np.int32), "dtype int32"),
        ("weights", np.full((5023, 5), "a"), "dtype <U1"),
        ("f", np.zeros((9976, 3), np.float32), "dtype float32"),
        ("kintree_table", np.zeros((2, 5), np.float64), "dtype float64"),
    ],
)
def test_wrong_dtype(tmp_path, arrays, field, value, found):
    path = broken(tmp_path, arrays, **{field: value})
    with pytest.raises(SplattalkError, match=rf"'{field}' has {re.escape(found)}, expected (a|an) "):
        flame.load_flame(path)


def test_bad_values(tmp_path, arrays):
    posedirs = arrays["posedirs"].copy()
    posedirs[3, 1, 2] = np.nan
    with pytest.raises(SplattalkError, match="'posedirs' contains NaN"):
        flame.load_flame(broken(tmp_path, arrays, posedirs=posedirs))
    with pytest.raises(SplattalkError, match="'f' indexes vertices"):
        flame.load_flame(broken(tmp_path, arrays, f=arrays["f"] + 5000))
    kintree = arrays["kintree_table"].copy()
    kintree[0, 2] = 0  # jaw hanging off the root instead of the neck
    with pytest.raises(SplattalkError, match=r"'kintree_table' is .*expected parents \[-1, 0, 1, 1, 1\]"):
        flame.load_flame(broken(tmp_path, arrays, kintree_table=kintree))
    with pytest.raises(SplattalkError, match="bs_type"):
        flame.load_flame(broken(tmp_path, arrays, bs_type="lrotmax"))


def test_truncated_file(tmp_path, files):
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(files["flame2020"].read_bytes()[:10_000_000])
    with pytest.raises(SplattalkError, match="truncated, corrupted or not a pickle") as err:
        flame.load_flame(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    "content", [b"", b"just some text\n", b"\x89PNG\r\n\x1a\n" + bytes(64), b"\x80\x02}q\x00(U\x01a"]
)
def test_not_a_pickle(tmp_path, content):
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(content)
    with pytest.raises(SplattalkError, match="could not read .*generic_model.pkl"):
        flame.load_flame(path)


def test_missing_file(tmp_path):
    with pytest.raises(SplattalkError, match="not found"):
        flame.load_flame(tmp_path / "generic_model.pkl")


def test_pickle_of_a_non_dict(tmp_path):
    path = layouts.write_py2_pickle(tmp_path / "generic_model.pkl", [np.zeros(3)])
    with pytest.raises(SplattalkError, match="holds a list, not the dict"):
        flame.load_flame(path)


# -- hostile files: refused, and nothing in them runs ---------------------------------------


class _Evil:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


def _hostile_payloads(marker):
    command = f"touch {marker}"
    code = f"open({str(marker)!r}, 'w').write('ran')"
    return {
        "os.system, protocol 0": (f"cos\nsystem\n(V{command}\ntR.".encode(), "os.system"),
        "posix.system, protocol 2": (
            pickle.dumps(_Evil(os.system, command), protocol=2),
            f"{os.system.__module__}.system",
        ),
        "builtins.eval, protocol 4": (pickle.dumps(_Evil(eval, code), protocol=4), "builtins.eval"),
        "__builtin__.eval, python 2": (f"c__builtin__\neval\n(S{code!r}\ntR.".encode(), "__builtin__.eval"),
        "builtins.exec inside a FLAME dict": (
            pickle.dumps({"v_template": np.zeros((5023, 3)), "shapedirs": _Evil(exec, code)}, protocol=2),
            "__builtin__.exec",
        ),
        "subprocess via copy_reg._reconstructor": (
            b"ccopy_reg\n_reconstructor\n(csubprocess\nPopen\nc__builtin__\nobject\nNtR.",
            "subprocess.Popen",
        ),
    }


@pytest.mark.parametrize("case", list(_hostile_payloads("x")))
def test_forbidden_global_is_refused_and_not_executed(tmp_path, case):
    marker = tmp_path / "pwned"
    payload, named = _hostile_payloads(marker)[case]
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(payload)
    with pytest.raises(SplattalkError) as err:
        flame.load_flame(path)
    message = str(err.value)
    assert message.startswith(f"refusing to load {path}: it references {named}, which a FLAME model never does")
    assert not marker.exists(), "the forbidden callable ran"
    if "subprocess" not in case:  # the payload is live: plain pickle does run it (harmless here: it writes the marker)
        pickle.loads(payload, encoding="latin1")
        assert marker.exists()


def test_hostile_chumpy_state_is_refused(tmp_path):
    """A real-looking chumpy Ch whose state hides a call: the inner global is refused too."""
    marker = tmp_path / "pwned"
    arrays = layouts.flame_arrays()
    arrays["shapedirs"] = layouts.Ch(np.zeros((5023, 3, 400)))
    arrays["shapedirs"].x = _Evil(os.system, f"touch {marker}")
    path = tmp_path / "generic_model.pkl"
    with layouts.fake_writer_modules():
        path.write_bytes(pickle.dumps(arrays, protocol=2))
    with pytest.raises(SplattalkError, match="refusing to load .*system"):
        flame.load_flame(path)
    assert not marker.exists()


def test_unknown_chumpy_node_is_refused(tmp_path):
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(b"\x80\x02cchumpy.ch_ops\nadd\n)\x81}b.")
    with pytest.raises(SplattalkError, match="chumpy.ch_ops.add, a chumpy expression this loader does not evaluate"):
        flame.load_flame(path)


def test_object_arrays_are_refused(tmp_path):
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps({"v_template": np.array([1, "a"], dtype=object)}, protocol=2))
    with pytest.raises(SplattalkError, match="object array"):
        flame.load_flame(path)


def test_allowed_table_is_small_and_exact():
    """Every allowed global is a data constructor; nothing that can reach the OS or run code."""
    values = set(map(id, unpickle.ALLOWED_GLOBALS.values()))
    for dangerous in (eval, exec, os.system, getattr, __import__, open, compile):
        assert id(dangerous) not in values
    modules = {module.split(".")[0] for module, _ in unpickle.ALLOWED_GLOBALS}
    assert modules == {"numpy", "__builtin__", "builtins", "copy_reg", "copyreg", "_codecs", "chumpy", "scipy"}
