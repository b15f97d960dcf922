"""mp4 export: both streams, the right length, the mouth moves where the motion opens the jaw; clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from splattalk.errors import SplattalkError


@pytest.fixture(scope="module")
def avatar():
    from splattalk.avatar.io import load_avatar
    from splattalk.viewer.server import DEFAULT_AVATAR

    return load_avatar(DEFAULT_AVATAR)


def _jaw_motion(avatar, frames: int) -> np.ndarray:
    """Closed for the first half, open (0.3 rad) for the second."""
    e = avatar.head.num_expr
    motion = np.zeros((frames, e + 6), np.float32)
    motion[frames // 2 :, e + 3] = 0.3
    return motion


def test_export_writes_video_and_audio_and_the_mouth_opens(avatar, tmp_path):
    import av

    from splattalk.export import export_clip
    from splattalk.mp4 import probe

    frames, size = 20, 128
    audio = (0.2 * np.sin(2 * np.pi * 220 * np.arange(frames * 640) / 16000)).astype(np.float32)
    out = tmp_path / "clip.mp4"
    written = export_clip(avatar, _jaw_motion(avatar, frames), out, audio, resolution=size, progress=False)
    assert written == frames
    info = probe(out)
    assert info["video"][0] == frames and info["video"][2:] == (size, size)
    assert info["audio"] is not None and abs(info["audio"][0] - frames / 25) < 0.1
    with av.open(str(out)) as c:
        images = np.stack([f.to_ndarray(format="rgb24").astype(np.float32) for f in c.decode(video=0)])
    assert images[0].std() > 20  # a head, not a blank frame
    closed, opened = images[: frames // 2], images[frames // 2 :]
    still = np.abs(closed[1:] - closed[:-1]).mean()
    jump = np.abs(opened[0] - closed[-1])
    assert still < 1.0 and jump.mean() > 3 * still + 0.2
    rows = np.nonzero(jump.mean(axis=(1, 2)) > 5)[0]
    assert rows.size and size * 0.45 < rows.mean() < size * 0.95  # what changed is in the lower face, not the hair


def test_export_errors(avatar, tmp_path):
    from splattalk.export import export_clip, load_motion

    with pytest.raises(SplattalkError, match="even"):
        export_clip(avatar, _jaw_motion(avatar, 4), tmp_path / "x.mp4", resolution=127, progress=False)
    bad = tmp_path / "motion.npz"
    np.savez(bad, motion=np.zeros((10, 7), np.float32), fps=np.int32(25), head_model=np.str_("flame2020"))
    with pytest.raises(SplattalkError):
        load_motion(bad, avatar.model_id)
    assert not (tmp_path / "x.mp4").exists()


def test_resample_motion_keeps_timing_and_is_the_identity_at_25_fps():
    from splattalk.head.params import resample_motion

    t = (np.arange(50) + 0.5) / 25  # frame centres of 2 s at 25 fps
    motion = np.stack([t, np.sin(t)], 1).astype(np.float32)
    assert resample_motion(motion, 25, 25) is motion
    up = resample_motion(motion, 25, 50)
    assert up.shape == (100, 2) and up.dtype == np.float32
    inside = slice(2, -2)  # the ends are held, not extrapolated
    np.testing.assert_allclose(up[inside, 0], ((np.arange(100) + 0.5) / 50)[inside], atol=1e-6)
    np.testing.assert_allclose(resample_motion(up, 50, 25)[inside], motion[inside], atol=1e-3)  # and back
    assert resample_motion(motion, 25, 30).shape == (60, 2)
