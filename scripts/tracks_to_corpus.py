"""Turn tracked talking-head videos into a talk training corpus (talk/corpus.py format).

    python scripts/tracks_to_corpus.py --runs run_a run_b --media a.mp4 b.mp4 --out my_corpus
    python -m splattalk.talk.train_vqvae --train.data.corpus my_corpus ...

Each RUN folder holds ``tracking/tracks.npz`` as ``splattalk track`` writes it
(expr [T, E], jaw, neck, rot, transl [T, 3], eyes [T, 6], fps); each MEDIA is
that video (or its audio track as any audio file). Motion becomes
``[expression, head rotation, jaw]`` at 25 fps (linear interpolation from the
video's rate; frame i shows time (i + 0.5) / fps on both sides), the head
rotation taken relative to the run's mean orientation (so "still" means facing
where the subject usually faces). Audio becomes 16 kHz mono wav. Each run is
cut into clips of at most ``--clip-seconds``; every ``--heldout-every``-th clip
goes to the held-out split. Style and speaker ids are per run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tyro

from splattalk.atomic import save_npz
from splattalk.errors import SplattalkError
from splattalk.head.params import MOTION_FPS, resample_motion
from splattalk.run import RunLayout, Tracks


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


def head_motion(tracks: Tracks) -> np.ndarray:
    """Tracks at ``fps`` → motion ``[T25, E + 6]`` at 25 fps (rotation relative to the mean orientation)."""
    from scipy.spatial.transform import Rotation

    rot = Rotation.from_rotvec(np.asarray(tracks.rot, np.float64))
    rel = (rot.mean().inv() * rot).as_rotvec()
    motion = np.concatenate([np.asarray(tracks.expr, np.float64), rel, np.asarray(tracks.jaw, np.float64)], axis=1)
    return resample_motion(motion, tracks.fps, MOTION_FPS)


def convert(cfg: TracksToCorpus) -> list:
    from splattalk.talk.audio import load_audio
    from splattalk.talk.corpus import Utterance, clip_paths, rebuild_manifest, write_wav

    if len(cfg.runs) != len(cfg.media):
        raise SplattalkError(f"{len(cfg.runs)} runs but {len(cfg.media)} media files: give one video/audio per run, in order")
    for r, (run, media) in enumerate(zip(cfg.runs, cfg.media)):
        tracks = Tracks.load(RunLayout(run).tracks)  # a missing or broken file is a clear SplattalkError
        head = tracks.head_model
        motion = head_motion(tracks)
        audio = load_audio(media, max_bytes=None)
        frames = min(len(motion), int(len(audio) // 640))
        pieces = max(1, int(np.ceil(frames / (cfg.clip_seconds * 25))))
        bounds = np.linspace(0, frames, pieces + 1).astype(int)
        for k in range(pieces):
            a, b = bounds[k], bounds[k + 1]
            cid = f"{Path(run).name}-{k:03d}"
            wav, npz = clip_paths(cid)
            split = "heldout" if cfg.heldout_every and k % cfg.heldout_every == cfg.heldout_every - 1 else "train"
            rec = Utterance(cid, wav, npz, (b - a) / 25, f"{Path(run).name}", r, split, "", "recording", "")
            write_wav(cfg.out / wav, audio[a * 640 : b * 640])
            save_npz(cfg.out / npz, motion=motion[a:b], fps=np.int32(25), head_model=np.array(head),
                     phones=np.array([], dtype=str), phone_start=np.zeros(0, np.float32), phone_end=np.zeros(0, np.float32),
                     meta_json=np.array(json.dumps(asdict(rec))))  # fmt: skip
    return rebuild_manifest(cfg.out)


def main() -> None:
    cfg = tyro.cli(TracksToCorpus)
    try:
        records = convert(cfg)
    except SplattalkError as err:
        raise SystemExit(f"error: {err}") from None
    hours = sum(r.duration for r in records) / 3600
    print(f"wrote {cfg.out}: {len(records)} clips, {hours:.2f} h ({sum(r.split == 'heldout' for r in records)} held out)")


if __name__ == "__main__":
    main()
