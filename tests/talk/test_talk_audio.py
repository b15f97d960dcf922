"""Audio decoding: formats, rates, channels, and every kind of bad file."""

from __future__ import annotations

import subprocess

import imageio_ffmpeg
import numpy as np
import pytest
import soundfile as sf

from splattalk.errors import SplattalkError
from splattalk.talk.audio import load_audio, resample


def _tone(rate: int, seconds: float = 1.0, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    x = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def _peak_hz(a: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(a * np.hanning(a.shape[0])))
    return float(np.argmax(spectrum) * 16000 / a.shape[0])


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_wav_any_rate_to_16k(tmp_path, rate):
    path = tmp_path / "tone.wav"
    sf.write(path, _tone(rate), rate)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and abs(audio.shape[0] - 16000) <= 1
    assert abs(_peak_hz(audio) - 440.0) < 2.0
    assert abs(np.sqrt(np.mean(audio[1000:-1000] ** 2)) - 0.5 / np.sqrt(2)) < 0.01  # level kept


def test_stereo_is_averaged(tmp_path):
    path = tmp_path / "stereo.flac"
    left, right = _tone(48000, freq=440.0), _tone(48000, freq=440.0) * 0.0
    sf.write(path, np.stack([left, right], axis=1), 48000)
    audio = load_audio(path)
    assert abs(np.abs(audio[2000:-2000]).max() - 0.25) < 0.01


@pytest.mark.parametrize(
    "ext,codec",
    [
        ("mp3", []),
        ("m4a", ["-c:a", "aac"]),
        ("ogg", ["-c:a", "libvorbis"]),
        ("flac", []),
        ("opus", ["-c:a", "libopus"]),
    ],
)
def test_compressed_formats(tmp_path, ext, codec):
    src = tmp_path / "src.wav"
    sf.write(src, _tone(44100, 2.0, channels=2), 44100)
    out = tmp_path / f"speech.{ext}"
    run = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(src), *codec, str(out)],
        capture_output=True,
    )
    assert run.returncode == 0, f"the bundled ffmpeg could not encode {ext}: {run.stderr.decode()[:200]}"
    audio = load_audio(out)
    assert abs(audio.shape[0] - 32000) < 2000  # encoder priming may add a few ms
    assert abs(_peak_hz(audio) - 440.0) < 2.0 and np.isfinite(audio).all()
    assert np.array_equal(load_audio(out.read_bytes(), name=out.name), audio)


def test_corrupt_empty_missing(tmp_path):
    bad = tmp_path / "speech.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 3)
    with pytest.raises(SplattalkError, match="could not decode audio file .*speech.wav.*supported format"):
        load_audio(bad)
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    with pytest.raises(SplattalkError, match="empty"):
        load_audio(empty)
    with pytest.raises(SplattalkError, match="not found"):
        load_audio(tmp_path / "nothing.wav")
    silent = tmp_path / "zero.wav"
    sf.write(silent, np.zeros((0,), np.float32), 16000)
    with pytest.raises(SplattalkError, match="no audio samples"):
        load_audio(silent)


def test_caps(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, _tone(16000, 3.0), 16000)
    with pytest.raises(SplattalkError, match="lasts 3.0 s; the limit is 2 s"):
        load_audio(path, max_seconds=2)
    with pytest.raises(SplattalkError, match="MiB; the limit"):
        load_audio(path, max_bytes=1000)
    assert load_audio(path, max_seconds=5).shape[0] == 48000


def test_resample_preserves_a_tone():
    x = _tone(44100, 1.0, freq=1000.0)
    y = resample(x, 44100)
    assert y.shape[0] == 16000 and abs(_peak_hz(y) - 1000.0) < 2.0
