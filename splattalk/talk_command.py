"""``splattalk talk``: run the talk model on an audio file and write the motion.

Imported when the command runs (``splattalk.cli`` loads it lazily), so torch is imported at the top.
"""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import torch

from splattalk.atomic import save_npz
from splattalk.commands import TalkCommand
from splattalk.errors import SplattalkError
from splattalk.head.params import MOTION_FPS
from splattalk.models import default_threads, for_run, resolve_model, run_style
from splattalk.talk.audio import load_audio
from splattalk.talk.inference import generate
from splattalk.talk.style import load_style_clip


def run(cmd: TalkCommand) -> int:
    if cmd.mouth_samples is not None and cmd.mouth_samples < 1:
        raise SplattalkError(
            f"--mouth-samples must be at least 1 (1 = one decoding, as ARTalk), got {cmd.mouth_samples}"
        )
    if cmd.readout_weight is not None and not 0.0 <= cmd.readout_weight <= 1.0:
        raise SplattalkError(f"--readout-weight must be in [0, 1] (0 = the generator alone), got {cmd.readout_weight}")
    if cmd.run is not None and not cmd.run.is_dir():
        raise SplattalkError(f"--run {cmd.run} is not a folder: pass a run folder made by `splattalk track`")
    audio = load_audio(cmd.audio)
    model = for_run(resolve_model(cmd.checkpoint), cmd.run, cmd.checkpoint)
    cfg = model.cfg
    threads = default_threads(model, cmd.threads)
    if threads is not None:
        torch.set_num_threads(threads)
    if cmd.readout_weight and model.readout is None:
        raise SplattalkError(
            "--readout-weight: this model has no mouth read-out (python -m splattalk.talk.training.readout fits one)"
        )
    if cmd.style is not None:
        style = load_style_clip(cmd.style, cfg.motion_dim, cfg.style_frames)
    else:
        style = run_style(cmd.run, model) if cmd.run_style else None
    start = time.perf_counter()
    motion = generate(
        model,
        audio,
        style=style,
        seed=cmd.seed,
        cfg_scale=cmd.cfg_scale,
        temperature=cmd.temperature,
        smooth=cmd.smooth,
        progress=True,
        expected_codes=cmd.expected_codes,
        audio_cfg_scale=cmd.audio_cfg_scale,
        mouth_samples=cmd.mouth_samples,
        readout_weight=cmd.readout_weight,
        pause_closure=cmd.pause_closure,
    )
    elapsed = time.perf_counter() - start
    config = {"command": dataclasses.asdict(cmd), "model": dataclasses.asdict(cfg)}
    save_npz(
        cmd.out,
        motion=motion.astype(np.float32),
        fps=np.int32(MOTION_FPS),
        head_model=np.str_(cfg.head_model),
        expr_dim=np.int32(cfg.expr_dim),
        config=np.str_(json.dumps(config, default=str)),
    )
    seconds = audio.shape[0] / 16000
    print(
        f"wrote {cmd.out}: {motion.shape[0]} frames × {motion.shape[1]} ({cfg.head_model}, {cfg.name} model), "
        f"{seconds:.1f} s of audio in {elapsed:.1f} s ({seconds / max(elapsed, 1e-9):.1f}× real time)"
    )
    return 0
