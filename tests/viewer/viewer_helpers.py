"""Shared bits of the viewer tests: small avatars, a recording view, speech-like audio."""

from __future__ import annotations

import io
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from splattalk.avatar.painted import build_default_avatar

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
"""Headless Chromium as the browser tests run it: software WebGL (SwiftShader), nothing fetched from outside."""
AUTOPLAY_ARGS = ["--autoplay-policy=no-user-gesture-required"]
FAKE_MEDIA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
"""Grant getUserMedia without a prompt and capture from Chromium's fake devices (or the files named by
``--use-file-for-fake-audio-capture`` / ``--use-file-for-fake-video-capture``)."""
"""Debian's chromium, which the browser tests drive (skipped where it is absent)."""


@lru_cache(maxsize=4)
def small_avatar(num: int = 3000):
    """The default avatar's recipe (:func:`splattalk.avatar.painted.build_default_avatar`) with fewer Gaussians."""
    return build_default_avatar(num)


def speech_like(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Syllable-like bursts (voiced 150 Hz harmonics under a 4 Hz envelope) with pauses: loudness varies like speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    voice = sum(np.sin(2 * np.pi * 150 * k * t + rng.uniform(0, 6)) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2 * (np.sin(2 * np.pi * 0.4 * t) > -0.3)
    return (0.25 * voice * envelope).astype(np.float32)


def wav_bytes(audio: np.ndarray, rate: int = 16000) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, audio, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


class RecordingView:
    """A session ``View`` that records what the page would show."""

    def __init__(self):
        self.lock = threading.Lock()
        self.frames = 0
        self.last_buffer = None
        self.audio = []
        self.states = []
        self.readouts = []
        self.notes = []
        self.downloads = []

    def show_splats(self, buffer):
        with self.lock:
            self.frames += 1
            self.last_buffer = buffer.copy()

    def set_audio(self, clip_id, data_url, label):
        self.audio.append((clip_id, data_url, label))

    def set_audio_state(self, desired):
        self.states.append(desired)

    def set_readout(self, frame, total, ready, fps, state, lead=0.0):
        self.readouts.append((frame, total, ready, fps, state))

    def notify(self, title, body, level="info"):
        self.notes.append((title, body, level))

    def offer_download(self, filename, content):
        self.downloads.append((filename, content))

    def errors(self) -> list[str]:
        return [f"{t}: {b}" for t, b, level in self.notes if level == "error"]
