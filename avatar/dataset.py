"""A tracked run folder as training data: targets, cameras and per-frame head parameters at the fitting resolution."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from splattalk.errors import SplattalkError
from splattalk.head.params import HeadParams
from splattalk.run import RunLayout, Tracks


@dataclass
class FitData:
    """Everything the fitting loop reads. Images are uint8 to keep 512² runs small in memory."""

    targets: torch.Tensor
    """[T, H, W, 3] uint8 frames composited onto ``background`` through their masks"""
    masks: torch.Tensor
    """[T, H, W] uint8 foreground alpha"""
    background: torch.Tensor
    """[3] float background colour in [0, 1]"""
    K: torch.Tensor
    """[3, 3] intrinsics at the fitting resolution"""
    viewmat: torch.Tensor
    """[4, 4] world→camera (OpenCV), fixed over the video"""
    params: HeadParams
    """tracked per-frame parameters, all T frames"""
    shape: torch.Tensor
    """[S] identity coefficients"""
    head_model: str
    train_ids: np.ndarray
    """frame indices that train"""
    test_ids: np.ndarray
    """held-out frame indices (the last frames with a face; never train)"""
    width: int
    height: int
    skipped_ids: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))
    """frames where tracking found no face (their parameters are interpolated): neither trained nor scored"""

    def target(self, i: int, device=None) -> torch.Tensor:
        """Frame i as float [H, W, 3] in [0, 1]."""
        return self.targets[i].to(device=device, dtype=torch.float32) / 255.0


def parse_background(text: str) -> np.ndarray | None:
    """'r,g,b' → [3] floats; 'auto' → None."""
    if text.strip().lower() == "auto":
        return None
    try:
        rgb = np.array([float(v) for v in text.split(",")], np.float32)
    except ValueError:
        rgb = np.zeros(0)
    if rgb.shape != (3,) or (rgb < 0).any() or (rgb > 1).any():
        raise SplattalkError(f"--background must be 'auto' or three numbers in [0, 1] like '1,1,1', got {text!r}")
    return rgb


def _read(path: Path, flags: int) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), flags)
    if image is None:
        raise SplattalkError(f"cannot read {path}; rerun `splattalk track` to rewrite the run's frames")
    return image


def load_run(
    run: str | Path, resolution: int, holdout_fraction: float = 0.1, background: str = "auto", progress: bool = False
) -> FitData:
    """Read ``run`` (frames/, masks/, tracking/tracks.npz) at ``resolution`` pixels along the longer side."""
    import cv2
    from tqdm import tqdm

    run = Path(run)
    layout = RunLayout(run)
    tracks = Tracks.load(layout.tracks)
    num = len(tracks)
    if num < 2:
        raise SplattalkError(f"{run} has {num} tracked frame(s); fitting needs at least 2 (one is held out)")
    width, height = tracks.width, tracks.height
    scale = resolution / max(width, height)
    out_w, out_h = int(round(width * scale)), int(round(height * scale))
    frames, masks = [], []
    for t in tqdm(range(num), desc="load frames", unit="frame", disable=not progress, leave=False):
        image = _read(layout.frame(t), cv2.IMREAD_COLOR)[:, :, ::-1]
        mask_path = layout.mask(t)
        if not mask_path.is_file():
            raise SplattalkError(f"{mask_path} is missing: the fit needs foreground masks (track without --no-masks)")
        mask = _read(mask_path, cv2.IMREAD_GRAYSCALE)
        if image.shape[:2] != (height, width) or mask.shape != (height, width):
            raise SplattalkError(
                f"{layout.frame(t)} or {mask_path} is not {width}x{height} as tracks.npz says; rerun `splattalk track`"
            )
        if (out_w, out_h) != (width, height):
            image = cv2.resize(image, (out_w, out_h), interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask, (out_w, out_h), interpolation=cv2.INTER_AREA)
        frames.append(np.ascontiguousarray(image))
        masks.append(mask)
    frames_np, masks_np = np.stack(frames), np.stack(masks)

    bg = parse_background(background)
    if bg is None:
        bg = auto_background(frames_np, masks_np)
    alpha = masks_np[..., None].astype(np.float32) / 255.0
    composite = frames_np.astype(np.float32) * alpha + bg * 255.0 * (1.0 - alpha)
    targets = np.clip(composite + 0.5, 0, 255).astype(np.uint8)

    K = tracks.K.astype(np.float32).copy()
    K[0, :] *= out_w / width  # pixel centres at +0.5 scale with the image: cx' = cx·s
    K[1, :] *= out_h / height
    valid = np.ones(num, bool) if tracks.valid is None else tracks.valid.astype(bool)
    usable = np.nonzero(valid)[0]
    if len(usable) < 2:
        raise SplattalkError(
            f"{run}: only {len(usable)} of {num} tracked frames show a face (tracks.npz 'valid'); fitting needs at "
            "least 2 (one is held out). Track a video where the face is visible."
        )
    num_test = max(1, int(round(len(usable) * holdout_fraction)))
    params = HeadParams(**tracks.per_frame())
    return FitData(
        targets=torch.from_numpy(targets),
        masks=torch.from_numpy(masks_np),
        background=torch.from_numpy(bg.astype(np.float32)),
        K=torch.from_numpy(K),
        viewmat=torch.from_numpy(tracks.viewmat.astype(np.float32)),
        params=params,
        shape=torch.from_numpy(tracks.shape.astype(np.float32)),
        head_model=tracks.head_model,
        train_ids=usable[:-num_test],
        test_ids=usable[-num_test:],
        width=out_w,
        height=out_h,
        skipped_ids=np.nonzero(~valid)[0],
    )


def auto_background(frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Median colour [3] of the pixels the masks call background (white when there are none)."""
    step = max(1, len(frames) // 16)
    pixels = frames[::step][masks[::step] < 13]
    if len(pixels) < 100:
        return np.ones(3, np.float32)
    return (np.median(pixels, axis=0) / 255.0).astype(np.float32)
