"""Checkpoints: the official ARTalk state_dict (strict) and our own single-file safetensors.

Official ``ARTalk_wav2vec.pt``: one flat fp32 state_dict of 814 tensors, read
with ``torch.load(weights_only=True)`` (a restricted unpickler: no code runs)
and memory-mapped. Its wav2vec2 positional convolution is weight-normalised;
depending on the torch/transformers that saved it, that is stored as
``…conv.weight_g / weight_v`` or ``…conv.parametrizations.weight.original0 /
original1``. Both are accepted and renamed to the style our modules use. Then
every key and shape is checked against the model the config builds; anything
missing, unexpected or mis-shaped is reported in one :class:`SplattalkError`.

Ours: ONE ``.safetensors`` file whose metadata holds ``format`` =
:data:`FORMAT_TAG` and ``config`` = the :class:`TalkConfig` as JSON.
"""

from __future__ import annotations

import functools
import zipfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from splattalk.atomic import atomic_path
from splattalk.errors import SplattalkError
from splattalk.talk.config import OFFICIAL, TalkConfig
from splattalk.talk.generator import TalkModel

FORMAT_TAG = "splattalk-talk-v1"
"""``format`` entry in the metadata of our safetensors checkpoints."""
OFFICIAL_KEY_COUNT = 814

_WN_OLD = (".weight_g", ".weight_v")
_WN_NEW = (".parametrizations.weight.original0", ".parametrizations.weight.original1")
_SHOW = 12
"""How many offending keys an error message lists per kind."""


def build_model(cfg: TalkConfig, device: str | torch.device = "cpu") -> TalkModel:
    """A randomly initialised model (``device="meta"``: shapes only, nothing allocated)."""
    with torch.device(device):
        return TalkModel(cfg)


@functools.lru_cache(maxsize=8)
def expected_layout(cfg: TalkConfig) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Key → (shape, dtype) of the state_dict a ``cfg`` model has (built on the meta device)."""
    return {k: (tuple(v.shape), v.dtype) for k, v in build_model(cfg, "meta").state_dict().items()}


def convert_weight_norm(state: dict[str, torch.Tensor], style: str) -> dict[str, torch.Tensor]:
    """Rename weight-norm keys to ``style``: "parametrizations" (original0/1) or "weight_g" (weight_g/_v)."""
    src, dst = (_WN_OLD, _WN_NEW) if style == "parametrizations" else (_WN_NEW, _WN_OLD)
    out = {}
    for key, value in state.items():
        for a, b in zip(src, dst):
            if key.endswith(a):
                key = key[: -len(a)] + b
                break
        out[key] = value
    return out


def _weight_norm_style(layout: dict) -> str:
    return "parametrizations" if any(k.endswith(_WN_NEW[0]) for k in layout) else "weight_g"


def read_torch_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a flat ``{name: tensor}`` from a PyTorch file with the restricted (weights-only) unpickler."""
    path = Path(path)
    if not path.is_file():
        raise SplattalkError(f"checkpoint {path} not found")
    if path.stat().st_size == 0:
        raise SplattalkError(f"checkpoint {path} is empty (0 bytes); download it again")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as err:  # noqa: BLE001 - every failure here means an unreadable file
        reason = str(err).splitlines()[0][:200]
        raise SplattalkError(
            f"could not read checkpoint {path}: it is truncated, corrupt, or not a PyTorch weights file "
            f"({type(err).__name__}: {reason}). Download it again (ARTalk_wav2vec.pt is about 1.96 GB)."
        ) from None
    if isinstance(obj, dict) and len(obj) in (1, 2) and isinstance(obj.get("state_dict", obj.get("model")), dict):
        obj = obj.get("state_dict", obj.get("model"))
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise SplattalkError(
            f"checkpoint {path} is not a flat state_dict of named tensors (found {type(obj).__name__})"
        )
    return obj


def check_layout(state: dict[str, torch.Tensor], cfg: TalkConfig, path: str | Path) -> dict[str, torch.Tensor]:
    """Validate ``state`` against the ``cfg`` model (weight-norm style normalised); return it, dtypes matched."""
    layout = expected_layout(cfg)
    state = convert_weight_norm(state, _weight_norm_style(layout))
    missing = sorted(set(layout) - set(state))
    unexpected = sorted(set(state) - set(layout))
    misshaped = sorted(k for k in set(layout) & set(state) if tuple(state[k].shape) != layout[k][0])
    if missing or unexpected or misshaped:
        lines = [
            f"checkpoint {path} does not match the '{cfg.name}' talk model ({len(state)} keys, expected {len(layout)}):"
        ]
        if missing:
            lines.append(
                f"  missing {len(missing)}: " + ", ".join(missing[:_SHOW]) + (" …" if len(missing) > _SHOW else "")
            )
        if unexpected:
            lines.append(
                f"  unexpected {len(unexpected)}: "
                + ", ".join(unexpected[:_SHOW])
                + (" …" if len(unexpected) > _SHOW else "")
            )
        if misshaped:
            shown = [f"{k} {list(state[k].shape)} (expected {list(layout[k][0])})" for k in misshaped[:_SHOW]]
            lines.append(
                f"  mis-shaped {len(misshaped)}: " + ", ".join(shown) + (" …" if len(misshaped) > _SHOW else "")
            )
        lines.append("Is this ARTalk_wav2vec.pt (the wav2vec2 variant), or one of our .safetensors talk models?")
        raise SplattalkError("\n".join(lines))
    return {k: v if v.dtype == layout[k][1] else v.to(layout[k][1]) for k, v in state.items()}


def load_official_state_dict(path: str | Path, cfg: TalkConfig = OFFICIAL) -> dict[str, torch.Tensor]:
    """The official checkpoint's tensors, strictly validated, keys in our weight-norm style."""
    return check_layout(read_torch_state_dict(path), cfg, path)


def load_official(path: str | Path, cfg: TalkConfig = OFFICIAL) -> TalkModel:
    """A ready (eval) model from an official-layout ``.pt``; tensors stay memory-mapped, nothing is copied."""
    state = load_official_state_dict(path, cfg)
    model = build_model(cfg, "meta")
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def save_official_state_dict(model: TalkModel, path: str | Path, weight_norm: str = "parametrizations") -> None:
    """Write the model as a flat torch state_dict in the official key layout (either weight-norm style)."""
    state = convert_weight_norm({k: v.detach().contiguous() for k, v in model.state_dict().items()}, weight_norm)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def save_talk_checkpoint(model: TalkModel, path: str | Path, extra_metadata: dict[str, str] | None = None) -> None:
    """Our format: one safetensors file, config JSON and format tag in its metadata."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT_TAG, "config": model.cfg.to_json(), **(extra_metadata or {})}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def read_talk_metadata(path: str | Path) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise SplattalkError(f"talk model {path} not found")
    try:
        with safe_open(str(path), "pt") as f:
            return dict(f.metadata() or {})
    except Exception as err:  # noqa: BLE001
        raise SplattalkError(f"could not read talk model {path}: truncated or not a safetensors file ({err})") from None


def load_talk_checkpoint(path: str | Path) -> TalkModel:
    """One of our ``.safetensors`` talk models (eval mode)."""
    meta = read_talk_metadata(path)
    if meta.get("format") != FORMAT_TAG:
        raise SplattalkError(
            f"{path} is a safetensors file but not a splattalk talk model "
            f"(format {meta.get('format')!r}, expected {FORMAT_TAG!r})"
        )
    try:
        cfg = TalkConfig.from_json(meta["config"])
    except (KeyError, ValueError, TypeError) as err:
        raise SplattalkError(f"talk model {path} has no valid config in its metadata ({err})") from None
    try:
        state = load_file(str(path))
    except Exception as err:  # noqa: BLE001
        raise SplattalkError(f"could not read talk model {path}: truncated or corrupt ({err})") from None
    state = check_layout(state, cfg, path)
    model = build_model(cfg, "meta")
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def load_checkpoint(path: str | Path, cfg: TalkConfig | None = None) -> TalkModel:
    """Any talk model file: ours (``.safetensors``) or an official-layout PyTorch file (``.pt``)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_talk_checkpoint(path)
    return load_official(path, cfg or OFFICIAL)


def official_layout_json(cfg: TalkConfig = OFFICIAL) -> list[list]:
    """``[[name, shape, dtype], …]`` of the model's state_dict, weight-norm keys in parametrization style."""
    shapes = convert_weight_norm(dict(expected_layout(cfg)), "parametrizations")
    return [[k, list(shape), str(dtype).removeprefix("torch.")] for k, (shape, dtype) in shapes.items()]
