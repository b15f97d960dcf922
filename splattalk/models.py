"""Which talk model a command uses: ``--checkpoint`` if given, else the built-in one.

One resolution for ``splattalk talk``, ``splattalk export``, the demo and the live
viewer, and the person-adapted mouth read-out of a run (``splattalk adapt``). It imports
the talk model's code (torch) at the top: only commands that run a model import it.
"""

from __future__ import annotations

import copy
import hashlib
import sys
from importlib.resources import files
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file

from splattalk import assets
from splattalk.errors import SplattalkError
from splattalk.run import RunLayout
from splattalk.talk import checkpoint as ckpt

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


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file (ties an adapted read-out to the base model it was fitted on)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
    if meta.get("format") != FORMAT_TAG or not base.is_file() or meta.get("base_sha256") != file_sha256(base):
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
