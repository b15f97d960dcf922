"""Tracked talking-head videos as a talk corpus source (the :mod:`splattalk.talk.corpus.layout` format).

Each run folder holds ``tracking/tracks.npz`` as ``splattalk track`` writes it (expr [T, E], jaw, neck,
rot, transl [T, 3], eyes [T, 6], fps); its media is that video (or its audio track as any audio file).
Motion becomes ``[expression, head rotation, jaw]`` at 25 fps (linear interpolation from the video's
rate; frame i shows time (i + 0.5) / fps on both sides), the head rotation taken relative to the run's
mean orientation (so "still" means facing where the subject usually faces). Audio becomes 16 kHz mono
wav. Each run is cut into clips of at most ``clip_seconds``; every ``heldout_every``-th clip goes to the
held-out split. Style and speaker ids are per run. ``scripts/tracks_to_corpus.py`` is the command line.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from splattalk.atomic import save_npz
from splattalk.errors import SplattalkError
from splattalk.run import RunLayout, Tracks
from splattalk.talk.audio import load_audio
from splattalk.talk.config import FPS, SAMPLES_PER_FRAME
from splattalk.talk.corpus.layout import Utterance, clip_paths, rebuild_manifest, write_wav


@dataclass(frozen=True)
class TracksToCorpus:
    """Tracked runs + their videos → corpus folder."""

    runs: tuple[Path, ...]
    """Run folders (each with tracking/tracks.npz)."""
    media: tuple[Path, ...]
    """The video (or audio) of each run, in the same order."""
    out: Path
    """Corpus folder to write (manifest.jsonl + clips/)."""
    clip_seconds: float = 10.0
    """Longest clip; longer runs are cut into equal pieces."""
    heldout_every: int = 10
    """Every n-th clip (per run) is held out for evaluation; 0: none."""


def head_motion(tracks: dict, fps: float) -> np.ndarray:
    """Tracks at ``fps`` (``expr [T, E]``, ``rot [T, 3]``, ``jaw [T, 3]``) → motion ``[T25, E + 6]`` at 25 fps
    (rotation relative to the mean orientation)."""
    rot = Rotation.from_rotvec(np.asarray(tracks["rot"], np.float64))
    rel = (rot.mean().inv() * rot).as_rotvec()
    motion = np.concatenate(
        [np.asarray(tracks["expr"], np.float64), rel, np.asarray(tracks["jaw"], np.float64)], axis=1
    )
    n = len(motion)
    src = (np.arange(n) + 0.5) / fps
    T = int(round(n / fps * FPS))
    dst = (np.arange(T) + 0.5) / FPS
    return np.stack([np.interp(dst, src, motion[:, c]) for c in range(motion.shape[1])], axis=1).astype(np.float32)


def convert(cfg: TracksToCorpus) -> list[Utterance]:
    """Write the corpus ``cfg.out`` from the runs and their media; returns its manifest's records."""
    if len(cfg.runs) != len(cfg.media):
        raise SplattalkError(
            f"{len(cfg.runs)} runs but {len(cfg.media)} media files: give one video/audio per run, in order"
        )
    for r, (run, media) in enumerate(zip(cfg.runs, cfg.media)):
        data = Tracks.load(RunLayout(run).tracks)  # a missing or broken file is a clear SplattalkError
        tracks, fps, head = {"expr": data.expr, "jaw": data.jaw, "rot": data.rot}, float(data.fps), data.head_model
        motion = head_motion(tracks, fps)
        audio = load_audio(media, max_bytes=None)
        frames = min(len(motion), int(len(audio) // SAMPLES_PER_FRAME))
        pieces = max(1, int(np.ceil(frames / (cfg.clip_seconds * FPS))))
        bounds = np.linspace(0, frames, pieces + 1).astype(int)
        for k in range(pieces):
            a, b = bounds[k], bounds[k + 1]
            cid = f"{Path(run).name}-{k:03d}"
            wav, npz = clip_paths(cid)
            split = "heldout" if cfg.heldout_every and k % cfg.heldout_every == cfg.heldout_every - 1 else "train"
            rec = Utterance(cid, wav, npz, (b - a) / FPS, f"{Path(run).name}", r, split, "", "recording", "")
            write_wav(cfg.out / wav, audio[a * SAMPLES_PER_FRAME : b * SAMPLES_PER_FRAME])
            save_npz(
                cfg.out / npz,
                motion=motion[a:b],
                fps=np.int32(FPS),
                head_model=np.array(head),
                phones=np.array([], dtype=str),
                phone_start=np.zeros(0, np.float32),
                phone_end=np.zeros(0, np.float32),
                meta_json=np.array(json.dumps(asdict(rec))),
            )
    return rebuild_manifest(cfg.out)
