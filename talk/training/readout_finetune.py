"""Fine-tune a model's mouth read-out on real (speech, tracked mouth) pairs.

The read-out (``talk/readout.py``) maps the frozen front-end's phone posteriors to the mouth and jaw
columns. Trained on the TTS corpus, it learned the corpus' viseme rules; here it continues from those
weights on pairs whose motion is a real person's tracked mouth, with the loss of each channel scaled
by that channel's spread in the real data. The rest of the model is untouched, so the generator, the
front-end and streaming latency stay as they were.

The fine-tuned model records the clips it learned from in its metadata (``real_training_clips``, a JSON
list of clip names): ``scripts/eval_real_lipsync.py`` then scores only clips sharing neither speaker nor
address with them.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from splattalk.atomic import atomic_path
from splattalk.errors import SplattalkError
from splattalk.talk.readout import context_stack
from splattalk.talk.training.readout import window_features


def tracked_motion(tracks: dict, frames: int | None = None) -> np.ndarray:
    """A tracking run's ``tracks`` (at 25 fps) → motion ``[T, E + 6]`` (expression, zero rotation, jaw): the
    layout the talk model predicts; the head rotation is not a mouth channel, so it is left at zero."""
    if abs(float(tracks["fps"]) - 25.0) > 1e-6:
        raise SplattalkError(
            f"tracks at {float(tracks['fps'])} fps; the talk model runs at 25 fps: track with --fps 25"
        )
    expr, jaw = np.asarray(tracks["expr"], np.float32), np.asarray(tracks["jaw"], np.float32)
    motion = np.concatenate([expr, np.zeros((len(expr), 3), np.float32), jaw], axis=1)
    return motion if frames is None else motion[:frames]


def readout_pairs(model, clips) -> tuple[torch.Tensor, torch.Tensor]:
    """``clips``: iterable of ``(audio [S], motion [T, D])`` → the read-out's stacked inputs ``[N, F]`` and the
    targets ``[N, C]`` (the read-out channels of the motion), frame by frame."""
    xs, ys = [], []
    channels = list(model.cfg.readout_channels)
    for audio, motion in clips:
        T = min(len(motion), -(-len(audio) // 640))
        feat = context_stack(window_features(model, audio, T), model.cfg.readout_context)
        xs.append(feat.reshape(-1, feat.shape[-1])[:T].float())
        ys.append(torch.from_numpy(np.asarray(motion, np.float32)[:T, channels]))
    if not xs:
        raise SplattalkError("no clips to fine-tune the read-out on")
    return torch.cat(xs), torch.cat(ys)


def finetune_readout(
    model,
    clips,
    epochs: int = 20,
    lr: float = 3e-4,
    batch_size: int = 128,
    seed: int = 0,
    weight: float | None = None,
    state_path: Path | None = None,
    on_epoch=None,
):
    """A copy of ``model`` whose read-out continued training on ``clips`` (``(audio, motion)`` pairs, motion in the
    model's layout); ``weight``: a new ``readout_weight`` (None: keep). Returns ``(model, summary)``.

    ``state_path``: after every epoch the read-out, optimiser and random states are written there (atomically);
    a later call with the same settings resumes from it and ends bit for bit where an uninterrupted one would.
    ``on_epoch(epoch)`` is called after each epoch is saved (for progress, or to stop)."""
    if getattr(model, "readout", None) is None:
        raise SplattalkError(
            "this talk model has no mouth read-out to fine-tune (train one with talk/readout.py first)"
        )
    if epochs < 1 or lr <= 0 or batch_size < 1:
        raise SplattalkError(f"epochs and batch size must be ≥ 1 and lr > 0, got {epochs}, {batch_size}, {lr}")
    x, y = readout_pairs(model, clips)
    tuned = copy.deepcopy(model)
    if weight is not None:
        tuned.cfg = replace(tuned.cfg, readout_weight=float(weight))
    net = tuned.readout.net.train()
    scale = y.std(0).clamp_min(1e-4)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    key = {
        "frames": len(x),
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "seed": seed,
        "weight": weight,
        "target_sum": float(y.double().sum()),
    }
    done, first, last = 0, None, None
    if state_path is not None and Path(state_path).is_file():
        try:
            state = torch.load(state_path, weights_only=False)
        except Exception:  # noqa: BLE001 - a state file that cannot be read is started over, not trusted
            state = None
        if state is not None and state.get("key") == key:
            net.load_state_dict(state["net"])
            opt.load_state_dict(state["opt"])
            g.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            done, first, last = state["epoch"], state["first"], state["last"]
    with torch.enable_grad():
        for epoch in range(done, epochs):
            order = torch.randperm(len(x), generator=g)
            for i in range(0, len(x), batch_size):
                b = order[i : i + batch_size]
                loss = (((net(x[b]) - y[b]) / scale) ** 2).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                first = loss.item() if first is None else first
                last = loss.item()
            if state_path is not None:
                state = {
                    "key": key,
                    "net": net.state_dict(),
                    "opt": opt.state_dict(),
                    "generator": g.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "epoch": epoch + 1,
                    "first": first,
                    "last": last,
                }
                with atomic_path(state_path) as tmp:
                    torch.save(state, tmp)
            if on_epoch is not None:
                on_epoch(epoch + 1)
    net.eval()
    return tuned.eval(), {
        "frames": len(x),
        "epochs": epochs,
        "lr": lr,
        "first_loss": first,
        "last_loss": last,
        "resumed_at_epoch": done,
    }
