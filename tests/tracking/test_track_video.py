"""Decoding for the tracker: rotation metadata, variable frame rate, image folders, and bad files."""

from __future__ import annotations

import numpy as np
import pytest
from track_media import SAMPLE, ffmpeg, ffmpeg_decode, sample_frames, with_rotation, write_video

from splattalk.errors import SplattalkError
from splattalk.tracking.video import iter_frames, open_source


def frames_of(path, fps=25.0, max_seconds=None):
    return [image for _, image in iter_frames(open_source(path), fps, max_seconds)]


def test_sample_decodes_at_25fps():
    source = open_source(SAMPLE)
    assert (source.kind, source.width, source.height, source.rotation) == ("video", 512, 512, 0)
    frames = frames_of(SAMPLE, max_seconds=1.0)
    assert len(frames) == 25 and frames[0].shape == (512, 512, 3)


@pytest.mark.parametrize("degrees", [90, 270])
def test_rotation_metadata_matches_ffmpeg(tmp_path, degrees):
    # a landscape-stored clip whose display matrix turns it to portrait, as phones record it
    raw = [np.ascontiguousarray(f[:, 64:448]) for f in sample_frames(3)]  # 512 high, 384 wide: not square
    plain = write_video(tmp_path / "plain.mp4", raw)
    rotated = with_rotation(plain, tmp_path / f"rot{degrees}.mp4", degrees)
    source = open_source(rotated)
    assert source.rotation in (90, 270) and (source.width, source.height) == (512, 384)
    ours = frames_of(rotated)
    oracle = ffmpeg_decode(rotated, 3, tmp_path / "oracle")
    assert ours[0].shape == oracle[0].shape == (384, 512, 3)
    for a, b in zip(ours, oracle):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 2.0  # same pixels up to colour conversion


def test_variable_frame_rate_is_resampled_by_timestamps(tmp_path):
    # 12 frames, each a flat grey level that identifies it, at irregular times
    times = [0.0, 0.02, 0.10, 0.13, 0.30, 0.31, 0.32, 0.45, 0.52, 0.60, 0.75, 0.80]
    levels = np.linspace(20, 235, len(times)).round().astype(np.uint8)
    frames = [np.full((64, 64, 3), v, np.uint8) for v in levels]
    path = write_video(tmp_path / "vfr.mp4", frames, times=times)
    out = frames_of(path)
    got = [int(np.abs(levels.astype(int) - f.mean()).argmin()) for f in out]
    # output frame k shows the source frame nearest in time to k / 25 s
    expected = [int(np.abs(np.array(times) - k / 25).argmin()) for k in range(len(out))]
    assert got == expected
    assert abs(len(out) - round((times[-1] + 0.04) * 25)) <= 1


def test_image_folder_and_single_image(tmp_path):
    import cv2

    frames = sample_frames(3)
    folder = tmp_path / "images"
    folder.mkdir()
    for i, f in zip((10, 2, 1), frames):  # natural order: 1, 2, 10
        cv2.imwrite(str(folder / f"img{i}.png"), f[:, :, ::-1])
    source = open_source(folder)
    assert source.kind == "images" and [p.name for p in source.images] == ["img1.png", "img2.png", "img10.png"]
    assert len(frames_of(folder)) == 3
    single = open_source(folder / "img2.png")
    assert single.kind == "image" and len(frames_of(folder / "img2.png")) == 1


def test_missing_file(tmp_path):
    with pytest.raises(SplattalkError, match="not found"):
        open_source(tmp_path / "nope.mp4")


def test_text_file_named_mp4(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("these are my notes, not a video\n" * 20)
    with pytest.raises(SplattalkError, match="cannot read .* as a video"):
        open_source(fake)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_zero_frame_video(tmp_path, suffix):
    import subprocess

    path = tmp_path / f"empty{suffix}"
    subprocess.run(
        [
            ffmpeg(),
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=gray:size=64x64:rate=25",
            "-frames:v",
            "0",
            "-c:v",
            "libx264",
            str(path),
        ],
        check=True,
    )
    with pytest.raises(SplattalkError, match="no video (frames|data)"):
        open_source(path)


def test_audio_only_file(tmp_path):
    import subprocess

    path = tmp_path / "voice.m4a"
    subprocess.run(
        [ffmpeg(), "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=0.5", str(path)],
        check=True,
    )
    with pytest.raises(SplattalkError, match="no video"):
        open_source(path)
