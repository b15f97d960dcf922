"""VHAP's / GaussianAvatars' landmark_embedding_with_eyes.npy: read through the restricted unpickler, never run."""

from __future__ import annotations

import pickletools

import flame_layouts as layouts
import numpy as np
import pytest

from splattalk.errors import SplattalkError
from splattalk.head import flame, unpickle


def test_written_file_has_vhaps_layout(tmp_path):
    """Guard the helper: an .npy of one object whose pickle names torch's tensor rebuild, as VHAP's file does."""
    path = tmp_path / "landmark_embedding_with_eyes.npy"
    layouts.write_vhap_embedding(path)
    raw = path.read_bytes()
    assert raw.startswith(b"\x93NUMPY") and b"'descr': '|O'" in raw[:128]
    body = raw[raw.index(b"\n", 10) + 1 :]
    names = {str(arg) for op, arg, _ in pickletools.genops(body) if op.name in ("GLOBAL", "STACK_GLOBAL")}
    assert "torch._utils _rebuild_tensor_v2" in names and "torch.storage _load_from_bytes" in names


def test_reads_the_full_tables(tmp_path):
    path = tmp_path / "landmark_embedding_with_eyes.npy"
    written = layouts.write_vhap_embedding(path, seed=2)
    emb = flame.load_vhap_embedding(path)
    assert emb["lmk_face_ids"].tolist() == written["full_lmk_faces_idx"][0].tolist()
    np.testing.assert_allclose(emb["lmk_bary"], written["full_lmk_bary_coords"][0], rtol=1e-6)
    assert "dynamic_lmk_faces_idx" in emb["keys"].tolist()
    raw = unpickle.load_npy_object(path, "embedding")
    assert isinstance(raw["dynamic_lmk_bary_coords"], unpickle.TorchTensorStub)
    assert raw["dynamic_lmk_bary_coords"].shape == (79, 17, 3)


def test_mediapipe_slot_says_which_file_is_needed(tmp_path):
    path = tmp_path / "landmark_embedding_with_eyes.npy"
    layouts.write_vhap_embedding(path)
    with pytest.raises(SplattalkError, match="needs mediapipe_landmark_embedding.npz.*68 iBUG.*metrical-tracker"):
        flame.load_mediapipe_embedding(path)


def test_bad_tables_are_named(tmp_path):
    path = tmp_path / "e.npy"
    layouts.write_vhap_embedding(path, full_lmk_faces_idx=np.full((1, 70), 99999))
    with pytest.raises(SplattalkError, match="triangle ids in 0..9975"):
        flame.load_vhap_embedding(path)
    np.save(path, {"lmk_face_idx": np.zeros(3)}, allow_pickle=True)
    with pytest.raises(SplattalkError, match="expected VHAP's landmark_embedding_with_eyes.npy"):
        flame.load_vhap_embedding(path)


def test_hostile_npy_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    path = tmp_path / "landmark_embedding_with_eyes.npy"
    np.save(path, {"full_lmk_faces_idx": Evil()}, allow_pickle=True)
    with pytest.raises(SplattalkError, match="refusing to load.*(posix|os).system"):
        flame.load_vhap_embedding(path)
    assert not marker.exists()


def test_plain_npy_is_read_without_pickle(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.arange(6.0).reshape(2, 3))
    assert unpickle.load_npy_object(path, "array").tolist() == [[0, 1, 2], [3, 4, 5]]
