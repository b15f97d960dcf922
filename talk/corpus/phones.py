"""Phone segmentations: one phone set (ARPAbet), converters from each timing source.

A segmentation is ``(labels [P], start [P], end [P])`` in seconds, contiguous
over the whole clip, with ``"sil"`` for silence. Sources: espeak-ng's phoneme
events (its own mnemonics, mapped here), flite's segment stream (already
ARPAbet-like), and pocketsphinx's offline aligner, which labels any speech —
TTS or a real recording — given a transcript or its own recognition result.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from splattalk.errors import SplattalkError
from splattalk.talk.config import ARPABET, SIL

# espeak-ng's English phoneme mnemonics → ARPAbet. A vowel followed by r-colouring becomes
# two phones (the time is split). Unlisted mnemonics fall back to their first letter(s).
_ESPEAK = {
    "a": ["AE"],
    "a#": ["AH"],
    "aa": ["AE"],
    "A:": ["AA"],
    "A@": ["AA", "R"],
    "A": ["AA"],
    "aI": ["AY"],
    "aI@": ["AY", "ER"],
    "aI2": ["AY"],
    "aI3": ["AY"],
    "aU": ["AW"],
    "aU@": ["AW", "ER"],
    "@": ["AH"],
    "@2": ["AH"],
    "@5": ["AH"],
    "@-": ["AH"],
    "@L": ["AH", "L"],
    "3": ["ER"],
    "3:": ["ER"],
    "e": ["EH"],
    "E": ["EH"],
    "e@": ["EH", "R"],
    "eI": ["EY"],
    "i": ["IY"],
    "i:": ["IY"],
    "i@": ["IH", "R"],
    "i@3": ["IH", "R"],
    "I": ["IH"],
    "I2": ["IH"],
    "I#": ["IH"],
    "IR": ["IH", "R"],
    "0": ["AA"],
    "O": ["AO"],
    "O:": ["AO"],
    "O2": ["AO"],
    "O@": ["AO", "R"],
    "o@": ["AO", "R"],
    "oU": ["OW"],
    "oU#": ["OW"],
    "o": ["OW"],
    "OI": ["OY"],
    "u:": ["UW"],
    "u": ["UW"],
    "U": ["UH"],
    "U@": ["UH", "R"],
    "V": ["AH"],
    "VR": ["ER"],
    "p": ["P"],
    "b": ["B"],
    "t": ["T"],
    "d": ["D"],
    "k": ["K"],
    "g": ["G"],
    "f": ["F"],
    "v": ["V"],
    "T": ["TH"],
    "D": ["DH"],
    "s": ["S"],
    "z": ["Z"],
    "S": ["SH"],
    "Z": ["ZH"],
    "h": ["HH"],
    "tS": ["CH"],
    "dZ": ["JH"],
    "m": ["M"],
    "n": ["N"],
    "N": ["NG"],
    "l": ["L"],
    "r": ["R"],
    "w": ["W"],
    "j": ["Y"],
    "x": ["HH"],
    "W": ["W"],
    "?": ["T"],
}
_ESPEAK_PAUSES = ("_", "_:", "_!", "_^_", "_|", "||")


@dataclass
class Segmentation:
    """A contiguous phone segmentation of one clip."""

    labels: list[str]
    start: np.ndarray
    """[P] seconds."""
    end: np.ndarray
    """[P] seconds."""

    def __len__(self) -> int:
        return len(self.labels)


def espeak_to_arpabet(mnemonic: str) -> list[str]:
    """ARPAbet phones for one espeak-ng mnemonic; ``[SIL]`` for pauses, ``[]`` for modifiers."""
    if mnemonic in _ESPEAK_PAUSES or mnemonic.startswith("_"):
        return [SIL]
    if mnemonic in _ESPEAK:
        return list(_ESPEAK[mnemonic])
    core = re.sub(r"[^A-Za-z@0-9:]", "", mnemonic)
    for n in (3, 2, 1):
        if core[:n] in _ESPEAK:
            return list(_ESPEAK[core[:n]])
    return []


def flite_to_arpabet(segment: str) -> str:
    """flite segment name (``pau``, ``aa`` …) → ARPAbet label."""
    label = segment.upper()
    if segment in ("pau", "h#", "brth"):
        return SIL
    return {"AX": "AH", "AXR": "ER", "IX": "IH", "DX": "D", "NX": "N", "EL": "L", "EM": "M", "EN": "N"}.get(
        label, label
    )


def normalize(seg: Segmentation, duration: float, min_len: float = 0.005) -> Segmentation:
    """Clip to ``[0, duration]``, fill gaps with silence, merge repeated silence, drop slivers."""
    out_l: list[str] = []
    out_s: list[float] = []
    out_e: list[float] = []

    def push(label: str, s: float, e: float) -> None:
        if e - s < min_len:
            if out_e:
                out_e[-1] = max(out_e[-1], e)
            return
        if out_l and label == SIL and out_l[-1] == SIL:
            out_e[-1] = e
            return
        out_l.append(label)
        out_s.append(s)
        out_e.append(e)

    t = 0.0
    for label, s, e in sorted(zip(seg.labels, seg.start, seg.end), key=lambda x: x[1]):
        s, e = max(float(s), t), min(float(e), duration)
        if s > t:
            push(SIL, t, s)
        if e > s:
            push(label, s, e)
            t = e
    if t < duration:
        push(SIL, t, duration)
    if out_s:
        out_s[0] = 0.0
        out_e[-1] = duration
        for i in range(1, len(out_s)):
            out_s[i] = out_e[i - 1]
    return Segmentation(out_l, np.array(out_s), np.array(out_e))


def split_multi(labels: list[list[str]], starts: list[float], ends: list[float]) -> Segmentation:
    """Expand entries that map to several phones, splitting their time (first phone 60 %)."""
    out_l, out_s, out_e = [], [], []
    for phones, s, e in zip(labels, starts, ends):
        if not phones:
            continue
        if len(phones) == 1:
            cuts = [s, e]
        else:
            first = s + 0.6 * (e - s)
            rest = np.linspace(first, e, len(phones))
            cuts = [s, *rest]
        for p, a, b in zip(phones, cuts[:-1], cuts[1:]):
            out_l.append(p)
            out_s.append(a)
            out_e.append(b)
    return Segmentation(out_l, np.array(out_s, dtype=np.float64), np.array(out_e, dtype=np.float64))


# ----------------------------------------------------------------------------- pocketsphinx

_PS_FRAME = 0.01  # pocketsphinx's frame shift (100 frames a second)


@lru_cache(maxsize=2)
def _align_decoder(wide: bool = False):
    from pocketsphinx import Decoder  # lazy: only labelling speech needs it

    beams = {"beam": 1e-60, "pbeam": 1e-60} if wide else {}
    return Decoder(samprate=16000, loglevel="FATAL", lm=None, **beams)


def _pcm(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def dictionary_words() -> set[str]:
    """Words pocketsphinx's bundled en-us dictionary can align."""
    return set(_dictionary())


@lru_cache(maxsize=1)
def _dictionary() -> frozenset[str]:
    from pocketsphinx import get_model_path  # lazy: only labelling speech needs it

    words = set()
    with open(os.path.join(get_model_path(), "en-us", "cmudict-en-us.dict"), encoding="utf-8") as f:
        for line in f:
            w = line.split(" ", 1)[0]
            if "(" not in w:
                words.add(w)
    return frozenset(words)


def transcript_words(text: str) -> list[str]:
    """Lower-case words of ``text`` the aligner knows (punctuation dropped, unknown words skipped)."""
    known = _dictionary()
    words = re.findall(r"[a-z']+", text.lower())
    return [w for w in words if w in known]


def align_pocketsphinx(audio: np.ndarray, text: str) -> Segmentation:
    """Force-align ``text`` to ``audio: [N]`` (16 kHz) with pocketsphinx; ARPAbet + sil."""
    words = transcript_words(text)
    duration = len(audio) / 16000
    if not words:
        return normalize(Segmentation([], np.zeros(0), np.zeros(0)), duration)
    pcm = _pcm(audio)
    alignment, error = None, None
    for wide in (False, True):  # a decoder that failed once is rebuilt before it is used again
        dec = _align_decoder(wide)
        try:
            dec.set_align_text(" ".join(words))
            for second_pass in (False, True):
                dec.start_utt()
                dec.process_raw(pcm, full_utt=True)
                dec.end_utt()
                if not second_pass:
                    dec.set_alignment()
            alignment = dec.get_alignment()
            break
        except RuntimeError as exc:
            error = exc
            _align_decoder.cache_clear()
    if alignment is None and error is not None:
        raise SplattalkError(f"pocketsphinx could not align {text!r} to {duration:.2f} s of audio: {error}")
    labels, starts, ends = [], [], []
    if alignment is None:
        return normalize(Segmentation([], np.zeros(0), np.zeros(0)), duration)
    for word in alignment:
        for phone in word:
            labels.append(SIL if phone.name in ("SIL", "+SPN+", "+NSN+") or phone.name.startswith("+") else phone.name)
            starts.append(phone.start * _PS_FRAME)
            ends.append((phone.start + phone.duration) * _PS_FRAME)
    return normalize(Segmentation(labels, np.array(starts), np.array(ends)), duration)


def recognize_phones(audio: np.ndarray) -> Segmentation:
    """Phone recognition of ``audio: [N]`` (16 kHz) with pocketsphinx's en-us phone-loop decoder.

    For speech without a transcript. Word recognition with the full language model
    is slower than real time here and poor on telephone-band audio; the phone loop
    is fast and its mistakes are mostly between similar phones (same viseme).
    """
    dec = _phone_decoder()
    dec.start_utt()
    dec.process_raw(_pcm(audio), full_utt=True)
    dec.end_utt()
    labels, starts, ends = [], [], []
    for s in dec.seg():
        name = s.word
        labels.append(name if name in ARPABET else SIL)
        starts.append(s.start_frame * _PS_FRAME)
        ends.append((s.end_frame + 1) * _PS_FRAME)
    return normalize(Segmentation(labels, np.array(starts), np.array(ends)), len(audio) / 16000)


@lru_cache(maxsize=1)
def _phone_decoder():
    from pocketsphinx import Decoder, get_model_path  # lazy: only labelling speech needs it

    lm = os.path.join(get_model_path(), "en-us", "en-us-phone.lm.bin")
    return Decoder(
        samprate=16000, loglevel="FATAL", lm=None, allphone=lm, beam=1e-20, pbeam=1e-20, lw=2.0, bestpath=False
    )


def boundary_error(ref: Segmentation, hyp: Segmentation) -> tuple[float, int]:
    """Mean |start difference| (seconds) over phones matched by label between two segmentations.

    The label sequences (silence excluded) are aligned by edit distance; returns the
    mean error and the number of matched phones.
    """
    a = [(lab, s) for lab, s in zip(ref.labels, ref.start) if lab != SIL]
    b = [(lab, s) for lab, s in zip(hyp.labels, hyp.start) if lab != SIL]
    n, m = len(a), len(b)
    cost = np.zeros((n + 1, m + 1))
    cost[:, 0] = np.arange(n + 1)
    cost[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            sub = 0.0 if a[i - 1][0] == b[j - 1][0] else 1.0
            cost[i, j] = min(cost[i - 1, j] + 1, cost[i, j - 1] + 1, cost[i - 1, j - 1] + sub)
    i, j, diffs = n, m, []
    while i > 0 and j > 0:
        sub = 0.0 if a[i - 1][0] == b[j - 1][0] else 1.0
        if cost[i, j] == cost[i - 1, j - 1] + sub:
            if sub == 0.0:
                diffs.append(abs(a[i - 1][1] - b[j - 1][1]))
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return (float(np.mean(diffs)) if diffs else float("nan")), len(diffs)


def label_speech(audio: np.ndarray, text: str = "") -> tuple[Segmentation, str]:
    """Phones of any speech ``audio: [N]`` (16 kHz): forced alignment of ``text`` when given and
    alignable, else phone recognition. Returns the segmentation and which method made it."""
    words = re.findall(r"[a-z']+", text.lower())
    if words and len(transcript_words(text)) >= 0.9 * len(words):
        try:
            seg = align_pocketsphinx(audio, text)
            if any(lab != SIL for lab in seg.labels):
                return seg, "pocketsphinx-align"
        except SplattalkError:
            pass
    return recognize_phones(audio), "pocketsphinx-phones"
