"""Both training stages on a toy corpus: the loss falls clearly, and a resumed run equals an uninterrupted one."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from talk_helpers import one_thread  # noqa: F401 (fixture)
from talk_toy_corpus import make_toy_corpus, toy_utterance

from splattalk.errors import SplattalkError
from splattalk.talk.checkpoint import load_talk_checkpoint
from splattalk.talk.config import TINY
from splattalk.talk.inference import generate
from splattalk.talk.training.dataset import AugmentConfig, DataConfig
from splattalk.talk.training.train_ar import ARTrainConfig
from splattalk.talk.training.train_ar import run as run_ar
from splattalk.talk.training.train_common import STATE_FILE, TrainConfig, lr_at
from splattalk.talk.training.train_vqvae import VQVAETrainConfig
from splattalk.talk.training.train_vqvae import run as run_vqvae

pytestmark = pytest.mark.usefixtures("one_thread")

AUG = AugmentConfig(gain_db=3.0, noise_prob=0.2, telephone_prob=0.1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_toy_corpus(tmp_path_factory.mktemp("toy"))


def _train(corpus, out, **kw) -> TrainConfig:
    base = dict(
        out=out,
        data=DataConfig(corpus=corpus, augment=AUG),
        preset="tiny",
        batch_size=4,
        lr=2e-3,
        warmup=5,
        log_every=5,
        eval_every=0,
        ckpt_every=1000,
        progress=False,
        seed=1,
    )
    base.update(kw)
    return TrainConfig(**base)


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def _state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.fixture(scope="module")
def vqvae(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("vq")
    path = run_vqvae(VQVAETrainConfig(train=_train(corpus, out, steps=60)))
    return out, path


def test_vqvae_loss_falls_and_model_loads(vqvae):
    out, path = vqvae
    rows = [r for r in _log(out) if "recon" in r]
    first, last = rows[0], rows[-1]
    assert last["loss"] < 0.6 * first["loss"], (first, last)
    assert last["recon"] < 0.8 * first["recon"], (first, last)
    evals = [r for r in _log(out) if "eval/recon@100" in r]
    assert evals and all(0 < evals[-1][f"eval/unique@{n}"] <= 1 for n in (1, 5, 25, 50, 100))
    model = load_talk_checkpoint(path)
    # the motion statistics come from the data (toy jaw: 0.25·envelope), not the defaults
    assert 0.01 < float(model.basic_vae.motion_std[-3]) < 0.2
    assert torch.equal(model.basic_vae.motion_mean, model.style_encoder.motion_mean)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["stage"] == "vqvae" and cfg["train_data"]["utterances"] == 6


def test_vqvae_resumes_exactly(corpus, tmp_path):
    train = _train(corpus, tmp_path / "whole", steps=12)
    run_vqvae(VQVAETrainConfig(train=train))
    out = tmp_path / "split"
    train = dataclasses.replace(train, out=out)
    run_vqvae(VQVAETrainConfig(train=dataclasses.replace(train, stop_at=5)))
    assert not (out / "vqvae.safetensors").exists()
    mid = _state(out / STATE_FILE)
    run_vqvae(VQVAETrainConfig(train=train))
    a, b = _state(tmp_path / "whole" / STATE_FILE), _state(out / STATE_FILE)
    assert a.keys() == b.keys()
    assert any(not torch.equal(mid[k], b[k]) for k in a if k.startswith("model/"))
    for k in a:
        assert torch.equal(a[k], b[k]), k  # bitwise: model, optimizer moments and RNG


@pytest.fixture(scope="module")
def ar(corpus, vqvae, tmp_path_factory):
    out = tmp_path_factory.mktemp("ar")
    cfg = ARTrainConfig(vqvae=vqvae[1], train=_train(corpus, out, steps=50), style_dropout=0.3)
    return out, run_ar(cfg), cfg


def test_ar_loss_falls_and_model_generates(ar, vqvae):
    out, path, _ = ar
    rows = [r for r in _log(out) if "bit_acc" in r]
    assert rows[-1]["loss"] < 0.8 * rows[0]["loss"], (rows[0], rows[-1])
    assert rows[-1]["ce"] < 0.85 * rows[0]["ce"] and rows[-1]["audio_aux"] < 0.8 * rows[0]["audio_aux"]
    assert rows[-1]["bit_acc"] > rows[0]["bit_acc"] + 0.1
    model = load_talk_checkpoint(path)
    # stage 2 leaves the VQ-VAE as stage 1 made it
    vae = load_talk_checkpoint(vqvae[1]).basic_vae.state_dict()
    for k, v in model.basic_vae.state_dict().items():
        assert torch.equal(v, vae[k]), k
    audio, _ = toy_utterance(5.0, seed=999, style=0)
    motion = generate(model, audio)
    assert motion.shape == (125, 32) and np.isfinite(motion).all()


def test_ar_resumes_exactly(corpus, ar, vqvae, tmp_path):
    """Stop-and-resume ends bit-identical; here with a deeper AR than the stage-1 file's preset (``--ar-depth``)."""
    _, _, cfg = ar
    whole_out = tmp_path / "whole"
    cfg = dataclasses.replace(
        cfg, train=dataclasses.replace(cfg.train, out=whole_out, steps=12), ar_depth=TINY.ar_depth + 1
    )
    run_ar(cfg)
    out = tmp_path / "split"
    train = dataclasses.replace(cfg.train, out=out)
    run_ar(dataclasses.replace(cfg, train=dataclasses.replace(train, stop_at=5)))
    run_ar(dataclasses.replace(cfg, train=train))
    a, b = _state(whole_out / STATE_FILE), _state(out / STATE_FILE)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa, sb = _state(whole_out / "talk.safetensors"), _state(out / "talk.safetensors")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    deeper, vae = load_talk_checkpoint(out / "talk.safetensors"), load_talk_checkpoint(vqvae[1])
    assert deeper.cfg.ar_depth == len(deeper.attn_blocks) == TINY.ar_depth + 1 != vae.cfg.ar_depth
    assert all(torch.equal(v, vae.basic_vae.state_dict()[k]) for k, v in deeper.basic_vae.state_dict().items())
    with pytest.raises(SplattalkError, match="ar-depth"):
        run_ar(dataclasses.replace(cfg, ar_depth=0))


def test_learning_rate_schedule():
    cfg = TrainConfig(lr=1e-3, warmup=10, steps=110, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(1e-4)
    assert lr_at(9, cfg) == pytest.approx(1e-3)
    assert lr_at(60, cfg) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))
    assert lr_at(110, cfg) == pytest.approx(1e-4)


@pytest.mark.parametrize("config", [VQVAETrainConfig, ARTrainConfig])
def test_cli_help_lists_documented_options(config, capsys):
    import tyro

    with pytest.raises(SystemExit) as exit_:
        tyro.cli(config, args=["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "--train.steps" in text and "Optimizer steps" in text and "--train.data.exclude-speakers" in text


@pytest.mark.slow
def test_torchrun_two_ranks(corpus, tmp_path):
    """DDP on CPU (gloo): two ranks train stage 1 to the end and rank 0 writes the files."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        "29517",
        "-m",
        "splattalk.talk.training.train_vqvae",
        "--train.out",
        str(out),
        "--train.data.corpus",
        str(corpus),
        "--train.preset",
        "tiny",
        "--train.steps",
        "6",
        "--train.batch-size",
        "2",
        "--train.ckpt-every",
        "3",
        "--train.no-progress",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (out / "vqvae.safetensors").is_file() and (out / STATE_FILE).is_file()
    assert json.loads((out / "config.json").read_text())["world"] == 2


def test_optimizer_scales_the_learning_rate_of_named_parameters():
    from torch import nn

    from splattalk.talk.training.train_common import make_optimizer

    net = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
    opt = make_optimizer(list(net.named_parameters()), TrainConfig(), {"1.": 0.1})
    scale = {id(p): g["lr_scale"] for g in opt.param_groups for p in g["params"]}
    assert [scale[id(p)] for p in net[0].parameters()] == [1.0, 1.0]
    assert [scale[id(p)] for p in net[1].parameters()] == [0.1, 0.1]
    # without scales: the two groups (decayed matrices first) resumed states were saved with
    plain = make_optimizer(list(net.named_parameters()), TrainConfig())
    assert [len(g["params"]) for g in plain.param_groups] == [2, 2] and plain.param_groups[0]["weight_decay"] > 0
