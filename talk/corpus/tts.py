"""Offline text-to-speech with phone timings: espeak-ng (through its C library) and flite.

Both engines report the phones they synthesised and when: espeak-ng through its
phoneme events (``espeakINITIALIZE_PHONEME_EVENTS``), flite through its segment
stream (``-psdur``). mbrola voices are not packaged in Debian main, so espeak-ng's
own formant voices are the variety we have.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import shutil
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splattalk.errors import SplattalkError
from splattalk.talk.audio import resample
from splattalk.talk.config import SAMPLE_RATE
from splattalk.talk.corpus.layout import read_wav
from splattalk.talk.corpus.phones import Segmentation, espeak_to_arpabet, flite_to_arpabet, normalize, split_multi

ESPEAK_VOICES = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
"""espeak-ng English voices (accents)."""
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt3")
"""espeak-ng voice variants (speaker timbre), appended as ``voice+variant``."""
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
"""flite voices shipped in Debian's flite package (``awb_time`` is a clock-only voice, left out)."""


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker configuration."""

    engine: str
    """``espeak-ng`` or ``flite``."""
    name: str
    """espeak-ng ``voice+variant`` or a flite voice."""
    rate: float = 1.0
    """Speaking-rate factor (1 = the engine's default)."""
    pitch: float = 1.0
    """Pitch factor (1 = the voice's default)."""

    @property
    def speaker(self) -> str:
        return f"{self.engine}:{self.name}"


def synthesize(text: str, voice: Voice) -> tuple[np.ndarray, Segmentation]:
    """Speak ``text``; returns (audio [N] float32 at 16 kHz, its phone segmentation)."""
    if voice.engine == "espeak-ng":
        return _espeak(text, voice)
    if voice.engine == "flite":
        return _flite(text, voice)
    raise ValueError(f"unknown TTS engine {voice.engine!r}")


# ----------------------------------------------------------------------------- espeak-ng


class _IdUnion(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):  # espeak_EVENT in speak_lib.h
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _IdUnion),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_EV_END_OF_LIST, _EV_PHONEME = 0, 7
_AUDIO_OUTPUT_SYNCHRONOUS, _INIT_PHONEME_EVENTS, _CHARS_UTF8, _POS_CHARACTER = 2, 1, 1, 1
_RATE, _PITCH, _RANGE = 1, 3, 4


class _Espeak:
    """The process-wide espeak-ng library (it keeps global state, so one instance)."""

    def __init__(self) -> None:
        try:
            self.lib = ctypes.CDLL("libespeak-ng.so.1")
        except OSError as exc:
            raise SplattalkError(
                "espeak-ng's library (libespeak-ng.so.1) is missing; install it: `apt-get install espeak-ng`."
            ) from exc
        self.libc = ctypes.CDLL(None)
        self.libc.srand.argtypes = [ctypes.c_uint]
        self.chunks: list[np.ndarray] = []
        self.events: list[tuple[int, str]] = []
        self._cb = _CALLBACK(self._on_synth)
        self.rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INIT_PHONEME_EVENTS)
        if self.rate <= 0:
            raise SplattalkError("espeak-ng failed to initialise; check `espeak-ng --version` works.")
        self.lib.espeak_SetSynthCallback(self._cb)

    def _on_synth(self, wav, n, events) -> int:
        if n > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while events[i].type != _EV_END_OF_LIST:
            ev = events[i]
            if ev.type == _EV_PHONEME:
                self.events.append((ev.sample, ev.id.string.decode("ascii", "replace")))
            i += 1
        return 0

    def speak(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int) -> tuple[np.ndarray, list]:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise SplattalkError(f"espeak-ng has no voice {voice!r}; list them with `espeak-ng --voices=en`.")
        self.lib.espeak_SetParameter(_RATE, rate, 0)
        self.lib.espeak_SetParameter(_PITCH, pitch, 0)
        self.lib.espeak_SetParameter(_RANGE, pitch_range, 0)
        self.chunks, self.events = [], []
        data = text.encode("utf-8") + b"\0"
        # espeak-ng's noise sources use libc's rand(): seed it from the request so the same
        # text and voice always give the same samples, whatever was spoken before.
        self.libc.srand(zlib.crc32(data + voice.encode() + bytes([rate % 256, pitch, pitch_range])))
        self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        audio = np.concatenate(self.chunks).astype(np.float32) / 32768.0 if self.chunks else np.zeros(0, np.float32)
        return audio, list(self.events)


_ESPEAK: _Espeak | None = None


def _espeak(text: str, voice: Voice) -> tuple[np.ndarray, Segmentation]:
    global _ESPEAK
    if _ESPEAK is None:
        _ESPEAK = _Espeak()
    rate = int(round(175 * voice.rate))
    pitch = int(np.clip(round(50 * voice.pitch), 0, 99))
    audio, events = _isolated(_ESPEAK.speak, text, voice.name, rate, pitch, int(np.clip(50 * voice.pitch, 20, 90)))
    duration = len(audio) / _ESPEAK.rate
    phones, starts = [], []
    for sample, mnemonic in events:
        mapped = espeak_to_arpabet(mnemonic)
        if mapped:
            phones.append(mapped)
            starts.append(sample / _ESPEAK.rate)
    ends = [*starts[1:], duration]
    seg = split_multi(phones, starts, ends)
    return resample(audio, _ESPEAK.rate, SAMPLE_RATE), normalize(seg, len(audio) / _ESPEAK.rate)


def _isolated(fn, *args):
    """Run ``fn(*args)`` in a forked child and return its result.

    espeak-ng carries state from one utterance to the next (its pitch-flutter phase,
    filter memories), so the same request gives slightly different audio depending on
    what was said before. A child forked from a process that never spoke starts from
    the same state every time, which makes the corpus reproducible in any order.
    """
    if not hasattr(os, "fork"):
        return fn(*args)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(read_fd)
            try:
                payload = pickle.dumps((True, fn(*args)))
            except BaseException as exc:  # sent back to the parent, raised there
                payload = pickle.dumps((False, exc))
            with os.fdopen(write_fd, "wb") as f:
                f.write(payload)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    if not data:
        raise SplattalkError("the espeak-ng synthesis process died; check `espeak-ng --version` works.")
    ok, value = pickle.loads(data)
    if not ok:
        raise value
    return value


# ----------------------------------------------------------------------------- flite


def _flite(text: str, voice: Voice) -> tuple[np.ndarray, Segmentation]:
    exe = shutil.which("flite")
    if exe is None:
        raise SplattalkError("flite is not installed; install it: `apt-get install flite`.")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        cmd = [exe, "-voice", voice.name, "--setf", f"duration_stretch={1.0 / voice.rate:.3f}"]
        if voice.pitch != 1.0:
            cmd += ["--setf", f"int_f0_target_mean={110 * voice.pitch:.1f}"]
        cmd += ["-psdur", "-t", " " + text.replace("\n", " ") + " ", "-o", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0 or not out.is_file():
            raise SplattalkError(f"flite failed on {text!r} with voice {voice.name}: {proc.stderr.strip()}")
        audio = read_wav(out, SAMPLE_RATE)
    labels, ends = [], []
    for item in proc.stdout.split():
        name, _, end = item.rpartition(":")
        try:
            ends.append(float(end))
        except ValueError:
            continue
        labels.append(flite_to_arpabet(name))
    starts = [0.0, *ends[:-1]]
    duration = len(audio) / SAMPLE_RATE
    return audio, normalize(Segmentation(labels, np.array(starts), np.array(ends)), duration)
