"""The default talk model's recipe: corpus (made if missing) → stage 1 (VQ-VAE) and, at the same
time, stage 1b (audio front-end pre-training) → stage 2 (generator, on the frozen front-end) → the mouth
read-out → ``talk/assets/default_talk.safetensors`` + style clips ``talk/assets/styles/<name>.npz``.

    OMP_WAIT_POLICY=PASSIVE python scripts/train_default_talk.py  # ~115 min on 2 CPU cores (13 of them the corpus)
    python -m splattalk.talk.training.default_model --no-asterisk --out runs/default_talk_tts  # TTS-only variant

Everything resumes: the corpus generator skips finished clips, each stage
continues from its ``state.safetensors``. ``record.json`` in ``--out`` keeps what
was run (corpus hours, seeds, steps, batch, learning rates, wall times, final
losses); docs/talk.md quotes it.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import tyro

from splattalk.atomic import save_npz, write_json
from splattalk.talk.checkpoint import load_talk_checkpoint, save_talk_checkpoint
from splattalk.talk.corpus.build import CorpusConfig, build_corpus
from splattalk.talk.corpus.layout import DEFAULT_CORPUS, JAW, MOUTH_CHANNELS, load_clip, read_manifest
from splattalk.talk.corpus.styles import STYLES
from splattalk.talk.training import readout, train_ar, train_frontend, train_vqvae
from splattalk.talk.training.dataset import DataConfig, most_active_segment
from splattalk.talk.training.train_common import TrainConfig

ASSETS = Path(__file__).resolve().parents[1] / "assets"
MAX_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class DefaultTalkConfig:
    """How the default talk model is made."""

    corpus: Path = DEFAULT_CORPUS
    """Corpus folder; built with the corpus generator (scripts/make_talk_corpus.py) when it has no manifest."""
    hours: float = 3.5
    """Hours of material when the corpus has to be built."""
    corpus_seed: int = 0
    """Seed of the corpus generator."""
    out: Path = Path("runs/default_talk")
    """Training runs (stage folders vqvae/ and ar/, record.json)."""
    asterisk: bool = True
    """Train on the asterisk prompt recordings too (CC-BY-SA-3.0: the weights then carry that licence)."""
    preset: str = "small"
    """Model size preset."""
    seed: int = 0
    """Training seed (both stages)."""
    batch_size: int = 8
    """Windows per step."""
    vq_steps: int = 5000
    """Stage-1 steps."""
    vq_lr: float = 1e-3
    """Stage-1 peak learning rate."""
    fe_steps: int = 4000
    """Stage-1b (audio front-end pre-training) steps."""
    fe_batch_size: int = 16
    """Stage-1b windows per step (the front-end alone is cheap)."""
    fe_lr: float = 1e-3
    """Stage-1b peak learning rate."""
    frontend_lr_scale: float = 0.0
    """Stage-2 learning-rate factor of the pre-trained front-end (0: frozen)."""
    parallel: bool = True
    """Train stages 1 and 1b at the same time, one process each (they are independent; one core each)."""
    ar_steps: int = 4800
    """Stage-2 steps."""
    ar_lr: float = 1e-3
    """Stage-2 peak learning rate."""
    ar_depth: int | None = None
    """Stage-2 AR transformer blocks (None: the preset's)."""
    style_dropout: float = 0.2
    """Stage-2 style dropout (classifier-free guidance)."""
    ar_augment: bool = True
    """Stage-2 spectrum augmentation of the training audio (as stage 1b's)."""
    ar_audio_dropout: float = 0.1
    """Stage-2 audio dropout: windows trained on the null audio condition, for audio guidance."""
    ar_audio_posteriors: bool = True
    """Stage 2 conditions the generator on the front-end's phone posteriors and relative energy (--audio-posteriors)."""
    readout_context: int = 12
    """Mouth read-out trained after stage 2 (with ar_audio_posteriors): frames on each side it reads."""
    readout_epochs: int = 8
    """Passes of the read-out's training over the training frames."""
    readout_weight: float = 0.85
    """Share of the read-out in the shipped model's mouth (0: no read-out is trained)."""
    threads: int = 1
    """Torch CPU threads."""
    expected_codes: bool = True
    """Ship the model set to decode expected codes for the mouth
    (TalkConfig.expected_codes; measured better lip sync)."""
    audio_cfg_scale: float = 2.0
    """Audio guidance the shipped model uses (TalkConfig.audio_cfg_scale; needs ar_audio_dropout > 0; 1 = none)."""
    mouth_samples: int = 4
    """Decodings averaged for the mouth by the shipped model (TalkConfig.mouth_samples; 1 = none)."""
    write_assets: bool = True
    """Write the model and style clips into talk/assets/ (off for experiments)."""
    asset: Path = ASSETS / "default_talk.safetensors"
    """Where the trained model goes."""


def main(cfg: DefaultTalkConfig) -> None:
    record_path = cfg.out / "record.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    record["config"] = json.loads(json.dumps(cfg.__dict__, default=str))
    wall = record.setdefault("wall_s", {})

    t0 = time.perf_counter()
    if not (cfg.corpus / "manifest.jsonl").is_file():
        summary = build_corpus(CorpusConfig(out=cfg.corpus, hours=cfg.hours, seed=cfg.corpus_seed))
        record["corpus_build"] = summary
        wall["corpus"] = wall.get("corpus", 0.0) + time.perf_counter() - t0
    records = read_manifest(cfg.corpus)
    record["corpus"] = {"path": str(cfg.corpus), "hours_by_split": _hours(records), "clips": len(records)}
    data = DataConfig(corpus=cfg.corpus, exclude_speakers=() if cfg.asterisk else ("asterisk:",))
    common = TrainConfig(
        data=data,
        preset=cfg.preset,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        threads=cfg.threads,
        eval_every=300,
        ckpt_every=100,
    )

    first = [
        ("vqvae", replace(common, out=cfg.out / "vqvae", steps=cfg.vq_steps, lr=cfg.vq_lr), {}),
        (
            "frontend",
            replace(
                common,
                out=cfg.out / "frontend",
                steps=cfg.fe_steps,
                lr=cfg.fe_lr,
                batch_size=cfg.fe_batch_size,
                eval_every=500,
            ),
            {},
        ),
    ]
    if cfg.parallel:
        with multiprocessing.get_context("spawn").Pool(len(first)) as pool:
            walls = pool.starmap(_timed_stage, first)
    else:
        walls = [_timed_stage(*stage) for stage in first]
    ar = (
        "ar",
        replace(common, out=cfg.out / "ar", steps=cfg.ar_steps, lr=cfg.ar_lr),
        {
            "vqvae": cfg.out / "vqvae" / "vqvae.safetensors",
            "frontend": cfg.out / "frontend" / "frontend.safetensors",
            "frontend_lr_scale": cfg.frontend_lr_scale,
            "style_dropout": cfg.style_dropout,
            "augment": cfg.ar_augment,
            "audio_dropout": cfg.ar_audio_dropout,
            "ar_depth": cfg.ar_depth,
            "audio_posteriors": cfg.ar_audio_posteriors,
        },
    )
    walls.append(_timed_stage(*ar))
    for (name, _, _), seconds in zip([*first, ar], walls):
        if seconds is not None:
            wall[name] = wall.get(name, 0.0) + seconds
        record[name] = _final_rows(cfg.out / name)
    write_json(record_path, record)
    model_path = cfg.out / "ar" / "talk.safetensors"
    if not model_path.is_file():
        raise SystemExit(f"stage 2 did not finish ({model_path} missing); rerun to resume")
    if cfg.ar_audio_posteriors and cfg.readout_weight > 0:
        model_path = _readout(cfg, model_path, record)
        write_json(record_path, record)
    if cfg.write_assets:
        write_assets(cfg, model_path, record)
    write_json(record_path, record)
    print(json.dumps({k: record[k] for k in ("wall_s", "corpus", "vqvae", "frontend", "ar")}, indent=2))


STAGE_FILES = {"vqvae": "vqvae.safetensors", "frontend": "frontend.safetensors", "ar": "talk.safetensors"}


def _timed_stage(name: str, train, extra: dict) -> float | None:
    """Run one training stage (module-level, so a spawned process can); returns the seconds it trained,
    None when its model file already existed."""
    if (Path(train.out) / STAGE_FILES[name]).is_file():
        return None
    t = time.perf_counter()
    if name == "vqvae":
        train_vqvae.run(train_vqvae.VQVAETrainConfig(train=train, **extra))
    elif name == "frontend":
        train_frontend.run(train_frontend.FrontendTrainConfig(train=train, **extra))
    else:
        train_ar.run(train_ar.ARTrainConfig(train=train, **extra))
    return time.perf_counter() - t


def write_assets(cfg: DefaultTalkConfig, model_path: Path, record: dict) -> None:
    """The model with its training record in the metadata, and one held-out style clip per corpus style."""
    model = load_talk_checkpoint(model_path)
    if cfg.audio_cfg_scale != 1.0 and cfg.ar_audio_dropout <= 0.0:
        raise SystemExit("--audio-cfg-scale needs a model trained with --ar-audio-dropout above 0")
    model.cfg = replace(
        model.cfg,
        expected_codes=cfg.expected_codes,
        expected_channels=MOUTH_CHANNELS,
        audio_cfg_scale=cfg.audio_cfg_scale,
        mouth_samples=cfg.mouth_samples,
    )
    meta = {
        "trained_by": "scripts/train_default_talk.py",
        "training": json.dumps({k: record.get(k) for k in ("config", "corpus", "wall_s")}, default=str),
        "license": "CC-BY-SA-3.0 (trained on asterisk-core-sounds-en prompts, see LICENSE-default_talk.md)"
        if cfg.asterisk
        else "Apache-2.0 (trained only on TTS-derived material)",
    }
    save_talk_checkpoint(model, cfg.asset, meta)
    size = cfg.asset.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{cfg.asset} is {size / 2**20:.1f} MiB, over the 20 MiB budget")
    record["asset"] = {
        "path": str(cfg.asset),
        "bytes": size,
        "styles": write_style_clips(cfg.corpus, cfg.asset.parent / "styles", model.cfg.style_frames),
    }


def write_style_clips(corpus: Path, folder: Path, frames: int) -> dict:
    """For each style, ``frames`` frames of held-out synthetic speech (the most active stretch of the longest clip)."""
    out = {}
    held = [r for r in read_manifest(corpus, "heldout") if r.source != "recording"]
    for sid, style in enumerate(STYLES):
        group = sorted((r for r in held if r.style == sid), key=lambda r: (-r.duration, r.id))
        if not group:
            continue
        clip = load_clip(corpus, group[0])
        seg, start = most_active_segment(clip.motion, frames, JAW.start)
        save_npz(
            folder / f"{style.name}.npz",
            motion=seg.astype(np.float32),
            fps=np.int32(25),
            source=np.str_(f"{corpus.name}:{group[0].id}@{start}"),
        )
        out[style.name] = f"{group[0].id}@{start}"
    return out


def _hours(records) -> dict:
    hours: dict[str, float] = {}
    for r in records:
        key = f"{r.split}/{r.source if r.source == 'recording' else 'tts'}"
        hours[key] = round(hours.get(key, 0.0) + r.duration / 3600.0, 3)
    return hours


def _readout(cfg: DefaultTalkConfig, model_path: Path, record: dict) -> Path:
    """Train the mouth read-out of the stage-2 model (once; minutes) → its file."""
    out = cfg.out / "readout" / "talk.safetensors"
    if not out.is_file():
        t = time.perf_counter()
        readout.run(
            readout.ReadoutConfig(
                model=model_path,
                out=out,
                corpus=cfg.corpus,
                context=cfg.readout_context,
                weight=cfg.readout_weight,
                epochs=cfg.readout_epochs,
                seed=cfg.seed,
                threads=cfg.threads,
            )
        )
        record["wall_s"]["readout"] = time.perf_counter() - t
    return out


def _final_rows(out: Path) -> dict:
    """The last training and evaluation rows of a stage's log."""
    log = out / "log.jsonl"
    if not log.is_file():
        return {}
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    train = [r for r in rows if "loss" in r]
    evals = [r for r in rows if any(k.startswith("eval/") for k in r)]
    return {
        "last_train": train[-1] if train else None,
        "first_train": train[0] if train else None,
        "last_eval": evals[-1] if evals else None,
    }


if __name__ == "__main__":
    main(tyro.cli(DefaultTalkConfig))
