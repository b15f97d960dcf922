"""The run folder's owner: RunLayout paths and tracks.npz (Tracks) round trips, versions and errors."""

from __future__ import annotations

import numpy as np
import pytest

from splattalk.errors import SplattalkError
from splattalk.head.params import HeadParams
from splattalk.run import PER_FRAME, TRACKS_FORMAT, RunLayout, Tracks


def make_tracks(num: int = 7, expr: int = 5, seed: int = 0) -> Tracks:
    rng = np.random.default_rng(seed)
    f = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    return Tracks(
        expr=f(num, expr),
        jaw=f(num, 3),
        neck=f(num, 3),
        rot=f(num, 3),
        transl=f(num, 3),
        eyes=f(num, 6),
        shape=f(16),
        K=np.array([[500, 0, 128], [0, 500, 128], [0, 0, 1]], np.float32),
        viewmat=np.eye(4, dtype=np.float32),
        width=256,
        height=256,
        fps=25.0,
        head_model="default-head-v1",
        static_offset=f(11, 3),
        valid=rng.random(num) > 0.2,
        residual_px=f(num),
        key="abc123",
        crop=np.array([1.0, 2.0, 300.0]),
        source_rotation=90,
    )


def test_round_trip_keeps_every_array_and_writes_the_version(tmp_path):
    tracks = make_tracks()
    path = RunLayout(tmp_path).tracks
    tracks.save(path)
    with np.load(path) as data:
        assert int(data["format_version"]) == TRACKS_FORMAT
        assert data["expr"].dtype == np.float32 and data["width"].dtype == np.int32
    back = Tracks.load(path)
    assert len(back) == 7 and back.head_model == "default-head-v1" and back.key == "abc123"
    assert (back.width, back.height, back.fps, back.source_rotation) == (256, 256, 25.0, 90)
    for name in (*PER_FRAME, "shape", "K", "viewmat", "static_offset", "valid", "residual_px", "crop"):
        np.testing.assert_array_equal(getattr(back, name), getattr(tracks, name), err_msg=name)
    assert back.interpolated is None and back.landmarks2d is None  # absent optional arrays stay absent
    params = HeadParams(**back.per_frame())
    np.testing.assert_array_equal(params.eyes, tracks.eyes)


def test_files_without_a_version_load_and_unknown_arrays_survive(tmp_path):
    tracks = make_tracks()
    arrays = tracks.to_arrays()
    del arrays["format_version"]  # what trackers before the version wrote
    arrays["future_thing"] = np.arange(3)
    path = tmp_path / "old.npz"
    np.savez(path, **arrays)
    back = Tracks.load(path)
    np.testing.assert_array_equal(back.rot, tracks.rot)
    np.testing.assert_array_equal(back.extra["future_thing"], np.arange(3))
    back.save(tmp_path / "again.npz")
    with np.load(tmp_path / "again.npz") as data:
        assert "future_thing" in data.files and int(data["format_version"]) == TRACKS_FORMAT


def test_newer_format_is_refused_by_name(tmp_path):
    arrays = make_tracks().to_arrays()
    arrays["format_version"] = np.int32(TRACKS_FORMAT + 1)
    path = tmp_path / "tracks.npz"
    np.savez(path, **arrays)
    with pytest.raises(SplattalkError, match=f"{path}.*newer"):
        Tracks.load(path)


def test_missing_keys_name_the_file_and_the_keys(tmp_path):
    path = tmp_path / "tracking" / "tracks.npz"
    path.parent.mkdir()
    np.savez(path, motion=np.zeros((4, 32)), fps=np.int32(25))  # a motion file, not tracks
    with pytest.raises(SplattalkError) as err:
        Tracks.load(path)
    message = str(err.value)
    assert str(path) in message and "expr" in message and "viewmat" in message and "splattalk track" in message


def test_wrong_shapes_are_reported(tmp_path):
    arrays = make_tracks().to_arrays()
    arrays["jaw"] = arrays["jaw"][:-1]  # one frame short
    arrays["K"] = np.eye(4)
    path = tmp_path / "tracks.npz"
    np.savez(path, **arrays)
    with pytest.raises(SplattalkError, match=r"jaw has shape \(6, 3\), expected \[7, 3\].*K has shape"):
        Tracks.load(path)
    with pytest.raises(SplattalkError, match="eyes has shape"):
        make_tracks().replace(eyes=np.zeros((7, 3), np.float32)).save(tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()  # nothing written for invalid tracks


def test_corrupt_and_missing_files_are_clear_errors(tmp_path):
    path = tmp_path / "tracks.npz"
    make_tracks().save(path)
    path.write_bytes(path.read_bytes()[:200])  # a truncated write
    with pytest.raises(SplattalkError, match=f"cannot read {path}"):
        Tracks.load(path)
    path.write_bytes(b"not a zip at all")
    with pytest.raises(SplattalkError, match=f"cannot read {path}"):
        Tracks.load(path)
    run = tmp_path / "run"
    with pytest.raises(SplattalkError, match=rf"no tracks at .*run/tracking/tracks.npz.*--run {run}"):
        Tracks.load(RunLayout(run).tracks)


def test_run_layout_paths():
    layout = RunLayout("runs/me")
    assert layout.tracks.as_posix() == "runs/me/tracking/tracks.npz"
    assert layout.transforms.as_posix() == "runs/me/tracking/transforms.json"
    assert layout.frame(12).as_posix() == "runs/me/frames/000012.jpg"
    assert layout.mask(3).as_posix() == "runs/me/masks/000003.png"
    assert layout.frame_params_dir.as_posix() == "runs/me/tracking/flame_param"
    assert layout.avatar.as_posix() == "runs/me/avatar/avatar.safetensors"
    assert layout.motion("hello").as_posix() == "runs/me/talk/hello.npz"
    assert layout.export("demo").as_posix() == "runs/me/exports/demo.mp4"
    assert RunLayout.of_avatar("runs/me/avatar/avatar.safetensors") == layout
    assert RunLayout.of_avatar("runs/me") == layout
