"""FLAME's companion files: the mediapipe landmark embedding and the vertex masks."""

from __future__ import annotations

import pickle

import flame_layouts as layouts
import numpy as np
import pytest

from splattalk.errors import SplattalkError
from splattalk.head import flame

# -- mediapipe landmark embedding ------------------------------------------------------------


def test_embedding_round_trip(tmp_path):
    path = tmp_path / "mediapipe_landmark_embedding.npz"
    written = layouts.write_embedding(path, seed=3)
    loaded = flame.load_mediapipe_embedding(path)
    assert set(loaded) == {"lmk_face_ids", "lmk_bary", "lmk_ids"}
    assert loaded["lmk_face_ids"].dtype == np.int64 and loaded["lmk_ids"].dtype == np.int64
    assert loaded["lmk_bary"].dtype == np.float32 and loaded["lmk_bary"].shape == (105, 3)
    assert loaded["lmk_face_ids"].tolist() == written["lmk_face_idx"].tolist()
    assert loaded["lmk_ids"].tolist() == layouts.MEDIAPIPE_IDS.tolist()
    np.testing.assert_allclose(loaded["lmk_bary"], written["lmk_b_coords"], rtol=1e-6)


def test_embedding_accepts_column_vectors(tmp_path):
    path = tmp_path / "emb.npz"
    written = layouts.write_embedding(path, seed=3)
    layouts.write_embedding(
        path, seed=3, lmk_face_idx=written["lmk_face_idx"][None], landmark_indices=written["landmark_indices"][:, None]
    )
    assert flame.load_mediapipe_embedding(path)["lmk_face_ids"].tolist() == written["lmk_face_idx"].tolist()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"landmark_indices": None}, r"'landmark_indices' is missing \(the file has: lmk_b_coords, lmk_face_idx\)"),
        ({"lmk_b_coords": np.full((105, 2), 0.5)}, r"'lmk_b_coords' has shape \[105, 2\], expected \[105, 3\]"),
        ({"landmark_indices": layouts.MEDIAPIPE_IDS[:100]}, r"'landmark_indices' has shape \[100\], expected \[105\]"),
        (
            {"lmk_face_idx": np.full(105, 9976)},
            r"'lmk_face_idx' holds triangle ids 9976\.\.9976, expected ids in 0\.\.9975",
        ),
        ({"landmark_indices": np.full(105, 4)}, r"'landmark_indices' holds 4\.\.4 \(1 distinct of 105\)"),
        ({"landmark_indices": layouts.MEDIAPIPE_IDS + 100}, r"'landmark_indices' holds .*0\.\.477"),
        ({"lmk_b_coords": np.full((105, 3), 0.5)}, r"'lmk_b_coords' has rows that do not sum to 1"),
        ({"lmk_face_idx": np.zeros(105, np.float32)}, r"'lmk_face_idx' has dtype float32"),
        (
            {
                "lmk_face_idx": np.zeros(0, np.int64),
                "lmk_b_coords": np.zeros((0, 3)),
                "landmark_indices": np.zeros(0, np.int64),
            },
            r"'lmk_face_idx' has shape \[0\], expected \[L\] with L > 0",
        ),
    ],
)
def test_broken_embedding(tmp_path, overrides, message):
    path = tmp_path / "mediapipe_landmark_embedding.npz"
    layouts.write_embedding(path, **overrides)
    with pytest.raises(SplattalkError, match=message) as err:
        flame.load_mediapipe_embedding(path)
    assert str(path) in str(err.value)


def test_embedding_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "mediapipe_landmark_embedding.npz"
    np.savez(
        path,
        lmk_face_idx=np.array([1, "x"], dtype=object),
        lmk_b_coords=np.zeros((2, 3)),
        landmark_indices=np.arange(2),
    )
    with pytest.raises(SplattalkError, match="refusing to load .*pickled Python objects"):
        flame.load_mediapipe_embedding(path)


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04truncated"])
def test_embedding_not_an_npz(tmp_path, content):
    path = tmp_path / "mediapipe_landmark_embedding.npz"
    path.write_bytes(content)
    with pytest.raises(SplattalkError, match="could not read .*mediapipe_landmark_embedding.npz"):
        flame.load_mediapipe_embedding(path)


def test_model_rejects_embedding_for_another_mesh(tmp_path):
    embedding = {"lmk_face_ids": np.array([20000]), "lmk_bary": np.full((1, 3), 1 / 3), "lmk_ids": np.array([1])}
    with pytest.raises(SplattalkError, match="beyond FLAME's 9976"):
        flame.load_flame(layouts.write_flame(tmp_path / "generic_model.pkl", layouts.flame_arrays()), embedding)


# -- vertex masks -----------------------------------------------------------------------------


@pytest.mark.parametrize("writer", ["python2", "python3"])
def test_masks_load_into_regions(tmp_path, writer):
    regions = layouts.masks(seed=2)
    path = tmp_path / "FLAME_masks.pkl"
    if writer == "python2":
        layouts.write_py2_pickle(path, regions)
    else:
        path.write_bytes(pickle.dumps(regions, protocol=4))
    loaded = flame.load_flame_masks(path)
    assert set(loaded) == set(regions)
    assert all(np.array_equal(loaded[k], regions[k]) for k in regions)
    model = flame.load_flame(layouts.write_flame(tmp_path / "generic_model.pkl", layouts.flame_arrays()), masks=path)
    assert np.array_equal(model.regions["lips"], regions["lips"])


def test_broken_masks(tmp_path):
    path = tmp_path / "FLAME_masks.pkl"
    layouts.write_py2_pickle(path, {"lips": np.array([0, 6000])})
    with pytest.raises(SplattalkError, match=r"region 'lips' holds vertex ids 0\.\.6000, expected 0\.\.5022"):
        flame.load_flame_masks(path)
    layouts.write_py2_pickle(path, {"lips": np.zeros((3, 2))})
    with pytest.raises(SplattalkError, match=r"region 'lips' is float64 of shape \[3, 2\]"):
        flame.load_flame_masks(path)
    layouts.write_flame(path, layouts.flame_arrays())
    with pytest.raises(SplattalkError, match="is a FLAME \\*model\\* file, not FLAME_masks.pkl"):
        flame.load_flame_masks(path)


# -- splattalk doctor ------------------------------------------------------------------------


def test_doctor_validates_user_flame_files(isolated_assets, capsys):
    from splattalk import doctor

    layouts.write_flame(isolated_assets / "generic_model.pkl", layouts.flame_arrays())
    layouts.write_embedding(isolated_assets / "mediapipe_landmark_embedding.npz")
    layouts.write_py2_pickle(isolated_assets / "FLAME_masks.pkl", layouts.masks())
    marker = isolated_assets / "pwned"
    (isolated_assets / "flame2023.pkl").write_bytes(f"cos\nsystem\n(Vtouch {marker}\ntR.".encode())
    doctor.run(doctor.DoctorCommand())
    out = capsys.readouterr().out
    assert "valid (flame2020, 5023 vertices; generic_model.pkl is the FLAME 2020 release" in out
    assert "valid (105 landmarks)" in out
    assert "valid (14 regions)" in out
    assert "INVALID: refusing to load" in out and "os.system" in out
    assert not marker.exists()
