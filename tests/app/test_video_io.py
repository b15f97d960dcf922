"""mp4 writing: both streams, matching durations."""

import numpy as np

from splattalk.mp4 import probe, write_mp4


def test_mp4_has_h264_and_aac_of_equal_length(tmp_path):
    frames = [np.full((48, 64, 3), (i * 7) % 255, np.uint8) for i in range(38)]
    audio = (0.3 * np.sin(np.arange(16000 * 2) / 16000 * 2 * np.pi * 220)).astype(
        np.float32
    )  # 2 s, longer than the video
    out = tmp_path / "x.mp4"
    assert write_mp4(out, iter(frames), 25, audio, 16000) == 38
    info = probe(out)
    n, video_s, w, h = info["video"]
    audio_s, rate = info["audio"]
    assert (n, w, h, rate) == (38, 64, 48, 16000)
    assert abs(video_s - 38 / 25) < 1e-6
    assert abs(audio_s - video_s) <= 1 / 25


def test_mp4_without_audio(tmp_path):
    out = tmp_path / "y.mp4"
    write_mp4(out, (np.zeros((32, 32, 3), np.uint8) for _ in range(5)), 25)
    assert probe(out)["audio"] is None and probe(out)["video"][0] == 5
