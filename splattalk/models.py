"""Which talk model a command uses: ``--checkpoint`` if given, else the built-in one.

One resolution for ``splattalk talk``, ``splattalk export``, the demo and the live
viewer, and the person-adapted mouth read-out of a run (``splattalk adapt``). It imports
the talk model's code (torch) at the top: only commands that run a model import it.
"""

from __future__ import annotations

import copy
import sys
from importlib.resources import files
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.torch import load_file

from splattalk import assets
from splattalk.errors import SplattalkError
from splattalk.head.params import MOTION_FPS
from splattalk.run import RunLayout, Tracks
from splattalk.talk import checkpoint as ckpt
from splattalk.talk.corpus.tracks import head_motion

DEFAULT_MODEL = Path(str(files("splattalk.talk") / "assets" / "default_talk.safetensors"))
"""Our default talk model (trained by scripts/train_default_talk.py, shipped with the package)."""
STYLES_DIR = DEFAULT_MODEL.parent / "styles"
"""Style clips (``*.npz``, motion [50, D]) of the built-in model, offered by the viewer."""


def resolve_model(checkpoint: Path | None, *, required: bool = True, log=None):
    """The talk model of ``checkpoint`` (official ``ARTalk_wav2vec.pt`` or one of ours), else the built-in one.

    Without a checkpoint and without the built-in model: raise a :class:`SplattalkError` saying what to do, or,
    when not ``required`` (the viewer, which can fall back to loudness-driven motion), warn through ``log`` and
    return None.
    """
    if checkpoint is not None:
        return ckpt.load_checkpoint(checkpoint)
    if DEFAULT_MODEL.is_file():
        return ckpt.load_talk_checkpoint(DEFAULT_MODEL)
    official = assets.ARTALK_CHECKPOINT.find()
    hint = (
        f" Found an official checkpoint at {official}: pass --checkpoint {official}."
        if official
        else (" Or pass --checkpoint ARTalk_wav2vec.pt (the official model; needs FLAME 2020 to render).")
    )
    message = (
        f"the built-in talk model {DEFAULT_MODEL} is not there yet (it is trained by "
        f"scripts/train_default_talk.py and shipped with the package).{hint}"
    )
    if required:
        raise SplattalkError(message)
    (log or print)(f"warning: {message} Without it the jaw only follows the speech's loudness.", file=sys.stderr)
    return None


FORMAT_TAG = "splattalk-readout-adapt-v1"
"""Format of ``RUN/talk/readout_adapted.safetensors`` (``splattalk adapt``), in its metadata."""


def paths(run: Path) -> dict[str, Path]:
    """Where ``splattalk adapt RUN`` keeps its read-out, report and resumable state."""
    folder = RunLayout(run).talk_dir
    return {
        "readout": folder / "readout_adapted.safetensors",
        "report": folder / "adapt.json",
        "state": folder / "adapt_state.pt",
    }


def base_checkpoint(checkpoint: Path | None) -> Path:
    """The talk model file a command uses: ``checkpoint``, else the built-in model."""
    return Path(checkpoint) if checkpoint is not None else DEFAULT_MODEL


def adapted_model(run: Path, model, checkpoint: Path | None = None):
    """``model`` with the run's adapted read-out if ``RUN/talk/readout_adapted.safetensors`` exists and was fitted to
    this base model (``checkpoint``; None: the built-in one), else ``model`` itself."""
    path = paths(run)["readout"]
    if not path.is_file() or getattr(model, "readout", None) is None:
        return model
    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata() or {})
    base = base_checkpoint(checkpoint)
    if meta.get("format") != FORMAT_TAG or not base.is_file() or meta.get("base_sha256") != assets.file_sha256(base):
        print(
            f"splattalk: {path} was adapted from another talk model; "
            f"using {base.name} as it is (rerun `splattalk adapt {run}`)"
        )
        return model
    tuned = copy.deepcopy(model)
    tuned.readout.load_state_dict(load_file(str(path)), strict=True)
    return tuned.eval()


def for_run(model, run: Path | None, checkpoint: Path | None = None, log=print):
    """``model`` with the mouth read-out ``splattalk adapt RUN`` fitted to the run's person, when there is one
    (``RUN/talk/readout_adapted.safetensors``, made from this base model), else ``model`` itself."""
    if model is None or run is None:
        return model
    tuned = adapted_model(Path(run), model, checkpoint)
    if tuned is not model:
        log(f"talk: the mouth adapted to this person ({paths(Path(run))['readout']})")
    return tuned


def check_head_model(model, head_model: str, motion_dim: int | None = None) -> None:
    """Raise unless ``model`` makes motion for an avatar of ``head_model`` (with ``motion_dim`` values a frame)."""
    cfg = model.cfg
    if cfg.head_model == head_model and (motion_dim is None or cfg.motion_dim == motion_dim):
        return
    if cfg.head_model == "flame2020" and head_model != "flame2020":
        hint = "the official ARTalk checkpoint needs an avatar fitted with FLAME 2020"
    else:
        hint = "pass a matching --checkpoint"
    raise SplattalkError(
        f"the talk model makes motion for head model {cfg.head_model!r} ({cfg.motion_dim} values a "
        f"frame) but the avatar uses {head_model!r}" + (f" ({motion_dim})" if motion_dim else "") + f": {hint}"
    )


def default_threads(model, threads: int | None = None) -> int | None:
    """CPU threads for torch: ``threads`` if given, else 1 for our small models (they gain nothing from more),
    None (torch's default) for the official wav2vec2 model."""
    if threads is not None:
        return max(1, threads)
    return 1 if model.cfg.audio_encoder != "wav2vec2" else None


def style_window(motion: np.ndarray, frames: int, valid: np.ndarray | None = None, jaw_columns=None) -> int | None:
    """First frame of the ``frames``-long window of ``motion`` ``[T, D]`` whose jaw travels furthest (summed
    frame-to-frame change of ``jaw_columns``, default the last 3: the speaking part of a video, not its still
    start), among windows whose frames are all ``valid`` ``[T]``; None when no such window fits. Ties go to the
    earliest window."""
    T = len(motion)
    if T < frames:
        return None
    jaw = np.asarray(motion[:, list(jaw_columns) if jaw_columns is not None else slice(-3, None)], np.float64)
    ok = np.ones(T, bool) if valid is None else np.asarray(valid, bool)[:T]
    # travel into frame t (0 for the first); window [s, s + frames) travels steps s + 1 … s + frames - 1
    step = np.concatenate([[0.0], np.abs(np.diff(jaw, axis=0)).sum(1)])
    travel_upto = np.concatenate([[0.0], np.cumsum(step)])
    travel = travel_upto[frames:] - travel_upto[:-frames] - step[: T - frames + 1]
    lost = np.concatenate([[0], np.cumsum(~ok)])
    travel[(lost[frames:] - lost[:-frames]) > 0] = -np.inf
    best = int(np.argmax(travel))
    return best if np.isfinite(travel[best]) else None


def run_style(run: Path | None, model, log=print) -> np.ndarray | None:
    """The run's own tracked motion as the style clip ``[style_frames, D]`` of ``model`` ("talks like you"): the
    2-second window of ``RUN/tracking/tracks.npz`` where the jaw moves most (:func:`style_window`), in the talk
    corpus' motion convention (head rotation relative to the run's mean orientation;
    :func:`splattalk.talk.corpus.tracks.head_motion`).

    None, with a message through ``log``, when there is nothing to take: no run or no tracks, a run tracked with
    another head model than the talk model's (its motion means nothing to this model), or a video shorter than a
    style clip. The command then speaks in the model's default style.
    """
    if run is None or model is None:
        return None
    path = RunLayout(Path(run)).tracks
    if not path.is_file():
        return None
    tracks = Tracks.load(path)
    cfg = model.cfg
    if tracks.head_model != cfg.head_model or tracks.expr.shape[1] != cfg.expr_dim:
        log(
            f"talk: {run} was tracked with head model {tracks.head_model!r} ({tracks.expr.shape[1]} expressions) but "
            f"the talk model speaks {cfg.head_model!r} ({cfg.expr_dim}): its motion cannot be a style clip, so the "
            "model's default style is used"
        )
        return None
    motion = head_motion({"expr": tracks.expr, "rot": tracks.rot, "jaw": tracks.jaw}, float(tracks.fps))
    valid = tracks.valid
    if valid is not None:
        at = (np.arange(len(motion)) + 0.5) / MOTION_FPS * float(tracks.fps) - 0.5  # motion frames in video frames
        valid = np.interp(at, np.arange(len(valid)), np.asarray(valid, np.float64)) > 0.5
    start = style_window(motion, cfg.style_frames, valid)
    if start is None:
        log(
            f"talk: {run}'s tracked video has no {cfg.style_frames / MOTION_FPS:.0f} s of valid frames for a "
            "style clip; the model's default style is used"
        )
        return None
    log(f"talk: style from this person's tracked motion ({path}, frames {start}–{start + cfg.style_frames - 1})")
    return motion[start : start + cfg.style_frames].astype(np.float32)
