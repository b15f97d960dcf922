"""The talk training corpus on disk: speech clips paired with ground-truth motion.

Layout of a corpus folder ``DIR``::

    DIR/manifest.jsonl      one JSON object per utterance (see :class:`Utterance`)
    DIR/config.json         the generator's resolved configuration
    DIR/clips/<id>.wav      16 kHz mono PCM16 speech
    DIR/clips/<id>.npz      motion [T, 32] float32 at 25 fps, T = round(duration * 25);
                            fps; head_model ("default-head-v1"); phones [P] (ARPAbet
                            labels, "sil" for silence), phone_start [P] / phone_end [P]
                            seconds; meta_json (the utterance's manifest record)

Motion frame ``i`` shows the face at time ``(i + 0.5) / 25`` s, the middle of
its 640 audio samples. Motion columns (the built-in default head's parameter space): 26 expression
coefficients in :data:`EXPR_NAMES` order, then global head rotation (3, axis-angle),
then jaw (3, axis-angle). Every file is written atomically; a clip's ``.npz`` is
written last, so a clip whose ``.npz`` loads is complete. ``manifest.jsonl`` is
rebuilt from the clips, so a killed generator loses nothing it finished.

Splits: synthetic ``heldout`` clips use voices and sentences no ``train`` clip uses;
real ``heldout`` recordings are speakers absent from training (codec2, alsa) and
asterisk prompts training does not hear; ``style`` indexes
``talk.corpus.styles.STYLES``; ``source`` is ``espeak-ng``, ``flite``, ``recording`` or ``video`` (tracked real
video, :mod:`splattalk.talk.corpus.tracks`, listed with its licence in ``DIR/sources.json``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import soundfile as sf

from splattalk.atomic import atomic_path, save_npz, write_text
from splattalk.errors import SplattalkError
from splattalk.talk.audio import resample
from splattalk.talk.config import FPS, SAMPLE_RATE

DEFAULT_CORPUS = Path("~/.cache/splattalk/corpus").expanduser()
"""Where ``scripts/make_talk_corpus.py`` and the default model's recipe keep the corpus."""
HEAD_MODEL = "default-head-v1"
"""Head model whose parameter space the motion lives in."""

# The default head's expression components, in order. ``talk`` must not import ``head``
# (it stands alone), so the names are repeated here; tests check they match head/default.py.
EXPR_NAMES = (
    "mouth_open",
    "mouth_stretch",
    "mouth_pucker",
    "mouth_funnel",
    "smile",
    "frown",
    "mouth_left",
    "mouth_right",
    "lips_press",
    "upper_lip_roll",
    "lower_lip_roll",
    "upper_lip_raise",
    "lower_lip_depress",
    "cheek_puff",
    "cheek_raise",
    "nose_wrinkle",
    "brow_inner_up",
    "brow_outer_up",
    "brow_down",
    "brow_in",
    "blink_left",
    "blink_right",
    "squint_left",
    "squint_right",
    "eyes_wide",
    "jaw_forward",
)
N_EXPR = len(EXPR_NAMES)
EXPR = slice(0, N_EXPR)
"""Columns of the expression coefficients."""
ROTATION = slice(N_EXPR, N_EXPR + 3)
"""Columns of the global head rotation (axis-angle; x = nod, positive pitches the face down)."""
JAW = slice(N_EXPR + 3, N_EXPR + 6)
"""Columns of the jaw rotation (axis-angle; positive x opens the mouth)."""
MOTION_DIM = N_EXPR + 6
MOUTH_CHANNELS = tuple(
    i
    for i, n in enumerate(EXPR_NAMES)
    if n.startswith(("mouth", "lip", "upper_lip", "lower_lip", "jaw")) or n in ("smile", "frown", "cheek_puff")
) + tuple(range(JAW.start, JAW.stop))
"""Motion columns of the mouth and jaw (not eyes, brows, nose, cheeks' raise or the head)."""
SPLITS = ("train", "heldout")
SOURCES = ("espeak-ng", "flite", "recording", "video")
"""Where a clip comes from: synthetic speech (espeak-ng, flite) or recorded speech (recording), both with
motion made by our viseme rules; or a real tracked talking-head video (video: the tracked mouth is the truth)."""
SOURCE_GROUPS = {"espeak-ng": "tts", "flite": "tts", "recording": "recording", "video": "video"}
"""The groups training can weight against each other (``DataConfig.source_weights``)."""


def expr_index(name: str) -> int:
    """Column of the expression component ``name`` in a motion array."""
    return EXPR_NAMES.index(name)


def n_frames(duration: float) -> int:
    """Motion frames of a clip lasting ``duration`` seconds."""
    return int(round(duration * FPS))


@dataclass(frozen=True)
class Utterance:
    """One manifest record (one line of ``manifest.jsonl``)."""

    id: str
    """Unique clip id; also the file stem under ``clips/``."""
    audio: str
    """Speech file, relative to the corpus folder."""
    motion: str
    """Motion ``.npz``, relative to the corpus folder."""
    duration: float
    """Seconds of audio."""
    speaker: str
    """Voice or speaker id (e.g. ``espeak-ng:en-us+f3``, ``flite:slt``, ``asterisk:allison``)."""
    style: int
    """Motion style id (index into ``talk.corpus.styles.STYLES``)."""
    split: str
    """``train`` or ``heldout`` (held-out sentences *and* voices)."""
    text: str
    """What is said (empty when unknown)."""
    source: str
    """``espeak-ng``, ``flite``, ``recording`` or ``video`` (:data:`SOURCES`)."""
    phone_source: str = ""
    """Where the phone timings came from: ``espeak-ng``, ``flite``, ``pocketsphinx-align``
    (forced alignment of the transcript), ``pocketsphinx-phones`` (phone recognition), or both joined by ``+``."""


@dataclass
class Clip:
    """One utterance read back: its record, audio and ground-truth motion."""

    record: Utterance
    audio: np.ndarray
    """[N] float32 in [-1, 1] at :data:`SAMPLE_RATE`."""
    motion: np.ndarray
    """[T, MOTION_DIM] float32 at :data:`FPS`."""
    phones: list[str]
    phone_start: np.ndarray
    """[P] seconds."""
    phone_end: np.ndarray
    """[P] seconds."""


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write ``audio: [N]`` (float in [-1, 1]) as mono PCM16, atomically."""
    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(tmp, np.clip(audio, -1.0, 1.0).astype(np.float32), sample_rate, subtype="PCM_16", format="WAV")


def read_wav(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read any soundfile-readable audio as mono float32 ``[N]`` resampled to ``sample_rate``."""
    try:
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types for unreadable files
        raise SplattalkError(f"cannot read audio {path}: {exc}. Give a wav/flac/ogg file.") from exc
    return resample(audio.mean(axis=1), sr, sample_rate)


def clip_done(root: str | os.PathLike, clip_id: str) -> bool:
    """True when ``clip_id`` is completely written (its ``.npz`` loads and its wav exists)."""
    return (
        _load_record(Path(root) / "clips" / f"{clip_id}.npz") is not None
        and (Path(root) / "clips" / f"{clip_id}.wav").is_file()
    )


def write_clip(
    root: str | os.PathLike,
    record: Utterance,
    audio: np.ndarray,
    motion: np.ndarray,
    phones: list[str],
    phone_start: np.ndarray,
    phone_end: np.ndarray,
) -> None:
    """Write one utterance: ``audio: [N]`` at 16 kHz, ``motion: [T, 32]``; the ``.npz`` last.

    ``T`` must equal ``round(record.duration * 25)``.
    """
    root = Path(root)
    motion = np.asarray(motion, dtype=np.float32)
    if record.split not in SPLITS or record.source not in SOURCES:
        raise ValueError(f"bad split/source in {record}")
    if motion.shape != (n_frames(record.duration), MOTION_DIM):
        raise ValueError(f"motion {motion.shape} does not match duration {record.duration:.3f} s")
    write_wav(root / record.audio, audio)
    save_npz(
        root / record.motion,
        motion=motion,
        fps=np.int32(FPS),
        head_model=np.array(HEAD_MODEL),
        phones=np.array(phones, dtype=str),
        phone_start=np.asarray(phone_start, dtype=np.float32),
        phone_end=np.asarray(phone_end, dtype=np.float32),
        meta_json=np.array(json.dumps(asdict(record))),
    )


def clip_paths(clip_id: str) -> tuple[str, str]:
    """Relative (audio, motion) paths of a clip."""
    return f"clips/{clip_id}.wav", f"clips/{clip_id}.npz"


def _load_record(npz_path: Path) -> Utterance | None:
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta_json"]))
    except (OSError, ValueError, KeyError, EOFError):
        return None
    names = {f.name for f in fields(Utterance)}
    return Utterance(**{k: v for k, v in meta.items() if k in names})


def remove_partial_files(root: str | os.PathLike) -> int:
    """Delete temporary files a killed writer left in ``clips/``; returns how many."""
    stale = list((Path(root) / "clips").glob(".*.tmp.*"))
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def rebuild_manifest(root: str | os.PathLike) -> list[Utterance]:
    """Collect every finished clip into ``manifest.jsonl`` (sorted by id), atomically."""
    root = Path(root)
    records = []
    for npz in sorted((root / "clips").glob("*.npz")):
        if npz.name.startswith("."):  # a temporary file left by a killed writer
            continue
        rec = _load_record(npz)
        if rec is not None and (root / rec.audio).is_file():
            records.append(rec)
    write_text(root / "manifest.jsonl", "".join(json.dumps(asdict(r)) + "\n" for r in records))
    return records


def read_manifest(root: str | os.PathLike, split: str | None = None) -> list[Utterance]:
    """The manifest's records, optionally only one split."""
    path = Path(root) / "manifest.jsonl"
    if not path.is_file():
        raise SplattalkError(
            f"no corpus manifest at {path}. Build a corpus with `python scripts/make_talk_corpus.py --out {root}`."
        )
    if split is not None and split not in SPLITS:
        raise SplattalkError(f"unknown split {split!r}; use one of {SPLITS}")
    records = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(Utterance(**json.loads(line)))
        except (json.JSONDecodeError, TypeError) as exc:
            raise SplattalkError(f"{path} line {n} is not an utterance record ({exc}); rebuild the corpus.") from exc
    return [r for r in records if split is None or r.split == split]


def load_clip(root: str | os.PathLike, record: Utterance) -> Clip:
    """Read one utterance's audio, motion and phones."""
    root = Path(root)
    npz = root / record.motion
    try:
        with np.load(npz, allow_pickle=False) as data:
            motion = data["motion"].astype(np.float32)
            fps = int(data["fps"])
            head_model = str(data["head_model"])
            phones = [str(p) for p in data["phones"]]
            start, end = data["phone_start"].astype(np.float64), data["phone_end"].astype(np.float64)
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise SplattalkError(f"corpus clip {npz} is unreadable ({exc}); rerun make_talk_corpus.py to redo it.") from exc
    if fps != FPS or head_model != HEAD_MODEL or motion.ndim != 2 or motion.shape[1] != MOTION_DIM:
        raise SplattalkError(
            f"{npz}: motion {motion.shape} @ {fps} fps for {head_model!r}; expected [T, {MOTION_DIM}] @ {FPS} fps "
            f"for {HEAD_MODEL!r}."
        )
    return Clip(record, read_wav(root / record.audio), motion, phones, start, end)


def iter_corpus(root: str | os.PathLike, split: str | None = None) -> Iterator[Clip]:
    """Yield every clip of ``split`` (``train``, ``heldout`` or all when ``None``) in manifest order."""
    for record in read_manifest(root, split):
        yield load_clip(root, record)
