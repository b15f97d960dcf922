"""Tracked talking-head videos as a talk corpus source (the :mod:`splattalk.talk.corpus.layout` format).

Each run folder holds ``tracking/tracks.npz`` as ``splattalk track`` writes it (expr [T, E], jaw, neck,
rot, transl [T, 3], eyes [T, 6], fps); its media is that video (or its audio track as any audio file; default:
the video ``tracking/config.json`` names). Motion becomes ``[expression, head rotation, jaw]`` at 25 fps (linear
interpolation from the video's rate; frame i shows time (i + 0.5) / fps on both sides), the head rotation taken
relative to the run's mean orientation (so "still" means facing where the subject usually faces). Audio becomes
16 kHz mono wav. Each run is cut into clips of at most ``clip_seconds``; every ``heldout_every``-th clip goes to
the held-out split. The clips' ``source`` is ``video``: the real mouth is the truth (training can weight it
against the rule-made TTS material, ``DataConfig.source_weights``). Speaker and style ids are per run.

Resumable: ``DIR/sources.json`` records every converted run (its folder, media, speaker, licence, clip ids) under
a key hashed from the tracks file, the media file and the cut settings; a rerun skips the runs whose key is there
and whose clips are all on disk, and converts the rest again (a killed run's finished clips are simply rewritten).
The licence of each video is recorded there too: material that shipped weights learn from must be listed in
``talk/assets/LICENSE-*``. ``scripts/tracks_to_corpus.py`` and ``scripts/make_talk_corpus.py --videos`` are the
command lines.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from splattalk.assets import file_sha256
from splattalk.atomic import write_json
from splattalk.errors import SplattalkError
from splattalk.run import RunLayout, Tracks
from splattalk.talk.audio import load_audio
from splattalk.talk.config import FPS, SAMPLES_PER_FRAME
from splattalk.talk.corpus.layout import (
    HEAD_MODEL,
    N_EXPR,
    Utterance,
    clip_done,
    clip_paths,
    read_manifest,
    rebuild_manifest,
    remove_partial_files,
    write_clip,
)


@dataclass(frozen=True)
class TracksToCorpus:
    """Tracked runs + their videos → corpus folder."""

    runs: tuple[Path, ...]
    """Run folders (each with tracking/tracks.npz)."""
    out: Path
    """Corpus folder to write (manifest.jsonl + clips/); rerunning resumes it."""
    media: tuple[Path, ...] = ()
    """The video (or audio) of each run, in the same order; default: the video each run was tracked from."""
    licences: tuple[str, ...] = ()
    """Licence of each run's video, in order (one value: the same for all), e.g. "public domain (US government
    work)" or "CC-BY-4.0"; recorded in DIR/sources.json. Default: unknown."""
    speakers: tuple[str, ...] = ()
    """Speaker of each run, in order (one value: the same for all); default: the run folder's name. Held-out
    evaluation must not share a speaker with training."""
    clip_seconds: float = 10.0
    """Longest clip; longer runs are cut into equal pieces."""
    heldout_every: int = 10
    """Every n-th clip (per run) is held out for evaluation; 0: none."""


SOURCES_FILE = "sources.json"
"""Per corpus folder: the tracked runs converted into it, with their media, licence and clips."""
UNKNOWN_LICENCE = "unknown"


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


def _per_run(values: tuple, n: int, what: str) -> list:
    if len(values) in (0, 1):
        return [values[0] if values else None] * n
    if len(values) != n:
        raise SplattalkError(f"{n} runs but {len(values)} {what}: give one per run, in order (or one for all)")
    return list(values)


def tracked_video(run: Path) -> Path:
    """The video ``splattalk track`` read for ``run`` (as ``RUN/tracking/config.json`` names it)."""
    config = RunLayout(run).tracking_config
    try:
        video = Path(json.loads(config.read_text())["video"])
    except (OSError, KeyError, ValueError):
        raise SplattalkError(f"{config} does not name the tracked video: pass --media with the run's video") from None
    if not video.is_file():
        raise SplattalkError(f"the video {video} that {run} was tracked from is gone: pass --media with it")
    return video


def run_key(tracks: Path, media: Path, clip_seconds: float, heldout_every: int) -> str:
    """What makes a run's clips: its tracks, its media and the cut (a change in any converts it again)."""
    parts = [file_sha256(tracks), file_sha256(media), f"{clip_seconds:g}", str(heldout_every)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def read_sources(root: Path) -> list[dict]:
    """The runs recorded in ``root/sources.json`` (empty when there is none)."""
    path = Path(root) / SOURCES_FILE
    if not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text())["runs"])
    except (ValueError, KeyError, TypeError) as err:
        raise SplattalkError(f"{path} is not a sources file ({err}); delete it to convert every run again") from None


def add_runs(cfg: TracksToCorpus, log=print) -> dict:
    """Convert ``cfg.runs`` into the corpus ``cfg.out`` (skipping runs already there, by key); returns
    ``{"converted": [...], "skipped": [...]}`` of run folders. The manifest is rebuilt afterwards."""
    n = len(cfg.runs)
    media = _per_run(cfg.media, n, "media files")
    licences = _per_run(cfg.licences, n, "licences")
    speakers = _per_run(cfg.speakers, n, "speakers")
    root = Path(cfg.out)
    (root / "clips").mkdir(parents=True, exist_ok=True)
    remove_partial_files(root)
    done = {e["key"]: e for e in read_sources(root)}
    report = {"converted": [], "skipped": []}
    for r, run in enumerate(map(Path, cfg.runs)):
        video = Path(media[r]) if media[r] is not None else tracked_video(run)
        tracks_file = RunLayout(run).tracks
        if not tracks_file.is_file():
            raise SplattalkError(f"{run} has no {tracks_file.name}: track its video with `splattalk track` first")
        key = run_key(tracks_file, video, cfg.clip_seconds, cfg.heldout_every)
        entry = done.get(key)
        if entry is not None and all(clip_done(root, c) for c in entry["clips"]):
            report["skipped"].append(str(run))
            continue
        licence = licences[r] or UNKNOWN_LICENCE
        if licence == UNKNOWN_LICENCE:
            log(f"warning: no licence given for {video}; recorded as unknown (weights you ship must not learn from it)")
        ids = _convert_run(root, run, video, key, speakers[r] or run.name, len(done), cfg)
        done[key] = {
            "key": key,
            "run": str(run),
            "media": str(video),
            "speaker": speakers[r] or run.name,
            "licence": licence,
            "clips": ids,
        }
        write_json(root / SOURCES_FILE, {"runs": list(done.values())})
        report["converted"].append(str(run))
    rebuild_manifest(root)
    return report


def _convert_run(root: Path, run: Path, media: Path, key: str, speaker: str, style: int, cfg) -> list[str]:
    """Write one run's clips; returns their ids."""
    data = Tracks.load(RunLayout(run).tracks)  # a missing or broken file is a clear SplattalkError
    if data.head_model != HEAD_MODEL or data.expr.shape[1] != N_EXPR:
        raise SplattalkError(
            f"{run} was tracked with head model {data.head_model!r} ({data.expr.shape[1]} expressions); the talk "
            f"corpus is in {HEAD_MODEL!r} ({N_EXPR}): track it again with `splattalk track --head default`"
        )
    motion = head_motion({"expr": data.expr, "jaw": data.jaw, "rot": data.rot}, float(data.fps))
    audio = load_audio(media, max_bytes=None)
    frames = min(len(motion), int(len(audio) // SAMPLES_PER_FRAME))
    if frames < FPS:
        raise SplattalkError(f"{run}: under a second of both tracked frames and audio in {media}; nothing to learn")
    pieces = max(1, int(np.ceil(frames / (cfg.clip_seconds * FPS))))
    bounds = np.linspace(0, frames, pieces + 1).astype(int)
    ids = []
    for k in range(pieces):
        a, b = bounds[k], bounds[k + 1]
        cid = f"video-{run.name}-{key[:8]}-{k:03d}"
        split = "heldout" if cfg.heldout_every and k % cfg.heldout_every == cfg.heldout_every - 1 else "train"
        rec = Utterance(cid, *clip_paths(cid), (b - a) / FPS, speaker, style, split, "", "video", "")
        write_clip(root, rec, audio[a * SAMPLES_PER_FRAME : b * SAMPLES_PER_FRAME], motion[a:b], [], [], [])
        ids.append(cid)
    return ids


def convert(cfg: TracksToCorpus) -> list[Utterance]:
    """Write (or resume) the corpus ``cfg.out`` from the runs and their media; returns its manifest's records."""
    add_runs(cfg)
    return read_manifest(cfg.out)
