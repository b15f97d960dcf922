"""Short English speech samples for the demo and the viewer (committed, regenerated here).

python scripts/make_sample_speech.py            # writes splattalk/data/speech/sample_en_{1,2,3}.wav
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

from splattalk.assets import data_path
from splattalk.talk.config import SAMPLE_RATE
from splattalk.talk.corpus.layout import write_wav
from splattalk.talk.corpus.tts import Voice, synthesize

SAMPLES = (
    (
        "sample_en_1.wav",
        Voice("flite", "slt"),
        "Hello! I am a talking head, made from a short phone video. Every move you see comes from my voice.",
    ),
    (
        "sample_en_2.wav",
        Voice("flite", "awb", rate=0.95),
        "Bring me the blue map, please. We will meet by the old bridge at five o'clock.",
    ),
    (
        "sample_en_3.wav",
        Voice("espeak-ng", "en-gb-x-rp+m3", rate=0.9),
        "Speech moves my jaw and lips, while pitch and loudness move my head.",
    ),
)


@dataclass(frozen=True)
class SampleConfig:
    out: Path = data_path("speech")
    """Folder for the wav files (16 kHz mono PCM16)."""


def _trim(audio: np.ndarray, pad: float = 0.25) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) > 0.01 * np.abs(audio).max())
    audio = audio[loud[0] : loud[-1] + 1]
    silence = np.zeros(int(pad * SAMPLE_RATE), np.float32)
    return np.concatenate([silence, audio / np.abs(audio).max() * 0.7, silence])


def main() -> None:
    cfg = tyro.cli(SampleConfig)
    for name, voice, text in SAMPLES:
        audio, _ = synthesize(text, voice)
        audio = _trim(audio)
        write_wav(cfg.out / name, audio)
        print(f"{cfg.out / name}: {len(audio) / SAMPLE_RATE:.1f} s, {voice.speaker}: {text}")


if __name__ == "__main__":
    main()
