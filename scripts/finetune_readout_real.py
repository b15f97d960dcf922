"""Fine-tune the talk model's mouth read-out on real tracked clips (talk/training/readout_finetune.py).

    python scripts/finetune_readout_real.py --train-clips obama_address_1.mp4 ... --out runs/ft/obama.safetensors \\
        [--real ../shared/real] [--runs-dir runs/real]
    python scripts/eval_real_lipsync.py --checkpoint runs/ft/obama.safetensors   # scores only unseen speakers

Each clip must already be tracked under RUNS_DIR/<clip name> (eval_real_lipsync.py does that, with the
default head at 25 fps). The written model lists its clips in the metadata ``real_training_clips``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import tyro

from splattalk.errors import SplattalkError
from splattalk.run import Tracks


@dataclass(frozen=True)
class FinetuneReal:
    """Real (speech, tracked mouth) pairs → a talk model with a fine-tuned read-out."""

    train_clips: tuple[str, ...]
    """Clip files (names in the real folder) to learn from."""
    out: Path
    """Model file to write (.safetensors)."""
    real: Path = Path("../shared/real")
    """Folder of real clips."""
    runs_dir: Path = Path("runs/real")
    """Where the clips' tracking runs are (RUNS_DIR/<clip stem>/tracking/tracks.npz)."""
    checkpoint: Path | None = None
    """Model to start from (default: the built-in one)."""
    epochs: int = 20
    """Passes over the real frames."""
    lr: float = 3e-4
    """AdamW learning rate."""
    weight: float | None = None
    """New read-out share of the mouth (None: the model's)."""
    seed: int = 0
    """Seed of the frame order and the dropout."""
    align: bool = False
    """Before learning, take each clip's audio/video offset out of its pairs (found from its loudness alone,
    ``splattalk.adapt.sync_offset``, as ``splattalk adapt`` does). Some clips' sound is several frames off their
    picture; learning from them unshifted teaches the read-out that delay."""


def main(cfg: FinetuneReal) -> None:
    import torch

    from splattalk.adapt import sync_offset, tracked_gap
    from splattalk.head.default import load_default_head
    from splattalk.models import resolve_model
    from splattalk.talk.audio import load_audio
    from splattalk.talk.checkpoint import save_talk_checkpoint
    from splattalk.talk.metrics import shifted
    from splattalk.talk.training.readout_finetune import finetune_readout, tracked_motion

    torch.set_num_threads(1)
    model, head = resolve_model(cfg.checkpoint), load_default_head()
    clips = []
    for name in cfg.train_clips:
        path = cfg.runs_dir / Path(name).stem / "tracking" / "tracks.npz"
        if not path.is_file():
            raise SplattalkError(
                f"{name} is not tracked yet ({path}): run scripts/eval_real_lipsync.py --runs-dir {cfg.runs_dir} first"
            )
        tracks = Tracks.load(path).to_arrays()
        if str(tracks["head_model"]) != model.cfg.head_model:
            raise SplattalkError(
                f"{name} was tracked with {tracks['head_model']!s}; the talk model speaks {model.cfg.head_model}"
            )
        audio, motion = load_audio(cfg.real / name, max_bytes=None), tracked_motion(tracks)
        if cfg.align:
            lag = sync_offset(audio, tracked_gap(head, tracks, slice(0, min(len(motion), len(audio) // 640))))
            motion = shifted(motion, -lag)
            print(f"{name}: audio/video offset {lag:+d} frames")
        clips.append((audio, motion))
    tuned, summary = finetune_readout(model, clips, cfg.epochs, cfg.lr, seed=cfg.seed, weight=cfg.weight)
    save_talk_checkpoint(
        tuned,
        cfg.out,
        {
            "stage": "readout-real",
            "readout_real": json.dumps(summary),
            "real_training_clips": json.dumps(list(cfg.train_clips)),
        },
    )
    print(f"wrote {cfg.out}: {summary}")


if __name__ == "__main__":
    try:
        main(tyro.cli(FinetuneReal))
    except SplattalkError as err:
        raise SystemExit(f"error: {err}") from None
