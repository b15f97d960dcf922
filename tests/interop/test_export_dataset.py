"""`splattalk export-dataset` read back the way GaussianAvatars, VHAP and nerfstudio read their datasets.

The replays follow the peers' documented readers (no code copied): GaussianAvatars' scene loader takes the
dynamic path when ``canonical_flame_param.npz`` exists, reads ``transforms_{train,val,test}.json``, appends
``.png`` to a ``file_path`` that lacks it, opens the image as RGBA and takes alpha as the foreground, flips the
OpenGL ``transform_matrix`` to OpenCV axes and inverts it, and builds its FLAME parameter table from the
``flame_param_path`` files of the train and test splits (timestep 0's shape [300] and static_offset, expr sized
by its second axis, padded static_offset on axis 1). VHAP's ``NeRFDataset`` needs ``timestep_indices`` to be
0..T-1 and reads ``file_path`` / ``fg_mask_path`` relative to the folder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from run_folders import make_run

from splattalk.errors import SplattalkError
from splattalk.run import Tracks
from splattalk.tracking.export_dataset import export_dataset


@pytest.fixture(scope="module")
def flame_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("run") / "run", num_expr=50, seed=1)


@pytest.fixture(scope="module")
def ga_folder(flame_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("ga") / "dataset"
    export_dataset(flame_run, out, "gaussian-avatars", progress=False)
    return out


def ga_cameras(path: Path, transforms: str, extension=".png"):
    contents = json.loads((path / transforms).read_text())
    cams = []
    for frame in contents["frames"]:
        file_path = frame["file_path"]
        if extension not in file_path:
            file_path += extension
        image_path = path / file_path
        c2w = np.array(frame["transform_matrix"])
        c2w[:3, 1:3] *= -1
        w2c = np.linalg.inv(c2w)
        fovx = frame.get("camera_angle_x", contents.get("camera_angle_x"))
        width, height = frame["w"], frame["h"]
        fovy = 2 * math.atan(height / (2 * (width / (2 * math.tan(fovx / 2)))))
        cams.append(
            {
                "image_path": image_path,
                "w2c": w2c,
                "R": w2c[:3, :3].T,
                "T": w2c[:3, 3],
                "fovx": fovx,
                "fovy": fovy,
                "timestep": frame.get("timestep_index"),
                "camera_id": frame["camera_index"],
            }
        )
    return cams


def ga_meshes(path: Path, transforms: str):
    contents = json.loads((path / transforms).read_text())
    meshes = {}
    for frame in contents["frames"]:
        if "timestep_index" not in frame or frame["timestep_index"] in meshes:
            continue
        meshes[frame["timestep_index"]] = dict(np.load(path / frame["flame_param_path"], allow_pickle=True))
    return meshes


def test_gaussian_avatars_takes_the_dynamic_path(ga_folder):
    with np.load(ga_folder / "canonical_flame_param.npz") as canonical:
        assert canonical["jaw_pose"].tolist() == [[0.30000001192092896, 0.0, 0.0]]  # VHAP's open-mouth canonical pose
        assert (
            canonical["shape"].shape == (300,) and canonical["expr"].shape == (1, 100) and not canonical["expr"].any()
        )
    for name in ("transforms.json", "transforms_train.json", "transforms_val.json", "transforms_test.json"):
        assert (ga_folder / name).is_file(), name


def test_gaussian_avatars_cameras_and_images(ga_folder, flame_run):
    tracks = Tracks.load(flame_run / "tracking" / "tracks.npz").to_arrays()
    seen = []
    for split in ("train", "val", "test"):
        for cam in ga_cameras(ga_folder, f"transforms_{split}.json"):
            assert cam["image_path"].is_file()
            np.testing.assert_allclose(cam["w2c"], tracks["viewmat"], atol=1e-6)
            assert math.isclose(cam["fovx"], 2 * math.atan(40 / (2 * 55.0)), rel_tol=1e-9)
            rgba = np.array(Image.open(cam["image_path"]).convert("RGBA"))
            t = cam["timestep"]
            mask = cv2.imread(str(flame_run / "masks" / f"{t:06d}.png"), cv2.IMREAD_GRAYSCALE)
            frame = cv2.imread(str(flame_run / "frames" / f"{t:06d}.jpg"))[:, :, ::-1]
            assert np.array_equal(rgba[:, :, 3], mask) and np.array_equal(rgba[:, :, :3], frame)
            seen.append(t)
    assert sorted(seen) == list(range(7))
    train = json.loads((ga_folder / "transforms_train.json").read_text())
    assert [f["timestep_index"] for f in train["frames"]] == [0, 1, 2, 3, 4]  # ceil(0.7 * 7), VHAP's split


def test_gaussian_avatars_parameter_table(ga_folder, flame_run):
    tracks = Tracks.load(flame_run / "tracking" / "tracks.npz").to_arrays()
    meshes = {**ga_meshes(ga_folder, "transforms_train.json"), **ga_meshes(ga_folder, "transforms_test.json")}
    num_timesteps = max(meshes) + 1
    num_verts = 5023 + 120  # GaussianAvatars' FLAME adds teeth vertices and pads static_offset on axis 1
    static = torch.from_numpy(meshes[0]["static_offset"])
    static = torch.nn.functional.pad(static, (0, 0, 0, num_verts - meshes[0]["static_offset"].shape[1]))
    assert static.shape == (1, num_verts, 3)
    assert meshes[0]["shape"].shape == (300,)
    expr = torch.zeros([num_timesteps, meshes[0]["expr"].shape[1]])
    table = {
        k: torch.zeros([num_timesteps, n])
        for k, n in (("rotation", 3), ("neck_pose", 3), ("jaw_pose", 3), ("eyes_pose", 6), ("translation", 3))
    }
    for i, mesh in meshes.items():
        expr[i] = torch.from_numpy(mesh["expr"])
        for key, column in table.items():
            column[i] = torch.from_numpy(mesh[key])
    assert expr.shape == (7, 100)
    np.testing.assert_array_equal(expr[:, :50].numpy(), tracks["expr"])
    assert not expr[:, 50:].any()
    np.testing.assert_array_equal(table["jaw_pose"].numpy(), tracks["jaw"])
    np.testing.assert_array_equal(table["eyes_pose"].numpy(), tracks["eyes"])
    np.testing.assert_array_equal(meshes[0]["shape"], tracks["shape"])
    np.testing.assert_array_equal(meshes[0]["static_offset"][0], tracks["static_offset"])


def test_vhap_reads_its_layout(flame_run, tmp_path):
    out = tmp_path / "vhap"
    export_dataset(flame_run, out, "vhap", progress=False)
    for division in (None, "train", "val", "test"):
        db = json.loads((out / ("transforms.json" if division is None else f"transforms_{division}.json")).read_text())
        if division != "test":  # VHAP's own split gives test the later timesteps, so it opens only these this way
            assert len(db["timestep_indices"]) == max(db["timestep_indices"]) + 1
        for frame in db["frames"]:
            image = np.array(Image.open(out / frame["file_path"]))
            fg = np.array(Image.open(out / frame["fg_mask_path"]))
            assert image.shape == (40, 40, 3) and fg.shape == (40, 40)
            params = dict(np.load(out / frame["flame_param_path"], allow_pickle=True))
            assert params["expr"].shape == (1, 100) and params["rotation"].shape == (1, 3)
            t = frame["timestep_index"]
            rgb = cv2.imread(str(flame_run / "frames" / f"{t:06d}.jpg"))[:, :, ::-1].astype(np.float64)
            a = fg[:, :, None] / 255.0
            assert np.abs(image - (rgb * a + 255 * (1 - a))).max() <= 0.5 + 1e-9  # on white, as VHAP's export
    assert len(json.loads((out / "transforms_val.json").read_text())["frames"]) == 0


def test_nerfstudio_works_with_the_default_head(tmp_path):
    run = make_run(tmp_path / "run", head_model="default-head-v1", num_shape=16, num_expr=26, num_vertices=900)
    out = tmp_path / "ns"
    export_dataset(run, out, "nerfstudio", progress=False)
    db = json.loads((out / "transforms.json").read_text())
    tracks = Tracks.load(run / "tracking" / "tracks.npz").to_arrays()
    assert {"fl_x", "fl_y", "cx", "cy", "w", "h"} <= set(db)
    for frame in db["frames"]:
        assert (out / frame["file_path"]).is_file() and (out / frame["mask_path"]).is_file()
        assert "flame_param_path" not in frame
        c2w = np.array(frame["transform_matrix"])
        c2w[:3, 1:3] *= -1
        np.testing.assert_allclose(np.linalg.inv(c2w), tracks["viewmat"], atol=1e-6)


@pytest.mark.parametrize("fmt", ["gaussian-avatars", "vhap"])
def test_default_head_is_refused_with_a_reason(tmp_path, fmt):
    run = make_run(tmp_path / "run", head_model="default-head-v1", num_shape=16, num_expr=26, num_vertices=900)
    with pytest.raises(SplattalkError, match="16 shape / 26 expression.*cannot take.*--head flame2023.*nerfstudio"):
        export_dataset(run, tmp_path / "out", fmt, progress=False)
    assert not (tmp_path / "out").exists()


def test_errors(tmp_path, flame_run):
    with pytest.raises(SplattalkError, match="run `splattalk track"):
        export_dataset(tmp_path / "nothing", tmp_path / "o", progress=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(SplattalkError, match="already holds files.*--overwrite"):
        export_dataset(flame_run, tmp_path / "full", progress=False)
    no_masks = make_run(tmp_path / "nomask", masks=False)
    with pytest.raises(SplattalkError, match="alpha"):
        export_dataset(no_masks, tmp_path / "o2", progress=False)
    with pytest.raises(SplattalkError, match="train-ratio"):
        export_dataset(flame_run, tmp_path / "o3", train_ratio=0, progress=False)


def test_cli(tmp_path, flame_run, capsys):
    from splattalk.cli import main

    with pytest.raises(SystemExit) as done:
        main(["export-dataset", str(flame_run), "--out", str(tmp_path / "d"), "--format", "vhap"])
    assert done.value.code == 0
    assert "wrote 7 frames (5 train / 2 test) as vhap" in capsys.readouterr().out
    run = make_run(tmp_path / "run", head_model="default-head-v1", num_shape=16, num_expr=26, num_vertices=900)
    with pytest.raises(SystemExit) as done:
        main(["export-dataset", str(run), "--out", str(tmp_path / "e")])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "splattalk: error: --format gaussian-avatars needs FLAME parameters" in err and "Traceback" not in err
