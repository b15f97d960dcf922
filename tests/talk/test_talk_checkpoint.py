"""Checkpoints: the official 814-key layout, strict loading in both weight-norm styles, our safetensors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from talk_helpers import (
    TINY_W2V,
    one_thread,  # noqa: F401 (fixture)
    random_model,
    speechlike,
)

from splattalk.errors import SplattalkError
from splattalk.talk import checkpoint as ckpt
from splattalk.talk.config import OFFICIAL, TINY
from splattalk.talk.inference import generate

pytestmark = pytest.mark.usefixtures("one_thread")

KEYS_JSON = Path(__file__).parent / "data" / "artalk_official_keys.json"


def _reference_layout() -> dict[str, tuple[tuple[int, ...], str]]:
    data = json.loads(KEYS_JSON.read_text())
    assert data["key_count"] == len(data["keys"]) == ckpt.OFFICIAL_KEY_COUNT
    return {name: (tuple(shape), dtype) for name, shape, dtype in data["keys"]}


def test_official_layout_matches_published_keys():
    """TalkModel(OFFICIAL) has exactly the 814 keys, shapes and dtypes of ARTalk_wav2vec.pt (built on meta)."""
    ref = _reference_layout()
    ours = {k: (tuple(s), d) for k, s, d in ckpt.official_layout_json(OFFICIAL)}
    assert sorted(set(ref) - set(ours)) == []
    assert sorted(set(ours) - set(ref)) == []
    assert {k: v for k, v in ours.items() if ref[k] != v} == {}
    assert sum(int(np.prod(s)) for s, _ in ref.values()) == json.loads(KEYS_JSON.read_text())["total_elements"]


@pytest.mark.parametrize("style", ["parametrizations", "weight_g"])
def test_official_layout_accepts_both_weight_norm_styles(style):
    """A state dict shaped like the published one, in either weight-norm style, passes the strict check."""
    fake = {k: torch.empty(s, dtype=getattr(torch, d), device="meta") for k, (s, d) in _reference_layout().items()}
    fake = ckpt.convert_weight_norm(fake, style)
    wn = [k for k in fake if "pos_conv_embed" in k and "bias" not in k]
    assert len(wn) == 2 and all(("weight_g" in k or "weight_v" in k) == (style == "weight_g") for k in wn)
    checked = ckpt.check_layout(fake, OFFICIAL, "fake.pt")
    assert set(checked) == set(ckpt.expected_layout(OFFICIAL))


@pytest.mark.parametrize("style", ["parametrizations", "weight_g"])
def test_official_style_file_reloads_strictly_with_identical_output(tmp_path, style):
    """Save a random wav2vec2-structured model as a flat .pt, reload strictly: same keys, same motion."""
    model = random_model(TINY_W2V)
    path = tmp_path / "model.pt"
    ckpt.save_official_state_dict(model, path, weight_norm=style)
    raw = torch.load(path, weights_only=True)
    assert any(k.endswith(".weight_g" if style == "weight_g" else ".original0") for k in raw)
    loaded = ckpt.load_official(path, TINY_W2V)
    before = model.state_dict()
    after = loaded.state_dict()
    assert set(before) == set(after)
    assert all(torch.equal(before[k], after[k]) for k in before)
    audio = speechlike(4.5)
    np.testing.assert_array_equal(generate(model, audio), generate(loaded, audio))


def test_safetensors_round_trip(tmp_path):
    model = random_model(TINY)
    path = tmp_path / "talk.safetensors"
    ckpt.save_talk_checkpoint(model, path)
    meta = ckpt.read_talk_metadata(path)
    assert meta["format"] == ckpt.FORMAT_TAG and json.loads(meta["config"])["name"] == "tiny"
    loaded = ckpt.load_checkpoint(path)
    assert loaded.cfg == TINY
    audio = speechlike(3.0, seed=1)
    np.testing.assert_array_equal(generate(model, audio), generate(loaded, audio))


def test_truncated_official_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "ARTalk_wav2vec.pt"
    ckpt.save_official_state_dict(random_model(TINY_W2V), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SplattalkError, match="truncated, corrupt, or not a PyTorch weights file"):
        ckpt.load_official(path, TINY_W2V)


def test_not_a_checkpoint_and_missing_and_empty(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello, not weights")
    with pytest.raises(SplattalkError, match="could not read checkpoint"):
        ckpt.load_official(text)
    with pytest.raises(SplattalkError, match="not found"):
        ckpt.load_official(tmp_path / "nope.pt")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(SplattalkError, match="empty"):
        ckpt.load_official(empty)


def test_pickled_code_is_refused(tmp_path):
    """weights_only: a checkpoint that needs arbitrary classes to unpickle is rejected, not executed."""
    path = tmp_path / "evil.pt"
    torch.save({"x": torch.zeros(1), "obj": Path("/")}, path)
    with pytest.raises(SplattalkError, match="could not read checkpoint"):
        ckpt.read_torch_state_dict(path)


def test_wrong_checkpoint_lists_missing_unexpected_misshaped(tmp_path):
    """Every kind of mismatch is named, with the shapes."""
    path = tmp_path / "wrong.pt"
    state = random_model(TINY_W2V).state_dict()
    state["some.extra.weight"] = torch.zeros(3)
    del state["logits_head.bias"]
    state["lvl_embed.weight"] = torch.zeros(4, 32)
    torch.save(state, path)
    with pytest.raises(SplattalkError) as info:
        ckpt.load_official(path, TINY_W2V)
    msg = str(info.value)
    assert "missing 1: logits_head.bias" in msg
    assert "unexpected 1: some.extra.weight" in msg
    assert "mis-shaped 1: lvl_embed.weight [4, 32] (expected [5, 32])" in msg
    # a small model offered as the official one
    torch.save(random_model(TINY_W2V).state_dict(), path)
    with pytest.raises(SplattalkError) as info:
        ckpt.load_official(path)
    assert "attn_blocks.0.attn.query.weight [32, 32] (expected [768, 768])" in str(info.value)
    assert "expected 814" in str(info.value)


def test_safetensors_errors(tmp_path):
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(other), metadata={"format": "something-else"})
    with pytest.raises(SplattalkError, match="not a splattalk talk model"):
        ckpt.load_checkpoint(other)
    good = tmp_path / "talk.safetensors"
    ckpt.save_talk_checkpoint(random_model(TINY), good)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-1000])
    with pytest.raises(SplattalkError, match="truncated"):
        ckpt.load_checkpoint(cut)


@pytest.mark.slow
def test_official_random_model_round_trip(tmp_path):
    """The full official model (random, 1.96 GB): save in both styles, strict reload, identical motion."""
    torch.manual_seed(0)
    model = ckpt.build_model(OFFICIAL).eval()
    audio = speechlike(4.0)
    expected = generate(model, audio)
    for style in ("parametrizations", "weight_g"):
        path = tmp_path / f"official_{style}.pt"
        ckpt.save_official_state_dict(model, path, weight_norm=style)
        assert len(torch.load(path, weights_only=True, mmap=True)) == ckpt.OFFICIAL_KEY_COUNT
        np.testing.assert_array_equal(generate(ckpt.load_official(path), audio), expected)
        path.unlink()
