"""One talk-model resolution for the CLI, export, the demo and the viewer."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from splattalk import models
from splattalk.errors import SplattalkError


def test_without_the_built_in_model_the_cli_fails_and_the_viewer_falls_back(tmp_path, monkeypatch, isolated_assets):
    monkeypatch.setattr(models, "DEFAULT_MODEL", tmp_path / "default_talk.safetensors")
    with pytest.raises(SplattalkError, match="not there yet.*--checkpoint"):
        models.resolve_model(None)
    said = []
    assert models.resolve_model(None, required=False, log=lambda *a, **k: said.append(a[0])) is None
    assert len(said) == 1 and "warning" in said[0] and "loudness" in said[0]


def test_the_built_in_model_is_found_and_makes_default_head_motion():
    model = models.resolve_model(None)
    assert model.cfg.head_model.startswith("default")
    models.check_head_model(model, model.cfg.head_model, model.cfg.motion_dim)  # no error
    with pytest.raises(SplattalkError, match="pass a matching --checkpoint"):
        models.check_head_model(model, "flame2023")


def test_official_model_on_a_default_avatar_says_what_it_needs():
    official = SimpleNamespace(cfg=SimpleNamespace(head_model="flame2020", motion_dim=106))
    with pytest.raises(SplattalkError, match="needs an avatar fitted with FLAME 2020"):
        models.check_head_model(official, "default-head-v1")


def test_threads():
    ours = SimpleNamespace(cfg=SimpleNamespace(audio_encoder="mel"))
    official = SimpleNamespace(cfg=SimpleNamespace(audio_encoder="wav2vec2"))
    assert models.default_threads(ours) == 1 and models.default_threads(official) is None
    assert models.default_threads(official, 0) == 1 and models.default_threads(ours, 4) == 4
