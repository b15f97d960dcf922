"""What both training stages share: the run configuration, the step loop, resumable checkpoints, DDP.

* Resumable state: ONE safetensors file ``OUT/state.safetensors`` holding the
  model (``model/…``), the optimizer (``optim/<param>/<key>``), the torch RNG
  states (``rng/…``) and, in its metadata, the step and the run's config.
  Written atomically (tmp + rename) by rank 0 every ``ckpt_every`` steps and at
  the end; a rerun with the same ``--out`` resumes from it. The data order and
  every augmentation draw are pure functions of (seed, epoch, item), so a
  resumed run computes exactly what an uninterrupted one does.
* DDP: under ``torchrun`` (``WORLD_SIZE`` > 1) the process group is set up from
  the environment (NCCL on CUDA, Gloo on CPU), the loss module is wrapped in
  ``DistributedDataParallel`` and each rank takes every ``world``-th item of each
  global batch; only rank 0 writes files or shows progress.
* Learning rate: linear warm-up, then cosine decay to ``min_lr_ratio``, a pure
  function of the step (no scheduler state to save).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from splattalk.atomic import atomic_path, write_json
from splattalk.errors import SplattalkError
from splattalk.talk.checkpoint import save_talk_checkpoint
from splattalk.talk.training.dataset import DataConfig

STATE_FILE = "state.safetensors"
"""Name of the resumable training state inside the run folder."""
STATE_FORMAT = "splattalk-talk-train-v1"


@dataclass(frozen=True)
class TrainConfig:
    """Options every training stage shares."""

    out: Path = Path("runs/talk")
    """Run folder: config.json, log.jsonl, state.safetensors (resumable) and the stage's model file."""
    data: DataConfig = DataConfig()
    """Training material."""
    preset: str = "small"
    """Model size preset of talk/config.py (official, small, tiny)."""
    steps: int = 2000
    """Optimizer steps in total (a resumed run continues up to this many)."""
    batch_size: int = 16
    """Windows per step and rank (the global batch is batch_size × ranks)."""
    lr: float = 1e-3
    """Peak learning rate (AdamW)."""
    min_lr_ratio: float = 0.05
    """Learning rate at the last step, as a fraction of the peak (cosine decay)."""
    warmup: int = 100
    """Steps of linear warm-up."""
    weight_decay: float = 0.01
    """AdamW weight decay (not applied to biases, norms and embeddings)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0: no clipping)."""
    seed: int = 0
    """Seed of the initialisation, the data order, augmentation and dropout."""
    threads: int = 1
    """CPU threads for torch (small models gain nothing from more on a shared machine)."""
    device: str = "auto"
    """"auto" (CUDA when present), "cpu" or "cuda"."""
    ckpt_every: int = 200
    """Write the resumable state every this many steps."""
    log_every: int = 20
    """Append averaged losses to log.jsonl every this many steps."""
    eval_every: int = 500
    """Evaluate on held-out windows every this many steps (0: only at the end)."""
    eval_windows: int = 64
    """Held-out windows per evaluation."""
    stop_at: int | None = None
    """Stop after this step (state saved, as if interrupted); rerun to continue. None: run to `steps`."""
    progress: bool = True
    """Show a progress bar (rank 0)."""


# ---- distributed -----------------------------------------------------------------------


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(cfg: TrainConfig) -> Dist:
    """Threads, seeds, device, and the process group when launched by ``torchrun``."""
    torch.set_num_threads(max(1, cfg.threads))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    device = torch.device(f"cuda:{local}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    torch.manual_seed(cfg.seed)
    return Dist(rank, world, device)


def teardown() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def wrap(module: nn.Module, dist: Dist) -> nn.Module:
    if dist.world == 1:
        return module
    ids = [dist.device.index] if dist.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def barrier(dist: Dist) -> None:
    if dist.world > 1:
        torch.distributed.barrier()


# ---- optimisation -----------------------------------------------------------------------


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate of optimizer step ``step`` (0-based)."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def make_optimizer(
    params: list[tuple[str, nn.Parameter]], cfg: TrainConfig, lr_scales: dict[str, float] | None = None
) -> torch.optim.AdamW:
    """AdamW; matrices decay, vectors (biases, norms) and embeddings/positions do not.

    ``lr_scales`` maps a parameter-name prefix to a factor on the learning rate
    of the parameters under it (each group's ``lr_scale``; ``train_loop`` applies it).
    """
    lr_scales = lr_scales or {}

    def scale(name: str) -> float:
        return next((f for prefix, f in lr_scales.items() if name.startswith(prefix)), 1.0)

    groups: dict[tuple[bool, float], list[nn.Parameter]] = {
        (True, 1.0): [],
        (False, 1.0): [],
    }  # the order resumed states expect
    for n, p in params:
        decays = p.ndim >= 2 and "embed" not in n and "null_style" not in n
        groups.setdefault((decays, scale(n)), []).append(p)
    return torch.optim.AdamW(
        [
            {"params": ps, "weight_decay": cfg.weight_decay if decays else 0.0, "lr_scale": f}
            for (decays, f), ps in groups.items()
        ],
        lr=cfg.lr,
        betas=(0.9, 0.95),
    )


# ---- resumable state --------------------------------------------------------------------


def save_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int, config: dict) -> None:
    """Model + optimizer + RNG states + step, as one safetensors file, atomically."""
    tensors = {f"model/{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for pid, state in opt["state"].items():
        for key, value in state.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"optim/{pid}/{key}"] = t.detach().cpu().contiguous()
    tensors["rng/torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda{i}"] = s
    groups = [{k: v for k, v in g.items()} for g in opt["param_groups"]]
    meta = {
        "format": STATE_FORMAT,
        "step": str(step),
        "param_groups": json.dumps(groups),
        "config": json.dumps(config, default=str),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Restore what :func:`save_state` wrote; returns the step to continue from."""
    try:
        with safe_open(str(path), "pt") as f:
            meta = dict(f.metadata() or {})
        tensors = load_file(str(path))
    except Exception as err:  # noqa: BLE001
        raise SplattalkError(f"cannot read training state {path} ({err}); delete it to start over") from None
    if meta.get("format") != STATE_FORMAT:
        raise SplattalkError(f"{path} is not a talk training state (format {meta.get('format')!r})")
    model_state = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    try:
        model.load_state_dict(model_state, strict=True)
    except RuntimeError as err:
        raise SplattalkError(
            f"training state {path} belongs to another model ({str(err)[:300]}); use a new --out"
        ) from None
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim/"):
            _, pid, key = k.split("/", 2)
            state.setdefault(int(pid), {})[key] = v
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    torch.set_rng_state(tensors["rng/torch"])
    cuda = (
        [tensors[f"rng/cuda{i}"] for i in range(torch.cuda.device_count()) if f"rng/cuda{i}" in tensors]
        if torch.cuda.is_available()
        else []
    )
    if cuda:
        torch.cuda.set_rng_state_all(cuda)
    return int(meta["step"])


def config_dict(cfg) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


# ---- the loop ---------------------------------------------------------------------------


class Log:
    """Averages scalars between writes; rank 0 appends them to ``log.jsonl``."""

    def __init__(self, path: Path, main: bool):
        self.path, self.main, self.sums, self.count, self.t0 = path, main, {}, 0, time.perf_counter()

    def add(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.count += 1

    def write(self, step: int, extra: dict | None = None) -> dict:
        row = {"step": step, "time_s": round(time.perf_counter() - self.t0, 1)}
        row.update({k: v / max(1, self.count) for k, v in self.sums.items()})
        row.update(extra or {})
        if self.main:
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")
        self.sums, self.count = {}, 0
        return row


def train_loop(
    cfg: TrainConfig,
    dist: Dist,
    loss_module: nn.Module,
    dataset,
    config: dict,
    evaluate: Callable[[int], dict] | None = None,
    desc: str = "train",
) -> int:
    """Run optimizer steps until ``cfg.steps`` (or ``cfg.stop_at``); returns the last step done.

    ``loss_module(batch)`` returns ``(loss, {name: float})``; it holds the whole model
    (and any training-only heads), so its state is what the resumable state saves, its
    parameters that require grad are what the optimizer trains, and it is what DDP wraps.
    """
    out = Path(cfg.out)
    params = [(n, p) for n, p in loss_module.named_parameters() if p.requires_grad]
    optimizer = make_optimizer(params, cfg, getattr(loss_module, "lr_scales", None))
    step = 0
    state_path = out / STATE_FILE
    if state_path.is_file():
        step = load_state(state_path, loss_module, optimizer)
    barrier(dist)
    if dist.main:
        write_json(out / "config.json", config)
    ddp = wrap(loss_module, dist)
    last = cfg.steps if cfg.stop_at is None else min(cfg.steps, cfg.stop_at)
    log = Log(out / "log.jsonl", dist.main)
    bar = None
    if dist.main and cfg.progress and step < last:
        bar = tqdm(total=last, initial=step, desc=desc, unit="step", dynamic_ncols=True, mininterval=1.0)
    ema = None
    trainable = [p for _, p in params]
    while step < last:
        epoch, idx = dataset.batch_indices(step, cfg.batch_size, dist.rank, dist.world)
        batch = {k: v.to(dist.device) for k, v in dataset.batch(epoch, idx).items()}
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg) * group.get("lr_scale", 1.0)
        loss_module.train()
        loss, values = ddp(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            values["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip))
        optimizer.step()
        step += 1
        log.add(values)
        ema = values["loss"] if ema is None else 0.95 * ema + 0.05 * values["loss"]
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{ema:.4f}", lr=f"{lr_at(step - 1, cfg):.2e}")
        if step % cfg.log_every == 0 or step == last:
            log.write(step, {"lr": lr_at(step - 1, cfg), "epoch": epoch})
        if evaluate is not None and ((cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.steps):
            if dist.main:
                row = evaluate(step)
                log.write(step, {f"eval/{k}": v for k, v in row.items()})
                if bar is not None:
                    bar.write(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()))
            barrier(dist)
        if step % cfg.ckpt_every == 0 or step == last:
            if dist.main:
                save_state(state_path, loss_module, optimizer, step, config)
            barrier(dist)
    if bar is not None:
        bar.close()
    return step


def seeded_eval_indices(n_items: int, count: int, seed: int) -> np.ndarray:
    """A fixed spread of held-out items (the same at every evaluation)."""
    rng = np.random.default_rng([seed, 99])
    return np.sort(rng.permutation(n_items)[: min(count, n_items)])


def heldout_evaluator(
    cfg: TrainConfig, dist: Dist, held, evaluate_batch: Callable[[dict], dict]
) -> Callable[[int], dict] | None:
    """The ``evaluate(step)`` that ``train_loop`` calls: ``evaluate_batch`` on the same seeded held-out windows
    every time, moved to the run's device; None without held-out data."""
    if held is None:
        return None
    idx = seeded_eval_indices(len(held), cfg.eval_windows, cfg.seed)

    def evaluate(step: int) -> dict:
        return evaluate_batch({k: v.to(dist.device) for k, v in held.batch(0, idx).items()})

    return evaluate


def finish_stage(cfg: TrainConfig, dist: Dist, model: nn.Module, filename: str, stage: str) -> Path:
    """After ``train_loop``: rank 0 writes the stage's model file ``OUT/filename`` (only once every step
    is done, not after ``stop_at``), the process group ends; returns the file's path."""
    path = Path(cfg.out) / filename
    if dist.main and (cfg.stop_at is None or cfg.stop_at >= cfg.steps):
        save_talk_checkpoint(model.cpu().eval(), path, {"stage": stage})
    teardown()
    return path


def set_motion_stats(model: nn.Module, mean: np.ndarray, std: np.ndarray) -> None:
    """The training data's per-channel motion mean/std into the VQ-VAE's and the style encoder's buffers."""
    for mod in (model.basic_vae, model.style_encoder):
        mod.motion_mean.copy_(torch.as_tensor(mean))
        mod.motion_std.copy_(torch.as_tensor(std))


def frame_phone_loss(logits: torch.Tensor, phone: torch.Tensor) -> tuple[torch.Tensor, float] | None:
    """Cross-entropy and accuracy of frame phone ``logits [B, W, P]`` against ``phone [B, W]`` over the
    labelled frames (``phone >= 0``); None when no frame is labelled."""
    known = phone >= 0
    if not bool(known.any()):
        return None
    logits, target = logits[known], phone[known]
    return F.cross_entropy(logits.float(), target), float((logits.argmax(-1) == target).float().mean())
