"""Stage 1b (audio front-end pre-training): augmentation, a toy run whose losses fall and resume exactly, and
stage 2 starting from (and keeping) the pre-trained front-end."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from talk_helpers import TINY_W2V, one_thread  # noqa: F401 (fixture)
from talk_toy_corpus import make_toy_corpus, toy_utterance

from splattalk.errors import SplattalkError
from splattalk.talk.audio_encoder import (
    ENERGY_FLOOR,
    MelAugment,
    build_audio_encoder,
    draw_mel_augment,
    relative_frame_energy,
    warp_frequency,
)
from splattalk.talk.checkpoint import load_talk_checkpoint, save_talk_checkpoint
from splattalk.talk.config import PHONE_SET, TINY
from splattalk.talk.generator import TalkModel
from splattalk.talk.inference import generate
from splattalk.talk.training.dataset import DataConfig
from splattalk.talk.training.train_ar import ARTrainConfig
from splattalk.talk.training.train_ar import run as run_ar
from splattalk.talk.training.train_common import STATE_FILE, TrainConfig
from splattalk.talk.training.train_frontend import FrontendTrainConfig, adopt_frontend
from splattalk.talk.training.train_frontend import run as run_frontend
from splattalk.talk.training.train_vqvae import VQVAETrainConfig
from splattalk.talk.training.train_vqvae import run as run_vqvae

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_toy_corpus(tmp_path_factory.mktemp("toy"))


def _train(corpus, out, **kw) -> TrainConfig:
    base = dict(
        out=out,
        data=DataConfig(corpus=corpus),
        preset="tiny",
        batch_size=4,
        lr=3e-3,
        warmup=5,
        log_every=5,
        eval_every=0,
        ckpt_every=1000,
        progress=False,
        seed=1,
    )
    base.update(kw)
    return TrainConfig(**base)


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_warp_moves_a_spectral_peak_by_its_factor():
    power = torch.zeros(2, 201, 3)
    power[:, 60] = 1.0
    same = warp_frequency(power, torch.ones(2))
    assert torch.equal(same, power)
    warped = warp_frequency(power, torch.tensor([1.1, 0.9]))
    peaks = warped[:, :, 0].argmax(1).tolist()
    assert peaks == [66, 54]


def test_augment_draws_repeat_with_the_seed_and_mask_some_cells():
    aug = MelAugment()
    a = draw_mel_augment(aug, 3, 500, 80, torch.Generator().manual_seed(5))
    b = draw_mel_augment(aug, 3, 500, 80, torch.Generator().manual_seed(5))
    c = draw_mel_augment(aug, 3, 500, 80, torch.Generator().manual_seed(6))
    assert all(torch.equal(a[k], b[k]) for k in a) and not torch.equal(a["warp"], c["warp"])
    assert ((a["warp"] - 1).abs() <= aug.warp).all()
    assert 0.7 < float(a["keep"].mean()) < 1.0
    assert float(a["eq"].abs().max()) <= aug.eq_db * np.log(10) / 10 + 1e-5


@pytest.fixture(scope="module")
def frontend(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("fe")
    cfg = FrontendTrainConfig(train=_train(corpus, out, steps=60, eval_every=60), logmel_layers=2)
    return out, run_frontend(cfg), cfg


def test_frontend_losses_fall_and_heldout_is_evaluated(frontend):
    out, path, _ = frontend
    rows = [r for r in _rows(out) if "phone_ce" in r]
    first, last = rows[0], rows[-1]
    assert last["motion"] < 0.6 * first["motion"], (first, last)
    assert last["phone_ce"] < 0.6 * first["phone_ce"], (first, last)
    evals = [r for r in _rows(out) if "eval/phone_acc" in r]
    assert evals and evals[-1]["eval/phone_acc"] > 0.8
    model = load_talk_checkpoint(path)
    assert model.cfg.logmel_layers == 2 and len(model.audio_encoder.layers.layers) == 2


def test_frontend_resumes_exactly(corpus, frontend, tmp_path):
    from safetensors.torch import load_file

    _, _, cfg = frontend
    whole = dataclasses.replace(
        cfg, train=dataclasses.replace(cfg.train, out=tmp_path / "whole", steps=10, eval_every=0)
    )
    run_frontend(whole)
    split = dataclasses.replace(whole, train=dataclasses.replace(whole.train, out=tmp_path / "split"))
    run_frontend(dataclasses.replace(split, train=dataclasses.replace(split.train, stop_at=4)))
    run_frontend(split)
    a, b = load_file(str(tmp_path / "whole" / STATE_FILE)), load_file(str(tmp_path / "split" / STATE_FILE))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_stage_two_keeps_a_frozen_pretrained_frontend(corpus, frontend, tmp_path):
    _, fe_path, _ = frontend
    vq_path = run_vqvae(VQVAETrainConfig(train=_train(corpus, tmp_path / "vq", steps=4)))
    assert load_talk_checkpoint(vq_path).cfg.logmel_layers == TINY.logmel_layers == 1
    cfg = ARTrainConfig(
        vqvae=vq_path, frontend=fe_path, frontend_lr_scale=0.0, train=_train(corpus, tmp_path / "ar", steps=6)
    )
    model = load_talk_checkpoint(run_ar(cfg))
    assert model.cfg.logmel_layers == 2
    pre = load_talk_checkpoint(fe_path).audio_encoder.state_dict()
    for k, v in model.audio_encoder.state_dict().items():
        assert torch.equal(v, pre[k]), k
    audio, _ = toy_utterance(4.0, seed=7, style=0)
    assert np.isfinite(generate(model, audio)).all()


def test_energy_of_the_posterior_features_ignores_the_gain():
    mel = torch.randn(2, 40, 8)
    e = relative_frame_energy(mel)
    assert e.shape == (2, 10) and torch.allclose(relative_frame_energy(mel + 2.5), e, atol=1e-5)
    assert float(e.amax(1).abs().max()) < 1e-6 and float(e.min()) >= ENERGY_FLOOR
    with pytest.raises(ValueError, match="log-mel"):
        build_audio_encoder(dataclasses.replace(TINY_W2V, audio_posteriors=True))


def test_stage_two_on_phone_posteriors(corpus, frontend, tmp_path):
    """A stage-1b file carries its trained phone classifier; ``--audio-posteriors`` conditions the generator on its
    posteriors and the frame energy (the classifier frozen with the front-end); files without one fail clearly."""
    from safetensors.torch import load_file

    out, fe_path, _ = frontend
    fe = load_talk_checkpoint(fe_path)
    trained = load_file(str(out / STATE_FILE))
    assert torch.equal(fe.audio_encoder.phone_head.weight, trained["model/phone_head.weight"])
    vq_path = run_vqvae(VQVAETrainConfig(train=_train(corpus, tmp_path / "vq", steps=4)))
    cfg = ARTrainConfig(
        vqvae=vq_path,
        frontend=fe_path,
        frontend_lr_scale=0.0,
        audio_posteriors=True,
        train=_train(corpus, tmp_path / "ar", steps=6),
    )
    model = load_talk_checkpoint(run_ar(cfg))
    assert model.cfg.audio_posteriors and model.audio_in.in_features == len(PHONE_SET) + 1
    pre = fe.audio_encoder.state_dict()
    assert {k for k in model.audio_encoder.state_dict()} == set(pre) and any(k.startswith("phone_head.") for k in pre)
    assert all(torch.equal(v, pre[k]) for k, v in model.audio_encoder.state_dict().items())
    audio, _ = toy_utterance(4.0, seed=7, style=0)
    window = torch.from_numpy(
        np.concatenate([np.zeros(model.cfg.context_samples, np.float32), audio[: model.cfg.window_samples]])
    )
    with torch.no_grad():
        feat = model.audio_encoder(window[None])
    assert feat.shape == (1, model.cfg.window, len(PHONE_SET) + 1)
    assert torch.allclose(feat[..., :-1].sum(-1), torch.ones(1, model.cfg.window), atol=1e-5)
    assert float(feat[..., -1].max()) <= 0.0 and float(feat[..., -1].min()) >= ENERGY_FLOOR
    assert np.isfinite(generate(model, audio)).all()
    with pytest.raises(SplattalkError, match="--frontend"):
        run_ar(dataclasses.replace(cfg, frontend=None, train=_train(corpus, tmp_path / "ar2", steps=2)))
    # a front-end file written before they carried the classifier
    old = TalkModel(dataclasses.replace(fe.cfg, audio_posteriors=False))
    old.load_state_dict(
        {k: v for k, v in fe.state_dict().items() if "phone_head" not in k and not k.startswith("audio_in.")}
    )
    save_talk_checkpoint(old, tmp_path / "old.safetensors", {"stage": "frontend"})
    with pytest.raises(SplattalkError, match="phone classifier"):
        adopt_frontend(TalkModel(dataclasses.replace(TINY, audio_posteriors=True)), tmp_path / "old.safetensors")
    assert "phone_head.weight" not in adopt_frontend(TalkModel(TINY), fe_path).audio_encoder.state_dict()


def test_adopting_a_frontend_of_another_width_fails_clearly(frontend):
    model = TalkModel(dataclasses.replace(TINY, audio_dim=48))
    with pytest.raises(SplattalkError, match="width"):
        adopt_frontend(model, frontend[1])


def test_default_model_recipe_runs_stages_1_and_1b_together_then_2(corpus, tmp_path):
    """The default model's recipe end to end on the toy corpus (tiny preset, a few steps, no assets written)."""
    from splattalk.talk.training import default_model as recipe

    out = tmp_path / "run"
    cfg = recipe.DefaultTalkConfig(
        corpus=corpus,
        out=out,
        preset="tiny",
        batch_size=2,
        fe_batch_size=2,
        vq_steps=4,
        fe_steps=4,
        ar_steps=3,
        write_assets=False,
        parallel=True,
    )
    recipe.main(cfg)
    record = json.loads((out / "record.json").read_text())
    assert set(record["wall_s"]) == {"vqvae", "frontend", "ar", "readout"} and all(
        v > 0 for v in record["wall_s"].values()
    )
    assert record["frontend"]["last_train"]["step"] == 4 and record["ar"]["last_train"]["step"] == 3
    model = load_talk_checkpoint(out / "ar" / "talk.safetensors")
    pre = load_talk_checkpoint(out / "frontend" / "frontend.safetensors").audio_encoder.state_dict()
    assert all(torch.equal(v, pre[k]) for k, v in model.audio_encoder.state_dict().items())  # frozen by default
    ar_config = json.loads((out / "ar" / "config.json").read_text())["config"]
    assert ar_config["augment"] and ar_config["audio_dropout"] == cfg.ar_audio_dropout > 0  # trained for audio guidance
    assert ar_config["audio_posteriors"] and model.cfg.audio_posteriors  # conditioned on phone posteriors …
    shipped = load_talk_checkpoint(out / "readout" / "talk.safetensors")  # … with a mouth read-out fitted after stage 2
    assert shipped.cfg.readout_weight == cfg.readout_weight and shipped.cfg.readout_context == cfg.readout_context
    assert all(
        torch.equal(v, model.state_dict()[k]) for k, v in shipped.state_dict().items() if not k.startswith("readout.")
    )
    with pytest.raises(SystemExit, match="audio-dropout"):  # guidance on a model never trained without audio
        recipe.write_assets(
            dataclasses.replace(cfg, ar_audio_dropout=0.0, asset=tmp_path / "m.safetensors"),
            out / "ar" / "talk.safetensors",
            record,
        )
    recipe.main(cfg)  # everything is done: nothing trains again
    assert json.loads((out / "record.json").read_text())["wall_s"] == record["wall_s"]


def test_stage_two_augments_training_features_only(corpus, tmp_path):
    from splattalk.talk.training.train_ar import ARLoss, evaluate_ar
    from splattalk.talk.training.train_vqvae import build_datasets

    torch.manual_seed(0)
    model = TalkModel(TINY)
    train, _ = build_datasets(_train(corpus, tmp_path), model.cfg, with_audio=True)
    batch = train.batch(0, [0, 1, 2])
    keep = torch.zeros(3, dtype=torch.bool)
    loss = ARLoss(model, style_dropout=0.0, augment=MelAugment())
    plain = loss.logits(batch, keep)[2]
    aug = loss.logits(batch, keep, augment=True)[2]
    assert not torch.allclose(plain, aug, atol=1e-4)  # training windows see augmented spectra …
    assert torch.equal(aug, loss.logits(batch, keep, augment=True)[2])  # … drawn from the batch's seed
    assert torch.equal(plain, ARLoss(model, style_dropout=0.0).logits(batch, keep, augment=True)[2])  # off: none
    assert np.isfinite(evaluate_ar(loss, batch)["ce"])  # evaluation runs without augmentation
    assert (
        ARLoss(TalkModel(TINY_W2V), 0.0, augment=MelAugment()).augment is None
    )  # wav2vec2 reads raw audio: no mel augmentation


def test_audio_dropout_trains_the_null_audio_branch(corpus, tmp_path):
    from splattalk.talk.training.train_ar import ARLoss
    from splattalk.talk.training.train_vqvae import build_datasets

    torch.manual_seed(0)
    model = TalkModel(TINY).eval()  # no drop-path noise
    train, _ = build_datasets(_train(corpus, tmp_path), model.cfg, with_audio=True)
    batch = train.batch(0, [0, 1])
    other = dict(batch, audio=torch.randn_like(batch["audio"]))
    keep, drop = torch.zeros(2, dtype=torch.bool), torch.ones(2, dtype=torch.bool)
    loss = ARLoss(model, style_dropout=0.2, audio_dropout=0.1)
    assert torch.equal(loss.logits(batch, keep, drop_audio=drop)[0], loss.logits(other, keep, drop_audio=drop)[0])
    assert not torch.equal(loss.logits(batch, keep)[0], loss.logits(other, keep)[0])
    with pytest.raises(SplattalkError, match="disjoint"):
        ARLoss(model, style_dropout=0.95, audio_dropout=0.1)


def test_frontend_dropout_trains_in_stage_1b_only(corpus, tmp_path):
    """``--logmel-dropout`` regularises stage 1b; the config carries it, and stage 2 reads a frozen front-end
    in eval mode (the features inference sees) but keeps its dropout when fine-tuning it."""
    from splattalk.talk.training.train_ar import ARLoss
    from splattalk.talk.training.train_frontend import frontend_config
    from splattalk.talk.training.train_vqvae import build_datasets

    with pytest.raises(SplattalkError, match="dropout"):
        frontend_config(TINY, None, 1.0)
    cfg = frontend_config(TINY, 2, 0.3)
    assert (cfg.logmel_layers, cfg.logmel_dropout) == (2, 0.3)
    torch.manual_seed(0)
    model = TalkModel(cfg)
    train, _ = build_datasets(_train(corpus, tmp_path), cfg, with_audio=True)
    batch = train.batch(0, [0, 1])
    keep = torch.zeros(2, dtype=torch.bool)

    def features(loss):
        loss.train()
        return loss.logits(batch, keep)[2]

    frozen = ARLoss(model, style_dropout=0.0, frontend_lr_scale=0.0)
    assert torch.equal(features(frozen), features(frozen))  # frozen: no dropout noise in training mode
    assert not model.audio_encoder.training and model.attn_blocks.training
    tuned = ARLoss(model, style_dropout=0.0, frontend_lr_scale=1.0)
    assert not torch.equal(features(tuned), features(tuned))  # fine-tuned: dropout on

    path = tmp_path / "fe.safetensors"
    save_talk_checkpoint(model.eval(), path, {"stage": "frontend"})
    adopted = adopt_frontend(TalkModel(TINY), path)
    assert adopted.cfg.logmel_dropout == 0.3 and adopted.cfg.logmel_layers == 2
