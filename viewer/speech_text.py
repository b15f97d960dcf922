"""Typed text → speech with an offline engine (espeak-ng, else flite), for the viewer's text box.

The engines run as subprocesses with argument lists (never a shell); the text
goes in through stdin (espeak-ng) or a file in the session's private temp
folder (flite), so nothing the user types can become an option or a path.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import unicodedata
from pathlib import Path

import numpy as np

from splattalk.errors import SplattalkError
from splattalk.talk.audio import load_audio

ENGINES = ("espeak-ng", "flite")
TIMEOUT_SECONDS = 60


def find_engine() -> str | None:
    """The first installed engine, or None (then the text box is not offered)."""
    for name in ENGINES:
        if shutil.which(name):
            return name
    return None


def clean_text(text: str, max_chars: int) -> str:
    """Printable text on one line, at most ``max_chars`` characters; raises for empty or too long text."""
    if not isinstance(text, str):
        raise SplattalkError("text to speak must be a string")
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    text = " ".join(text.split())
    if not text:
        raise SplattalkError("nothing to say: type some text first")
    if len(text) > max_chars:
        raise SplattalkError(f"the text is {len(text)} characters long; the limit is {max_chars}. Shorten it.")
    return text


def speak(text: str, workdir: str | Path, max_chars: int = 600, engine: str | None = None) -> np.ndarray:
    """Speech for ``text`` as float32 16 kHz mono ``[S]``; files only inside ``workdir``."""
    text = clean_text(text, max_chars)
    engine = engine or find_engine()
    exe = shutil.which(engine) if engine else None
    if exe is None:
        raise SplattalkError(
            "no text-to-speech engine installed: install espeak-ng or flite (apt-get install espeak-ng)"
        )
    with tempfile.TemporaryDirectory(dir=workdir, prefix="tts-") as tmp:
        wav = Path(tmp) / "speech.wav"
        if Path(exe).name == "flite":
            source = Path(tmp) / "text.txt"
            source.write_text(text, encoding="utf-8")
            cmd, stdin = [exe, "-voice", "slt", "-f", str(source), "-o", str(wav)], None
        else:
            cmd, stdin = [exe, "-v", "en-us", "-w", str(wav), "--stdin"], text
        try:
            proc = subprocess.run(
                cmd, input=stdin, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
            )
        except subprocess.TimeoutExpired:
            raise SplattalkError(f"{engine} took longer than {TIMEOUT_SECONDS} s; try a shorter text") from None
        if proc.returncode != 0 or not wav.is_file():
            raise SplattalkError(f"{engine} failed ({proc.returncode}): {proc.stderr.strip()[:200]}")
        return load_audio(wav, name=f"{engine} speech")
