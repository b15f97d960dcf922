"""``splattalk fit RUN``: optimise Gaussians bound to the head mesh so they reproduce the tracked video.

Each iteration renders one training frame: the frame's tracked parameters pose
the mesh, the mesh poses the Gaussians (``avatar.binding``), the rasterizer
(gsplat on CUDA, our CPU kernels otherwise) draws them over the background, and
L1 + 0.2·D-SSIM against the masked frame plus the binding regularisers is
minimised with Adam; a density-control strategy (``avatar.densify.DensifyStrategy``)
then clones/splits and prunes Gaussians on its schedule. The last 10 % of frames
never train: PSNR/SSIM on them go to ``RUN/avatar/metrics.json``. Checkpoints make
the stage resumable (see ``avatar.checkpoint``); outputs are ``avatar.safetensors``,
``canonical.ply`` and ``config.json`` in ``RUN/avatar/``.
"""

from __future__ import annotations

import os

# Idle OpenMP workers (torch's and Numba's) must sleep, not spin: on a busy 2-core machine
# spinning workers slowed an iteration 3-5x. Read when the runtimes start, so before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import dataclasses  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from splattalk.atomic import save_npz, write_json
from splattalk.avatar import checkpoint as ckpt
from splattalk.avatar.binding import face_frames, pose_gaussians
from splattalk.avatar.dataset import FitData, load_run
from splattalk.avatar.densify import DensifyStrategy
from splattalk.avatar.evaluate import evaluate, write_preview
from splattalk.avatar.fit_config import FitConfig
from splattalk.avatar.headmask import cut_to_head, head_faces
from splattalk.avatar.init import face_regions, initial_gaussians
from splattalk.avatar.io import load_head_model, save_avatar, save_ply
from splattalk.avatar.losses import binding_regularizer, photometric
from splattalk.avatar.model import Avatar, animate
from splattalk.avatar.optim import GaussianParams
from splattalk.avatar.pyramid import coarse_camera, has_coarse_level, is_coarse, training_view
from splattalk.avatar.refine import FrameCorrections
from splattalk.avatar.retrack import RetrackSettings, frame_rows, refine_frames
from splattalk.avatar.view import Camera, render_gaussians
from splattalk.errors import SplattalkError
from splattalk.head.params import HeadParams
from splattalk.run import PER_FRAME, RunLayout

CPU_MAX_GAUSSIANS = 25_000
GPU_MAX_GAUSSIANS = 100_000
LR_DECAY = {"local_means": 0.01}
"""Final learning rate as a fraction of the first, per parameter (the rest stay constant)."""
SH_DEGREE_EVERY = 500
"""Iterations between raising the active SH degree by one (3DGS warms colours up from degree 0)."""
RESULT_FIELDS = tuple(
    f.name
    for f in dataclasses.fields(FitConfig)
    if f.name not in ("checkpoint_every", "eval_every", "preview_every", "retrack_steps")
)
"""Settings a checkpoint must share to be resumed (bookkeeping cadence and the after-fit held-out refinement,
which leaves the Gaussians alone, may change between runs)."""


def resolve_device(cfg: FitConfig) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and cfg.backend != "cpu" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise SplattalkError("--device cuda was asked for but torch sees no CUDA device; use --device cpu")
        return torch.device("cuda")
    if cfg.backend == "gsplat":
        raise SplattalkError("--backend gsplat needs CUDA; on this machine use --backend cpu (or auto)")
    return torch.device("cpu")


@dataclasses.dataclass
class Fitting:
    """What the loop works on (rebuilt identically on every run; the checkpoint restores the evolving parts)."""

    cfg: FitConfig
    data: FitData
    head: object
    camera: Camera
    device: torch.device
    vertices: torch.Tensor
    """[T, V, 3] tracked vertices of every frame (the corrections, when on, replace a training frame's)"""
    face_size: torch.Tensor
    """[F] triangle sizes on the rest mesh"""
    head_size: float
    """diagonal of the carrying part of the rest mesh (metres)"""
    max_gaussians: int

    def pose(self, params: GaussianParams, vertices: torch.Tensor):
        return pose_gaussians(params.bound(), face_frames(vertices, self.head.faces.to(vertices.device)))


def prepare(run_dir: Path, cfg: FitConfig, progress: bool) -> Fitting:
    device = resolve_device(cfg)
    if not 0 < cfg.holdout_fraction < 1:
        raise SplattalkError(f"--holdout-fraction must be between 0 and 1, got {cfg.holdout_fraction}")
    if not 0 <= cfg.coarse_fraction <= 1:
        raise SplattalkError(f"--coarse-fraction must be between 0 and 1, got {cfg.coarse_fraction}")
    if not 0 <= cfg.sh_degree <= 3:
        raise SplattalkError(f"--sh-degree must be 0..3, got {cfg.sh_degree}")
    data = load_run(run_dir, cfg.resolution, cfg.holdout_fraction, cfg.background, progress=progress)
    head = load_head_model(data.head_model)
    with torch.no_grad():
        vertices = head(shape=data.shape, **data.params.torch_kwargs()).vertices
        rest = head(shape=data.shape).vertices[0]
    carry, _ = face_regions(head)
    if cfg.head_only:  # the avatar has no body: the matte's shoulders and clothes are not its target
        data.targets, data.masks = cut_to_head(
            data.targets,
            data.masks,
            data.background,
            vertices,
            head_faces(head, data.shape, carry),
            data.viewmat,
            data.K,
        )
    carried = rest[torch.from_numpy(head.faces_np[carry]).reshape(-1)]
    head_size = float((carried.amax(0) - carried.amin(0)).norm())
    max_gaussians = cfg.max_gaussians or (GPU_MAX_GAUSSIANS if device.type == "cuda" else CPU_MAX_GAUSSIANS)
    camera = Camera(data.viewmat, data.K, data.width, data.height).to(device)
    face_size = face_frames(rest, head.faces).scale.cpu()
    return Fitting(cfg, data, head.to(device), camera, device, vertices.to(device), face_size, head_size, max_gaussians)


def initialise(f: Fitting, seed: int) -> GaussianParams:
    cfg, data = f.cfg, f.data
    train = data.train_ids
    picks = train[np.linspace(0, len(train) - 1, min(cfg.init_frames, len(train))).round().astype(int)]
    frames = [
        {
            "image": data.target(int(i)).numpy(),
            "mask": data.masks[int(i)].numpy().astype(np.float32) / 255.0,
            "vertices": f.vertices[int(i)].cpu().double().numpy(),
            "K": data.K.double().numpy(),
            "viewmat": data.viewmat.double().numpy(),
        }
        for i in picks
    ]
    bound = initial_gaussians(
        f.head.cpu(),
        data.shape,
        f.vertices[picks].cpu(),
        frames,
        cfg.init_gaussians,
        cfg.init_opacity,
        cfg.sh_degree,
        np.random.default_rng(seed),
    )
    f.head.to(f.device)
    lrs = {
        "local_means": cfg.lr_means,
        "local_quats": cfg.lr_quats,
        "log_scales": cfg.lr_scales,
        "opacity_logits": cfg.lr_opacity,
        "sh_dc": cfg.lr_sh,
        "sh_rest": cfg.lr_sh / 20,
    }
    return GaussianParams(bound, lrs, f.device)


def fit(
    run_dir: str | Path,
    cfg: FitConfig = FitConfig(),
    *,
    restart: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict:
    """Fit (or resume fitting) the avatar of ``run_dir``; returns the summary written to ``RUN/avatar/config.json``.

    ``stop_after`` ends the process early after that iteration's bookkeeping, as a kill would (tests).
    """
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _fit(Path(run_dir), cfg, restart, progress, stop_after)
    finally:
        torch.set_num_threads(threads)


def _fit(run_dir: Path, cfg: FitConfig, restart: bool, progress: bool, stop_after: int | None) -> dict:
    out = run_dir / "avatar"
    start_wall = time.perf_counter()
    f = prepare(run_dir, cfg, progress)
    tracks_file = RunLayout(run_dir).tracks
    key = ckpt.fit_key(
        {k: getattr(cfg, k) for k in RESULT_FIELDS}, f"{tracks_file.stat().st_size}:{tracks_file.stat().st_mtime_ns}"
    )
    state = None if restart else ckpt.load_checkpoint(out / "checkpoint.pt", key)
    generator = torch.Generator().manual_seed(cfg.seed)
    corrections = FrameCorrections(f.data.params, cfg.lr_tracking, cfg.tracking_weight) if cfg.refine_tracking else None
    if state is not None and state["iteration"] >= cfg.iterations:
        done = _finished_summary(out, key, cfg.retrack_steps)
        if done is not None:  # nothing left to do: the outputs of this very fit are on disk
            return done
    strategy = DensifyStrategy(
        f.face_size,
        f.head_size,
        generator,
        f.max_gaussians,
        densify_from=cfg.densify_from,
        densify_until=int(cfg.densify_until * cfg.iterations),
        every=cfg.densify_every,
        grad_threshold=cfg.grad_threshold,
        dense_fraction=cfg.dense_fraction,
        prune_opacity=cfg.prune_opacity,
        prune_size=cfg.prune_size,
    )
    if state is None:
        params = initialise(f, cfg.seed)
        strategy.initialize(params.num)
        start, history, elapsed = 0, [], 0.0
    else:
        params = GaussianParams.from_state_dict(state["params"], f.device)
        strategy.load_state_dict(state["stats"])
        generator.set_state(state["generator"])
        if corrections is not None:
            corrections.load_state_dict(state["corrections"])
        start, history, elapsed = state["iteration"], state["history"], state["elapsed"]
    background = f.data.background.to(f.device)

    def save(iteration: int) -> None:
        ckpt.save_checkpoint(
            out / "checkpoint.pt",
            {
                "key": key,
                "iteration": iteration,
                "params": params.state_dict(),
                "stats": strategy.state_dict(),
                "generator": generator.get_state(),
                "corrections": corrections.state_dict() if corrections is not None else None,
                "history": history,
                "elapsed": elapsed + time.perf_counter() - t_resume,
            },
        )

    t_resume = start_wall  # timings count this run's loading and initialisation too
    bar = tqdm(total=cfg.iterations, initial=start, desc="fit", unit="it", disable=not progress, dynamic_ncols=True)
    loss_ema = psnr_ema = None
    for it in range(start + 1, cfg.iterations + 1):
        params.set_learning_rates(it, cfg.iterations, LR_DECAY)
        frame = int(f.data.train_ids[torch.randint(len(f.data.train_ids), (1,), generator=generator).item()])
        rows = None
        if corrections is not None:
            rows = corrections.rows(frame)
            vertices = f.head(
                shape=f.data.shape.to(f.device),
                **{k: v.to(f.device) for k, v in corrections.head_kwargs(frame, rows).items()},
            ).vertices[0]
        else:
            vertices = f.vertices[frame]
        g = f.pose(params, vertices)
        degree = min(cfg.sh_degree, (it - 1) // SH_DEGREE_EVERY)
        coarse = is_coarse(it, cfg.iterations, cfg.coarse_fraction, f.camera.width, f.camera.height)
        camera, target = training_view(f.camera, f.data.target(frame, f.device), coarse)
        rgb, alpha, info = render_gaussians(g, camera, background, cfg.backend, degree, return_info=True)
        loss = photometric(rgb, target, cfg.ssim_weight)
        if cfg.alpha_weight:
            matte = f.data.masks[frame].to(f.device, torch.float32)[..., None] / 255.0
            matte = training_view(f.camera, matte, coarse)[1]
            loss = loss + cfg.alpha_weight * (alpha - matte).abs().mean()
        loss_total = loss + binding_regularizer(
            params.bound(), cfg.offset_weight, cfg.offset_threshold, cfg.scale_weight, cfg.scale_threshold
        )
        loss_total.backward()
        params.step()
        if corrections is not None:
            corrections.step(frame, rows)
        # After the optimizer step, as every fit so far: densification edits the stepped Gaussians.
        strategy.step_post_backward(params, it, info)

        with torch.no_grad():
            mse = torch.mean((rgb.detach() - target) ** 2).item()
        train_psnr = -10 * np.log10(max(mse, 1e-12))
        loss_ema = loss.item() if loss_ema is None else 0.95 * loss_ema + 0.05 * loss.item()
        psnr_ema = train_psnr if psnr_ema is None else 0.95 * psnr_ema + 0.05 * train_psnr
        if it % cfg.eval_every == 0 or it == cfg.iterations:
            metrics = evaluate(f, params, background, frames=f.data.test_ids)
            history.append(
                {
                    "iteration": it,
                    "seconds": round(elapsed + time.perf_counter() - t_resume, 2),
                    "psnr": round(metrics["psnr"], 3),
                    "ssim": round(metrics["ssim"], 5),
                    "gaussians": params.num,
                }
            )
        if (cfg.preview_every and it % cfg.preview_every == 0) or it == cfg.iterations:
            write_preview(out / "previews" / f"iter_{it:06d}.png", f, params, background)
        bar.set_postfix_str(
            f"loss {loss_ema:.4f} train {psnr_ema:.1f} dB"
            + (f" held-out {history[-1]['psnr']:.2f} dB" if history else "")
            + f" N {params.num}"
        )
        bar.update(1)
        if it % cfg.checkpoint_every == 0 or it == cfg.iterations:
            save(it)
        if stop_after is not None and it >= stop_after:
            bar.close()
            raise KeyboardInterrupt(f"stopped after iteration {it}")
    bar.close()
    elapsed += time.perf_counter() - t_resume
    return finish(f, params, corrections, history, elapsed, time.perf_counter() - start_wall, out, key, progress)


def retrack_heldout(
    f: Fitting, params: GaussianParams, background: torch.Tensor, out: Path, progress: bool = False
) -> dict:
    """Refine the held-out frames' tracks against their images (the avatar frozen), save them to
    ``out/retracked.npz`` and score the held-out frames with them; returns that score."""
    start = time.perf_counter()
    data, cfg = f.data, f.cfg
    coarse = has_coarse_level(f.camera.width, f.camera.height)
    camera = coarse_camera(f.camera) if coarse else f.camera

    def target(i: int) -> torch.Tensor:
        return training_view(f.camera, data.target(i, f.device), coarse)[1]

    refined = refine_frames(
        f.head,
        data.shape.to(f.device),
        params.bound(),
        data.params,
        data.test_ids,
        camera,
        target,
        background,
        RetrackSettings(steps=cfg.retrack_steps),
        cfg.backend,
        cfg.sh_degree,
        progress=progress,
    )
    save_npz(out / "retracked.npz", **frame_rows(refined, data.test_ids))
    with torch.no_grad():
        rows = refined.slice(np.asarray(data.test_ids))
        vertices = f.vertices.clone()
        vertices[torch.as_tensor(data.test_ids)] = f.head(
            shape=data.shape.to(f.device), **rows.torch_kwargs(device=f.device)
        ).vertices.to(vertices.dtype)
    score = evaluate(dataclasses.replace(f, vertices=vertices), params, background, data.test_ids, per_frame=True)
    score["steps"] = cfg.retrack_steps
    score["seconds"] = round(time.perf_counter() - start, 2)
    return score


def fit_run(run_dir: str | Path, cfg: FitConfig = FitConfig(), progress: bool = True) -> dict:
    """Pipeline entry (``splattalk demo``): fit, resume, or reuse a finished fit with the same settings."""
    return fit(run_dir, cfg, progress=progress)


def _finished_summary(out: Path, key: str, retrack_steps: int) -> dict | None:
    try:
        summary = json.loads((out / "config.json").read_text())
        summary["metrics"] = json.loads((out / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    if summary.get("config", {}).get("retrack_steps", 0) != retrack_steps:
        return None  # the same Gaussians, another held-out refinement: only finish() runs again
    if summary.get("key") != key or not (out / "avatar.safetensors").is_file() or not (out / "canonical.ply").is_file():
        return None  # written by another fit (or this one was killed before writing them)
    return summary


def finish(
    f: Fitting,
    params: GaussianParams,
    corrections,
    history: list,
    elapsed: float,
    wall: float,
    out: Path,
    key: str,
    progress: bool = False,
) -> dict:
    """Final held-out evaluation and the avatar files."""
    cfg, data = f.cfg, f.data
    background = data.background.to(f.device)
    heldout = evaluate(f, params, background, frames=data.test_ids, per_frame=True)
    retracked = None
    if cfg.retrack_steps and len(data.test_ids):
        retracked = retrack_heldout(f, params, background, out, progress)
    else:
        (out / "retracked.npz").unlink(missing_ok=True)  # an earlier finish's rows would not match this summary
    if corrections is not None:  # training frames as trained: with their corrected parameters
        with torch.no_grad():
            kw = corrections.corrected().torch_kwargs(device=f.device)
            f.vertices = f.head(shape=data.shape.to(f.device), **kw).vertices
    train_sample = data.train_ids[:: max(1, len(data.train_ids) // 25)]
    train = evaluate(f, params, background, frames=train_sample)
    config = {
        **dataclasses.asdict(cfg),
        "background_rgb": data.background.tolist(),
        "head_model": data.head_model,
        "resolution_wh": [data.width, data.height],
        "K": data.K.tolist(),
        "viewmat": data.viewmat.tolist(),
    }
    avatar = Avatar(head=f.head.cpu(), shape=data.shape.clone(), gaussians=params.detached(), config=config)
    save_avatar(out / "avatar.safetensors", avatar)
    with torch.no_grad():
        canonical = animate(avatar, HeadParams.zeros(1, f.head.num_expr)).frame(0)
    save_ply(out / "canonical.ply", canonical)
    if corrections is not None:
        p = corrections.corrected()
        save_npz(out / "refined_tracks.npz", **{k: getattr(p, k) for k in PER_FRAME})
    first_30 = next((h["seconds"] for h in history if h["psnr"] >= 30.0), None)
    metrics = {
        "resolution": [data.width, data.height],
        "heldout": heldout,
        "heldout_retracked": retracked,
        "train_sample": {k: train[k] for k in ("psnr", "ssim")},
        "lpips": None,
        "lpips_note": "not computed: the lpips package ships only linear heads; its backbones need a download",
        "psnr_over": "the whole frame, render over the background vs frame composited through its mask",
        "seconds_to_30db": first_30,
        "fit_seconds": round(elapsed, 2),
        "history": history,
    }
    write_json(out / "metrics.json", metrics)
    summary = {
        "out": str(out),
        "key": key,
        "gaussians": params.num,
        "iterations": cfg.iterations,
        "fit_seconds": round(elapsed, 2),
        "wall_seconds_this_run": round(wall, 2),
        "metrics": metrics,
        "config": config,
        "frames": {
            "train": len(data.train_ids),
            "heldout": len(data.test_ids),
            "skipped_no_face": data.skipped_ids.tolist(),
        },
    }
    write_json(out / "config.json", {k: v for k, v in summary.items() if k != "metrics"})
    return summary
