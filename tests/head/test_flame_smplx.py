"""FLAME files as smplx users keep them (models/flame/FLAME_{GENDER}.pkl), with and without ``J``."""

from __future__ import annotations

import flame_layouts as layouts
import numpy as np
import pytest
import torch

from splattalk.errors import SplattalkError
from splattalk.head import flame


@pytest.fixture(scope="module")
def arrays():
    return layouts.flame_arrays(seed=3)


def smplx_folder(root, arrays, with_j=True):
    """smplx's layout: <models>/flame/FLAME_NEUTRAL.pkl, FLAME_MALE.pkl, FLAME_FEMALE.pkl (FLAME 2020 renamed)."""
    folder = root / "flame"
    folder.mkdir(parents=True, exist_ok=True)
    data = dict(arrays) if with_j else {k: v for k, v in arrays.items() if k != "J"}
    for gender in ("NEUTRAL", "MALE", "FEMALE"):
        layouts.write_flame(folder / f"FLAME_{gender}.pkl", data)
    return folder


@pytest.mark.parametrize("with_j", [True, False])
def test_smplx_names_load_as_flame2020(tmp_path, arrays, with_j):
    folder = smplx_folder(tmp_path, arrays, with_j)
    for gender in ("NEUTRAL", "MALE", "FEMALE"):
        path = folder / f"FLAME_{gender}.pkl"
        assert ("J" in flame.read_flame_arrays(path)) == with_j
        model = flame.load_flame(path)
        assert model.model_id == "flame2020"
    assert "smplx's name for FLAME 2020" in flame.release_reason(folder / "FLAME_NEUTRAL.pkl")


def test_joints_without_j_match_the_stored_j(tmp_path, arrays):
    """Peers (smplx, VHAP, GaussianAvatars) regress joints from J_regressor; the file's J must agree with that."""
    with_j = flame.load_flame(smplx_folder(tmp_path / "a", arrays, True) / "FLAME_NEUTRAL.pkl")
    without = flame.load_flame(smplx_folder(tmp_path / "b", arrays, False) / "FLAME_NEUTRAL.pkl")
    rest = without(shape=torch.zeros(1, 300), expr=torch.zeros(1, 100))
    np.testing.assert_allclose(rest.joints[0].numpy(), arrays["J"], rtol=1e-5, atol=1e-6)
    gen = torch.Generator().manual_seed(0)
    params = {
        "shape": torch.randn(2, 300, generator=gen),
        "expr": torch.randn(2, 100, generator=gen),
        "jaw": 0.2 * torch.randn(2, 3, generator=gen),
        "rotation": 0.1 * torch.randn(2, 3, generator=gen),
    }
    a, b = with_j(**params), without(**params)
    assert torch.equal(a.joints, b.joints) and torch.equal(a.vertices, b.vertices)


def test_wrong_shaped_j_is_still_refused(tmp_path, arrays):
    path = smplx_folder(tmp_path, dict(arrays, J=np.zeros((4, 3))))
    with pytest.raises(SplattalkError, match=r"'J' has shape \[4, 3\]"):
        flame.load_flame(path / "FLAME_NEUTRAL.pkl")


def test_smplx_name_in_a_flame2023_folder_or_symlinked_is_2023(tmp_path, arrays):
    (tmp_path / "FLAME2023").mkdir()
    path = layouts.write_flame(tmp_path / "FLAME2023" / "FLAME_NEUTRAL.pkl", arrays, "2023")
    assert flame.load_flame(path).model_id == "flame2023"
    link = tmp_path / "flame" / "FLAME_NEUTRAL.pkl"
    link.parent.mkdir()
    link.symlink_to(path.parent / "flame2023.pkl")
    (path.parent / "flame2023.pkl").write_bytes(path.read_bytes())
    assert flame.detect_flame_version(link) == "flame2023"
    assert (
        flame.load_flame(smplx_folder(tmp_path / "x", arrays) / "FLAME_NEUTRAL.pkl", version="flame2023").model_id
        == "flame2023"
    )


def test_unknown_name_lists_every_way_to_say_the_release(tmp_path, arrays):
    path = layouts.write_flame(tmp_path / "head.pkl", arrays)
    with pytest.raises(SplattalkError, match="FLAME_NEUTRAL.pkl counts as 2020.*FLAME2020 or FLAME2023.*version="):
        flame.load_flame(path)


def test_smplx_landmark_files_are_named(tmp_path):
    """smplx's flame_static_embedding.pkl is a 68-point embedding, not a model."""
    rng = np.random.default_rng(0)
    path = layouts.write_py2_pickle(
        tmp_path / "flame_static_embedding.pkl",
        {"lmk_face_idx": rng.integers(0, 9976, 51), "lmk_b_coords": rng.random((51, 3))},
    )
    with pytest.raises(SplattalkError, match="landmark embedding"):
        flame.load_flame(path)


def test_doctor_reports_a_smplx_folder(tmp_path, arrays, monkeypatch, capsys):
    from splattalk import doctor

    models = tmp_path / "models"
    folder = smplx_folder(models, arrays, with_j=False)
    layouts.write_vhap_embedding(folder / "landmark_embedding_with_eyes.npy")
    layouts.write_py2_pickle(folder / "flame_static_embedding.pkl", {"lmk_face_idx": np.zeros(51, np.int64)})
    monkeypatch.setenv("SPLATTALK_ASSETS", str(models))
    doctor.run(doctor.DoctorCommand())
    out = capsys.readouterr().out
    assert f"{folder / 'FLAME_NEUTRAL.pkl'}  valid (flame2020, 5023 vertices; FLAME_NEUTRAL.pkl is smplx's name" in out
    assert "valid (VHAP/GaussianAvatars, 70 points" in out
    assert "flame_static_embedding.pkl" in out and "smplx's 68-point embedding" in out
    line = next(x for x in out.splitlines() if "mediapipe_landmark_embedding.npz" in x)
    assert "[--]" in line and "metrical-tracker" in line
