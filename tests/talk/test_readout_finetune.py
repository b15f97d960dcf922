"""Fine-tuning the mouth read-out on (audio, motion) pairs: only the read-out changes, and it learns."""

import numpy as np
import pytest
import torch

from splattalk.errors import SplattalkError
from splattalk.models import DEFAULT_MODEL, resolve_model
from splattalk.talk.training.readout_finetune import finetune_readout, tracked_motion

pytestmark = pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="the built-in talk model is not built")


def test_finetune_changes_only_the_readout_and_lowers_the_loss():
    torch.manual_seed(0)
    model = resolve_model(None)
    rng = np.random.default_rng(0)
    T = 100
    audio = (0.1 * rng.standard_normal(T * 640)).astype(np.float32)
    motion = np.zeros((T, model.cfg.motion_dim), np.float32)
    motion[:, list(model.cfg.readout_channels)] = 0.3  # a constant mouth: easy to learn
    tuned, summary = finetune_readout(model, [(audio, motion)], epochs=5, lr=1e-3)
    assert summary["last_loss"] < summary["first_loss"]
    before, after = model.state_dict(), tuned.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("readout.") for k in changed)
    assert tuned.cfg.readout_weight == model.cfg.readout_weight


def test_tracked_motion_layout_and_fps():
    tracks = {"fps": np.float32(25), "expr": np.ones((4, 26)), "jaw": np.full((4, 3), 0.2)}
    m = tracked_motion(tracks)
    assert m.shape == (4, 32) and np.all(m[:, 26:29] == 0) and np.all(m[:, 29:] == np.float32(0.2))
    with pytest.raises(SplattalkError):
        tracked_motion({**tracks, "fps": np.float32(30)})


def test_finetune_resumes_after_a_kill_bit_for_bit(tmp_path):
    model = resolve_model(None)
    rng = np.random.default_rng(1)
    T = 60
    audio = (0.1 * rng.standard_normal(T * 640)).astype(np.float32)
    motion = (0.1 * rng.standard_normal((T, model.cfg.motion_dim))).astype(np.float32)
    whole, _ = finetune_readout(model, [(audio, motion)], epochs=4, lr=1e-3, state_path=tmp_path / "a.pt")

    class Killed(Exception):
        pass

    def kill(epoch):
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        finetune_readout(model, [(audio, motion)], epochs=4, lr=1e-3, state_path=tmp_path / "b.pt", on_epoch=kill)
    resumed, summary = finetune_readout(model, [(audio, motion)], epochs=4, lr=1e-3, state_path=tmp_path / "b.pt")
    assert summary["resumed_at_epoch"] == 2
    for k, v in whole.readout.state_dict().items():
        assert torch.equal(v, resumed.readout.state_dict()[k]), k
    # a state from other settings is not trusted: training starts over
    _, summary = finetune_readout(model, [(audio, motion)], epochs=5, lr=1e-3, state_path=tmp_path / "b.pt")
    assert summary["resumed_at_epoch"] == 0
