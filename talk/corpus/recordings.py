"""Real human speech that Debian packages ship, found where the packages install it.

| package (Debian main)          | what                                                   | licence      |
|--------------------------------|--------------------------------------------------------|--------------|
| asterisk-core-sounds-en-wav    | ~25 min of IVR prompts, one female speaker (Allison    | CC-BY-SA-3.0 |
| (+ asterisk-core-sounds-en for | Smith), 8 kHz; transcripts in core-sounds-en.txt.gz    |              |
| the transcripts)               |                                                        |              |
| codec2-examples                | ~40 s of test speech, several male/female speakers,    | LGPL-2.1     |
|                                | mostly 8 kHz, no transcripts                           |              |
| alsa-utils                     | "Front left" … channel-test phrases, one speaker       | GPL-2        |

The asterisk prompts are joined into multi-prompt utterances with natural pauses
(and labelled by forced alignment of their transcripts); codec2 and alsa clips
are kept whole. None of it is copied into the repository.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

ASTERISK_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ASTERISK_TEXTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
CODEC2_DIR = Path("/usr/share/codec2")
ALSA_DIR = Path("/usr/share/sounds/alsa")

# codec2 test files that are clean speech; david4 and vk2tpm_004 are modem signals, mmt1
# is speech buried in noise, the others are tones or concatenations.
CODEC2_SPEECH = (
    "wav/big_dog.wav",
    "wav/cross.wav",
    "wav/f2400.wav",
    "wav/forig.wav",
    "wav/hts1a.wav",
    "wav/hts2a.wav",
    "wav/m2400.wav",
    "wav/morig.wav",
    "wav/vk5qi.wav",
    "raw/speech_orig_16k.wav",
)

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


@dataclass(frozen=True)
class Recording:
    """One real speech file and what is known about it."""

    path: Path
    speaker: str
    """e.g. ``asterisk:allison``, ``codec2:hts1a``."""
    text: str
    """Transcript, empty when unknown."""


def number_words(n: int) -> str:
    """English words for 0 ≤ n < 1000 (transcripts say "press 1")."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    rest = n % 100
    return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_words(rest))


def speakable(text: str) -> str:
    """Transcript text with digits spelled out and markup removed."""
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\d+", lambda m: number_words(int(m.group())) if int(m.group()) < 1000 else " ", text)
    return re.sub(r"\s+", " ", text).strip()


def asterisk_prompts() -> list[Recording]:
    """The asterisk English prompts that have a speech transcript (empty when not installed)."""
    if not ASTERISK_DIR.is_dir() or not ASTERISK_TEXTS.is_file():
        return []
    out = []
    for line in gzip.open(ASTERISK_TEXTS, "rt", encoding="utf-8", errors="replace"):
        name, sep, text = line.partition(":")
        if not sep or line.startswith(";"):
            continue
        text = speakable(text)
        path = ASTERISK_DIR / f"{name.strip()}.wav"
        if text and re.search(r"[A-Za-z]", text) and path.is_file():
            out.append(Recording(path, "asterisk:allison", text))
    return out


def codec2_clips() -> list[Recording]:
    """codec2-examples' speech test files (several speakers, no transcripts)."""
    return [
        Recording(CODEC2_DIR / rel, f"codec2:{Path(rel).stem}", "")
        for rel in CODEC2_SPEECH
        if (CODEC2_DIR / rel).is_file()
    ]


def alsa_clips() -> list[Recording]:
    """alsa-utils' spoken channel names; the transcript is the file name."""
    if not ALSA_DIR.is_dir():
        return []
    return [
        Recording(p, "alsa:channels", p.stem.replace("_", " "))
        for p in sorted(ALSA_DIR.glob("*.wav"))
        if p.stem != "Noise"
    ]
