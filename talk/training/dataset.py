"""Training windows from a talk corpus, cut on the fly exactly as inference cuts them.

A corpus (:mod:`splattalk.talk.corpus.layout` format: ``manifest.jsonl`` + ``clips/<id>.wav``
16 kHz mono + ``clips/<id>.npz`` with ``motion [T, D]`` at 25 fps) becomes a
list of windows of W frames (W = 100). Window ``k`` of an utterance starts at
frame ``s`` (``s = k·W``; with ``jitter`` the windows after the first move by a
random phase each epoch, so training sees every alignment) and yields:

* ``this``: motion frames ``[s, s + W)``; past the end of the utterance the
  last frame is held (the padding inference discards) and ``valid`` is 0;
* ``prev``: the W frames before, or — for the first window, ``s = 0`` — the
  all-zero still window that ``inference.start_session`` encodes as the first prefix;
* ``audio``: samples ``[s·640 − context, (s + W)·640)``, zeros before the start
  and after the end: the very slice ``inference.generate`` feeds ``step_window``
  for that window (motion frame i ↔ audio samples [640·i, 640·(i + 1)));
* ``style_clip``: 50 frames of another utterance of the same style (so the
  style encoder cannot copy the target's lips), plus ``style``/``speaker`` ids;
* ``phone``: ``[W]`` the phone spoken at each frame's centre, an index into
  :data:`PHONE_SET` (−1 past the end, or for clips without phone timings): the
  stage-2 auxiliary target that teaches the audio front-end what was said.

Every random choice (jitter, style clip, augmentation) is a pure function of
``(seed, epoch, item)``, so a run that resumes at step k sees the very batches
an uninterrupted run sees, on any number of ranks. Audio is read lazily
(partial wav reads), motion is held in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import butter, sosfilt

from splattalk.errors import SplattalkError
from splattalk.talk.config import FPS, PHONE_SET, SAMPLE_RATE, SAMPLES_PER_FRAME
from splattalk.talk.corpus.layout import DEFAULT_CORPUS, SOURCE_GROUPS, Utterance, read_manifest


@dataclass(frozen=True)
class AugmentConfig:
    """Audio-only augmentation (the motion target never changes)."""

    gain_db: float = 6.0
    """Random level change, uniform in ±gain_db decibels."""
    noise_prob: float = 0.3
    """Chance of adding white noise to a window."""
    noise_snr_db: tuple[float, float] = (10.0, 40.0)
    """Range of the noise's signal-to-noise ratio (dB, relative to the window's speech level)."""
    telephone_prob: float = 0.15
    """Chance of band-limiting a window to the telephone band (300–3400 Hz)."""


NO_AUGMENT = AugmentConfig(gain_db=0.0, noise_prob=0.0, telephone_prob=0.0)


@dataclass(frozen=True)
class DataConfig:
    """Which material a training run reads and how it is varied."""

    corpus: Path = DEFAULT_CORPUS
    """Corpus folder (manifest.jsonl + clips/); see talk/corpus/layout.py and scripts/make_talk_corpus.py."""
    exclude_speakers: tuple[str, ...] = ()
    """Leave out utterances whose speaker starts with any of these prefixes (e.g. "asterisk:")."""
    jitter: bool = True
    """Move the windows after an utterance's first by a random phase each epoch (more alignments)."""
    augment: AugmentConfig = AugmentConfig()
    """Audio augmentation of training windows."""
    source_weights: tuple[str, ...] = ()
    """Share of each source group in every training batch, as GROUP=WEIGHT (groups: tts, recording, video; e.g.
    ``video=0.5 tts=0.5``: half the windows from tracked real video, half from TTS, whatever their hours). Every
    group the corpus holds needs a weight (0 leaves it out). Default: windows drawn uniformly."""


@dataclass
class _Clip:
    record: Utterance
    motion: np.ndarray  # [T, D]
    phone: np.ndarray  # [T] int64 index into PHONE_SET, -1 where unknown
    audio_path: Path
    samples: int
    style: int
    speaker: int


class WindowDataset:
    """The windows of one corpus split; ``item(epoch, index)`` builds one, ``batch`` stacks several."""

    def __init__(
        self,
        root: str | Path,
        split: str | None = "train",
        *,
        window: int = 100,
        context_frames: int = 25,
        style_frames: int = 50,
        exclude_speakers: tuple[str, ...] = (),
        jitter: bool = True,
        augment: AugmentConfig = NO_AUGMENT,
        seed: int = 0,
        with_audio: bool = True,
        source_weights: dict[str, float] | None = None,
    ):
        self.root = Path(root).expanduser()
        self.window, self.context_frames, self.style_frames = window, context_frames, style_frames
        self.jitter, self.augment, self.seed, self.with_audio = jitter, augment, int(seed), with_audio
        records = [r for r in read_manifest(self.root, split) if not r.speaker.startswith(tuple(exclude_speakers))]
        if not records:
            raise SplattalkError(
                f"corpus {self.root} has no {split or 'any'} utterances (after excluding {list(exclude_speakers)})"
            )
        self.speakers = sorted({r.speaker for r in records})
        self.clips: list[_Clip] = []
        dims = set()
        for r in records:
            motion, phone = _read_motion(self.root / r.motion)
            dims.add(motion.shape[1])
            path = self.root / r.audio
            try:
                info = sf.info(str(path))
            except Exception as err:  # noqa: BLE001 - unreadable audio is a bad corpus
                raise SplattalkError(f"corpus audio {path} is unreadable ({err}); rebuild or fix the corpus") from None
            if info.samplerate != SAMPLE_RATE or info.channels != 1:
                raise SplattalkError(
                    f"corpus audio {path} is {info.samplerate} Hz × {info.channels} channels; training reads "
                    f"{SAMPLE_RATE} Hz mono wav (convert it, e.g. scripts/tracks_to_corpus.py does)"
                )
            self.clips.append(
                _Clip(r, motion, phone, path, int(info.frames), int(r.style), self.speakers.index(r.speaker))
            )
        if len(dims) != 1:
            raise SplattalkError(f"corpus {self.root} mixes motion widths {sorted(dims)}; one head model per corpus")
        self.motion_dim = dims.pop()
        by_style: dict[int, list[int]] = {}
        for i, c in enumerate(self.clips):
            by_style.setdefault(c.style, []).append(i)
        self.by_style = by_style
        # Item k of an epoch is window self.windows[k] = (clip, window index within the clip).
        self.windows = [
            (c, k) for c, clip in enumerate(self.clips) for k in range(_n_windows(len(clip.motion), window))
        ]
        self.source_weights = _check_weights(source_weights, {SOURCE_GROUPS[c.record.source] for c in self.clips})
        self.window_group = np.array([SOURCE_GROUPS[self.clips[c].record.source] for c, _ in self.windows])

    def __len__(self) -> int:
        return len(self.windows)

    @property
    def frames(self) -> int:
        return sum(len(c.motion) for c in self.clips)

    @property
    def hours(self) -> float:
        return self.frames / FPS / 3600.0

    def motion_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and std ``[D]`` over every frame (std of constant channels set to 1)."""
        allm = np.concatenate([c.motion for c in self.clips]).astype(np.float64)
        mean, std = allm.mean(0), allm.std(0)
        std[std < 1e-4] = 1.0
        return mean.astype(np.float32), std.astype(np.float32)

    # ---- one item ---------------------------------------------------------------------

    def start(self, epoch: int, index: int) -> int:
        """First frame of item ``index`` in ``epoch`` (0 for an utterance's first window)."""
        c, k = self.windows[index]
        if k == 0:
            return 0
        W, T = self.window, len(self.clips[c].motion)
        phase = 0
        if self.jitter:
            phase = int(np.random.default_rng([self.seed, 1, epoch, c]).integers(-(W // 2), W // 2))
        return int(np.clip(k * W + phase, W, T - 1))

    def item(self, epoch: int, index: int) -> dict[str, np.ndarray | int]:
        """One training window (see the module docstring for its fields)."""
        c, _ = self.windows[index]
        clip, W = self.clips[c], self.window
        s = self.start(epoch, index)
        this, valid = motion_window(clip.motion, s, W)
        idx = np.arange(s, s + W)
        phone = np.where(idx < len(clip.phone), clip.phone[np.minimum(idx, len(clip.phone) - 1)], -1)
        prev = still_window(W, self.motion_dim) if s == 0 else clip.motion[s - W : s]
        out: dict[str, np.ndarray | int] = {
            "prev": prev.astype(np.float32),
            "this": this,
            "valid": valid,
            "phone": phone.astype(np.int64),
            "first": np.float32(s == 0),
            "style": clip.style,
            "speaker": clip.speaker,
            "clip": c,
            "start": s,
        }
        rng = np.random.default_rng([self.seed, 2, epoch, index])
        out["style_clip"] = self._style_clip(c, rng)
        out["u"] = np.float32(rng.random())  # a uniform draw for the trainer (style dropout)
        if self.with_audio:
            audio = window_audio(clip.audio_path, clip.samples, s, W, self.context_frames)
            out["audio"] = augment_audio(audio, self.augment, np.random.default_rng([self.seed, 3, epoch, index]))
        return out

    def _style_clip(self, c: int, rng: np.random.Generator) -> np.ndarray:
        group = [i for i in self.by_style[self.clips[c].style] if i != c] or [c]
        other = self.clips[group[int(rng.integers(len(group)))]].motion
        n = self.style_frames
        start = int(rng.integers(0, max(1, len(other) - n + 1)))
        return motion_window(other, start, n)[0]

    # ---- batches ------------------------------------------------------------------------

    def order(self, epoch: int) -> np.ndarray:
        """The shuffled item order of ``epoch``: a permutation, or with ``source_weights`` ``len(self)`` items whose
        groups interleave so that every run of consecutive items (every batch) holds each group's share to within
        one item, each group's windows shuffled and cycled (a small group's windows come round more than once)."""
        rng = np.random.default_rng([self.seed, 0, epoch])
        if not self.source_weights:
            return rng.permutation(len(self))
        cached = getattr(self, "_weighted_order", None)
        if cached is not None and cached[0] == epoch:  # batch_indices asks once per step
            return cached[1]
        groups = sorted(self.source_weights)
        weights = np.array([self.source_weights[g] for g in groups])
        n = len(self)
        # the group of each position: the one furthest behind its share so far (ties: the first in sorted order)
        slots, counts = np.empty(n, np.int64), np.zeros(len(groups))
        for p in range(n):
            g = int(np.argmax(weights * (p + 1) - counts))
            slots[p], counts[g] = g, counts[g] + 1
        out = np.empty(n, np.int64)
        for g, name in enumerate(groups):
            members = np.flatnonzero(self.window_group == name)
            need = int(counts[g])
            cycles = -(-need // len(members))
            out[slots == g] = np.concatenate([rng.permutation(members) for _ in range(cycles)])[:need]
        self._weighted_order = (epoch, out)
        return out

    def steps_per_epoch(self, batch_size: int, world: int = 1) -> int:
        steps = len(self) // (batch_size * world)
        if steps == 0:
            raise SplattalkError(f"{len(self)} windows are fewer than one global batch ({batch_size} × {world} ranks)")
        return steps

    def batch_indices(self, step: int, batch_size: int, rank: int = 0, world: int = 1) -> tuple[int, np.ndarray]:
        """(epoch, item indices) of this rank's share of global batch ``step``
        (the last partial batch of an epoch is dropped)."""
        epoch, b = divmod(step, self.steps_per_epoch(batch_size, world))
        g = batch_size * world
        return epoch, self.order(epoch)[b * g : (b + 1) * g][rank::world]

    def batch(self, epoch: int, indices) -> dict:
        """Stack items into torch tensors (``audio [B, S]``, ``prev/this [B, W, D]``, ``valid [B, W]`` …)."""
        items = [self.item(epoch, int(i)) for i in indices]
        return {k: torch.as_tensor(np.stack([np.asarray(it[k]) for it in items])) for k in items[0]}


# ---- pure functions (shared with inference-side checks and tests) ------------------------


def parse_source_weights(items: tuple[str, ...]) -> dict[str, float] | None:
    """``("video=0.5", "tts=0.5")`` → ``{"video": 0.5, "tts": 0.5}`` (None for none); a clear error otherwise."""
    if not items:
        return None
    groups = sorted(set(SOURCE_GROUPS.values()))
    out = {}
    for item in items:
        name, sep, value = str(item).partition("=")
        try:
            weight = float(value) if sep else float("nan")
        except ValueError:
            weight = float("nan")
        if name not in groups or not np.isfinite(weight) or weight < 0:
            raise SplattalkError(
                f"source weight {item!r}: write GROUP=WEIGHT with GROUP one of {groups} and WEIGHT ≥ 0 (e.g. video=0.5)"
            )
        out[name] = weight
    return out


def _check_weights(weights: dict[str, float] | None, present: set[str]) -> dict[str, float] | None:
    """``weights`` normalised to sum 1 over the groups with weight above 0, checked against the groups the corpus
    split holds (``present``); None stays None."""
    if not weights:
        return None
    missing, absent = (
        sorted(present - set(weights)),
        sorted(g for g, w in weights.items() if w > 0 and g not in present),
    )
    if missing:
        raise SplattalkError(
            f"the corpus holds source groups {missing} that --source-weights does not weigh: give each a weight "
            "(0 leaves it out)"
        )
    if absent:
        raise SplattalkError(f"--source-weights weighs {absent}, but the corpus has no such material")
    total = sum(w for w in weights.values() if w > 0)
    if total <= 0:
        raise SplattalkError("--source-weights are all 0: nothing to train on")
    return {g: w / total for g, w in weights.items() if w > 0}


def _n_windows(frames: int, window: int) -> int:
    """Windows ``generate`` runs over ``frames`` frames: ⌈T / W⌉."""
    return max(1, -(-frames // window))


def still_window(window: int, dim: int) -> np.ndarray:
    """The first window's prefix motion ``[W, D]``: all zeros, as ``inference.start_session``."""
    return np.zeros((window, dim), np.float32)


def motion_window(motion: np.ndarray, start: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``[start, start + length)`` of ``motion: [T, D]``, the last frame held past the end.

    Returns ``(window [length, D] float32, valid [length] float32)``.
    """
    T = len(motion)
    idx = np.arange(start, start + length)
    valid = (idx < T).astype(np.float32)
    return np.asarray(motion[np.minimum(idx, T - 1)], np.float32), valid


def window_audio(source: Path | np.ndarray, samples: int, start: int, window: int, context_frames: int) -> np.ndarray:
    """Audio ``[(context + W)·640]`` of the window starting at frame ``start``: exactly ``generate``'s slice.

    ``source`` is a 16 kHz mono wav (read partially) or the whole signal ``[S]``;
    ``samples`` its length. Zeros before sample 0 and after the end.
    """
    a = (start - context_frames) * SAMPLES_PER_FRAME
    b = (start + window) * SAMPLES_PER_FRAME
    out = np.zeros(b - a, np.float32)
    lo, hi = max(a, 0), min(b, samples)
    if hi > lo:
        if isinstance(source, np.ndarray):
            seg = source[lo:hi]
        else:
            seg, _ = sf.read(str(source), start=lo, stop=hi, dtype="float32", always_2d=False)
        out[lo - a : lo - a + len(seg)] = seg
    return out


def augment_audio(audio: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Gain, additive noise and telephone band-limiting of ``audio: [S]`` (each drawn from ``rng``)."""
    # Draw every random number whatever is enabled, so changing one option leaves the others' draws alone.
    gain_db, noise_u, snr_u, tel_u = rng.uniform(-1, 1), rng.random(), rng.random(), rng.random()
    noise = rng.standard_normal(audio.shape[0]).astype(np.float32)
    x = audio
    if tel_u < cfg.telephone_prob:
        x = _telephone(x)
    if noise_u < cfg.noise_prob:
        lo, hi = cfg.noise_snr_db
        snr = lo + (hi - lo) * snr_u
        level = _speech_rms(x)
        x = x + noise * (level / 10 ** (snr / 20))
    if cfg.gain_db:
        x = x * np.float32(10 ** (gain_db * cfg.gain_db / 20))
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def _speech_rms(x: np.ndarray) -> float:
    """RMS of the louder half of 20-ms frames (speech level, not diluted by pauses); −60 dBFS floor."""
    n = len(x) // 320 * 320
    if n == 0:
        return 1e-3
    frames = np.sqrt((x[:n].reshape(-1, 320).astype(np.float64) ** 2).mean(1))
    loud = np.sort(frames)[len(frames) // 2 :]
    return max(float(np.sqrt((loud**2).mean())), 1e-3)


def _telephone(x: np.ndarray) -> np.ndarray:
    sos = butter(4, [300.0, 3400.0], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return sosfilt(sos, x).astype(np.float32)


def _read_motion(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(motion [T, D] float32, phone [T] int64)`` of one corpus clip (phones −1 when it has no timings)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            motion = np.asarray(data["motion"], np.float32)
            fps = int(data["fps"]) if "fps" in data else FPS
            timed = all(k in data.files for k in ("phones", "phone_start", "phone_end"))
            phones = (list(map(str, data["phones"])), data["phone_start"], data["phone_end"]) if timed else None
    except (OSError, ValueError, KeyError, EOFError) as err:
        raise SplattalkError(f"corpus motion {path} is unreadable ({err}); rebuild the corpus") from None
    if motion.ndim != 2 or len(motion) == 0 or fps != FPS:
        raise SplattalkError(f"corpus motion {path} is {motion.shape} at {fps} fps; expected [T, D] at {FPS} fps")
    if not np.isfinite(motion).all():
        raise SplattalkError(f"corpus motion {path} contains NaN or infinite values")
    phone = frame_phones(*phones, len(motion)) if phones else np.full(len(motion), -1, np.int64)
    return motion, phone


def frame_phones(phones: list[str], start: np.ndarray, end: np.ndarray, frames: int) -> np.ndarray:
    """``[frames]`` index into :data:`PHONE_SET` of the phone at each frame's centre (silence between phones;
    a label outside the set counts as unknown, −1)."""
    centre = (np.arange(frames) + 0.5) / FPS
    out = np.zeros(frames, np.int64)
    for name, a, b in zip(phones, np.asarray(start, float), np.asarray(end, float)):
        out[(centre >= a) & (centre < b)] = PHONE_SET.index(name) if name in PHONE_SET else -1
    return out


def most_active_segment(motion: np.ndarray, frames: int, jaw_column: int) -> tuple[np.ndarray, int]:
    """The ``frames`` consecutive frames of ``motion: [T, D]`` with the most jaw movement (a style clip taken
    while speaking), held past the end if T < frames. Returns ``(clip [frames, D], start)``."""
    jaw = motion[:, jaw_column]
    speed = np.abs(np.diff(jaw, prepend=jaw[0]))
    if len(motion) <= frames:
        return motion_window(motion, 0, frames)[0], 0
    start = int(np.argmax(np.convolve(speed, np.ones(frames), "valid")))
    return np.asarray(motion[start : start + frames], np.float32), start
