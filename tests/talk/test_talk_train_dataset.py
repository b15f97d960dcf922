"""Training windows: cut exactly as inference cuts them, at utterance edges too; deterministic; sharded."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from talk_helpers import one_thread, random_model  # noqa: F401 (fixture)
from talk_toy_corpus import make_toy_corpus

from splattalk.talk import inference
from splattalk.talk.config import PHONE_SET, SAMPLES_PER_FRAME, TINY
from splattalk.talk.corpus.layout import JAW, read_manifest, read_wav
from splattalk.talk.training.dataset import NO_AUGMENT, AugmentConfig, WindowDataset, augment_audio, motion_window

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_toy_corpus(tmp_path_factory.mktemp("toy"))


def _dataset(corpus, **kw):
    kw.setdefault("jitter", False)
    return WindowDataset(corpus, "train", window=TINY.window, context_frames=TINY.audio_context_frames, **kw)


def test_windows_are_exactly_what_generate_feeds_step_window(corpus, monkeypatch):
    """Oracle: record the audio and prefix `generate` gives each window; the dataset's windows must match."""
    ds = _dataset(corpus)
    model = random_model(TINY)
    seen = []
    real_step = inference.step_window

    def spy(model_, session, audio):
        seen.append((audio.numpy().copy(), session.prev_bits.clone()))
        return real_step(model_, session, audio)

    monkeypatch.setattr(inference, "step_window", spy)
    for c, clip in enumerate(ds.clips):
        seen.clear()
        audio = read_wav(clip.audio_path)
        inference.generate(model, audio)
        items = [ds.item(0, i) for i, (cc, _) in enumerate(ds.windows) if cc == c]
        assert len(items) == len(seen) == math.ceil(inference.frames_for(len(audio)) / TINY.window)
        for k, (item, (fed_audio, prev_bits)) in enumerate(zip(items, seen)):
            assert item["start"] == k * TINY.window
            np.testing.assert_array_equal(item["audio"], fed_audio)
            if k == 0:  # first prefix: the all-zero window, encoded exactly as start_session does
                assert item["first"] == 1.0
                np.testing.assert_array_equal(item["prev"], 0.0)
                bits, _ = model.basic_vae.encode(torch.from_numpy(item["prev"])[None])
                assert torch.equal(bits, prev_bits)


def test_window_motion_at_utterance_edges(corpus):
    ds = _dataset(corpus)
    W = TINY.window
    for i, (c, k) in enumerate(ds.windows):
        item, motion = ds.item(0, i), ds.clips[c].motion
        T, s = len(motion), k * W
        n_valid = min(W, T - s)
        np.testing.assert_array_equal(item["valid"], np.arange(W) < n_valid)
        np.testing.assert_array_equal(item["this"][:n_valid], motion[s : s + n_valid])
        np.testing.assert_array_equal(
            item["this"][n_valid:], np.broadcast_to(motion[-1], (W - n_valid, motion.shape[1]))
        )
        if k > 0:
            np.testing.assert_array_equal(item["prev"], motion[s - W : s])
            assert item["first"] == 0.0
        last = k == math.ceil(T / W) - 1
        assert (n_valid < W) == (last and T % W != 0)
        # audio after the utterance's end is silence, as generate's zero padding
        samples = ds.clips[c].samples
        end = samples - (s - TINY.audio_context_frames) * SAMPLES_PER_FRAME
        if end < item["audio"].shape[0]:
            np.testing.assert_array_equal(item["audio"][end:], 0.0)


def test_motion_window_holds_last_frame():
    motion = np.arange(12, dtype=np.float32).reshape(6, 2)
    win, valid = motion_window(motion, 4, 4)
    np.testing.assert_array_equal(win, [[8, 9], [10, 11], [10, 11], [10, 11]])
    np.testing.assert_array_equal(valid, [1, 1, 0, 0])


def test_jitter_keeps_full_previous_windows_and_is_deterministic(corpus):
    ds = _dataset(corpus, jitter=True, seed=3)
    W = TINY.window
    starts = {e: [ds.start(e, i) for i in range(len(ds))] for e in range(4)}
    assert starts[0] == [ds.start(0, i) for i in range(len(ds))]
    assert any(starts[0] != starts[e] for e in (1, 2, 3))
    for e, ss in starts.items():
        for i, s in enumerate(ss):
            c, k = ds.windows[i]
            assert (s == 0) == (k == 0)
            assert k == 0 or W <= s < len(ds.clips[c].motion)
            item = ds.item(e, i)
            if k:
                np.testing.assert_array_equal(item["prev"], ds.clips[c].motion[s - W : s])


def test_style_clip_comes_from_another_utterance_of_the_same_style(corpus):
    ds = _dataset(corpus)
    for i in range(len(ds)):
        item = ds.item(0, i)
        c = ds.windows[i][0]
        assert item["style_clip"].shape == (TINY.style_frames, ds.motion_dim)
        owners = [j for j, clip in enumerate(ds.clips) if _contains(clip.motion, item["style_clip"])]
        assert owners and all(j != c and ds.clips[j].style == ds.clips[c].style for j in owners)
        assert item["style"] == ds.clips[c].style
    assert {r.speaker for r in read_manifest(corpus, "train")} == set(ds.speakers)


def _contains(motion, clip):
    n = len(clip)
    valid = min(n, len(motion))
    return any(np.array_equal(motion[s : s + valid], clip[:valid]) for s in range(len(motion) - valid + 1))


def test_augmentation_changes_audio_only_and_repeats(corpus):
    aug = AugmentConfig(gain_db=6.0, noise_prob=0.5, telephone_prob=0.5)
    plain, noisy = _dataset(corpus), _dataset(corpus, augment=aug)
    changed = 0
    for i in range(len(plain)):
        a, b = plain.item(2, i), noisy.item(2, i)
        for key in ("prev", "this", "valid", "style_clip"):
            np.testing.assert_array_equal(a[key], b[key])
        changed += not np.array_equal(a["audio"], b["audio"])
        np.testing.assert_array_equal(b["audio"], noisy.item(2, i)["audio"])  # same (seed, epoch, item) → same audio
    assert changed == len(plain)


def test_telephone_band_limit_removes_low_frequencies():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 100 * t) + 0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    cfg = AugmentConfig(gain_db=0.0, noise_prob=0.0, telephone_prob=1.0)
    y = augment_audio(x, cfg, rng)
    spec_x, spec_y = np.abs(np.fft.rfft(x)), np.abs(np.fft.rfft(y))
    assert spec_y[100] < 0.1 * spec_x[100]  # 100 Hz (1-Hz bins) almost gone
    assert spec_y[1000] > 0.8 * spec_x[1000]  # 1 kHz kept
    np.testing.assert_array_equal(augment_audio(x, NO_AUGMENT, rng), x)


def test_batches_shard_the_global_batch_and_cover_an_epoch(corpus):
    ds = _dataset(corpus, seed=1)
    B, world = 2, 2
    steps = ds.steps_per_epoch(B, world)
    seen = []
    for step in range(steps):
        parts = [ds.batch_indices(step, B, rank, world)[1] for rank in range(world)]
        _, whole = ds.batch_indices(step, B * world, 0, 1)
        assert sorted(np.concatenate(parts)) == sorted(whole)
        seen += list(whole)
    assert len(set(seen)) == len(seen) == steps * B * world
    assert ds.batch_indices(steps, B, 0, world)[0] == 1  # next epoch
    batch = ds.batch(0, ds.batch_indices(0, B, 0, world)[1])
    assert batch["audio"].shape == (B, (TINY.audio_context_frames + TINY.window) * SAMPLES_PER_FRAME)
    assert batch["this"].shape == (B, TINY.window, ds.motion_dim) and batch["this"].dtype == torch.float32


def test_exclude_speakers(corpus):
    ds = _dataset(corpus, exclude_speakers=("toy:0",))
    assert all(not s.startswith("toy:0") for s in ds.speakers)
    assert len(ds.clips) < len(_dataset(corpus).clips)


def test_tracks_to_corpus(tmp_path):
    """A tracked 30-fps run + its 44.1 kHz audio become a 25-fps corpus the trainer reads;
    rotation relative to the mean."""
    import soundfile as sf

    from splattalk.talk.corpus.tracks import TracksToCorpus, convert

    fps, seconds, E = 30.0, 12.0, 26
    n = int(fps * seconds)
    t = (np.arange(n) + 0.5) / fps
    run = tmp_path / "alice"
    (run / "tracking").mkdir(parents=True)
    expr = np.zeros((n, E), np.float32)
    expr[:, 0] = t / seconds  # a ramp survives linear resampling exactly
    jaw = np.zeros((n, 3), np.float32)
    jaw[:, 0] = 0.1 + 0.05 * np.sin(2 * np.pi * 0.5 * t)
    rot = np.tile(np.array([0.0, 0.3, 0.0], np.float32), (n, 1))  # subject faces 0.3 rad to the side
    rot[:, 1] += 0.02 * np.sin(2 * np.pi * 0.25 * t)
    np.savez(
        run / "tracking" / "tracks.npz",
        expr=expr,
        jaw=jaw,
        rot=rot,
        neck=np.zeros((n, 3)),
        transl=np.zeros((n, 3)),
        eyes=np.zeros((n, 6)),
        shape=np.zeros(16, np.float32),
        K=np.array([[500.0, 0, 128], [0, 500.0, 128], [0, 0, 1]], np.float32),
        viewmat=np.eye(4, dtype=np.float32),
        width=np.int32(256),
        height=np.int32(256),
        fps=np.float32(fps),
        head_model=np.array("default-head-v1"),
    )
    media = tmp_path / "alice.wav"
    sf.write(media, (0.1 * np.sin(2 * np.pi * 220 * np.arange(int(44100 * seconds)) / 44100)).astype(np.float32), 44100)
    records = convert(
        TracksToCorpus(runs=(run,), media=(media,), out=tmp_path / "corpus", clip_seconds=5.0, heldout_every=3)
    )
    assert len(records) == 3 and [r.split for r in records] == ["train", "train", "heldout"]
    ds = WindowDataset(tmp_path / "corpus", None, window=TINY.window, context_frames=TINY.audio_context_frames)
    motion = np.concatenate([c.motion for c in ds.clips])
    T = len(motion)
    assert T == 300 and ds.motion_dim == E + 6
    t25 = (np.arange(T) + 0.5) / 25
    np.testing.assert_allclose(motion[:, 0], np.clip(t25 / seconds, t[0] / seconds, t[-1] / seconds), atol=1e-6)
    np.testing.assert_allclose(motion[:, E + 3], 0.1 + 0.05 * np.sin(2 * np.pi * 0.5 * t25), atol=2e-3)
    assert (
        abs(motion[:, E + 1].mean()) < 2e-3 and motion[:, E + 1].std() > 0.01
    )  # the 0.3-rad offset is gone, the motion stays
    assert all(c.samples == len(c.motion) * SAMPLES_PER_FRAME for c in ds.clips)


def test_frame_phones_label_each_frame_centre():
    from splattalk.talk.training.dataset import frame_phones

    # AA over [0.10, 0.30) s, then B over [0.30, 0.34) s, then silence; an unknown label is -1
    labels = frame_phones(["AA", "B", "xx"], np.array([0.10, 0.30, 0.40]), np.array([0.30, 0.34, 0.48]), 14)
    aa, b = PHONE_SET.index("AA"), PHONE_SET.index("B")
    # frame i's centre is (i + 0.5) / 25 s
    assert labels.tolist() == [0, 0, aa, aa, aa, aa, aa, b, 0, 0, -1, -1, 0, 0]


def test_items_carry_phone_labels_masked_past_the_end(corpus):
    ds = WindowDataset(
        corpus,
        "train",
        window=TINY.window,
        context_frames=TINY.audio_context_frames,
        style_frames=TINY.style_frames,
        jitter=False,
    )
    for index in range(len(ds.windows)):
        item = ds.item(0, index)
        assert item["phone"].shape == (TINY.window,) and item["phone"].dtype == np.int64
        past = item["valid"] == 0
        assert (item["phone"][past] == -1).all()
        # the toy corpus says "AA" exactly while the jaw is open, silence otherwise
        open_ = item["this"][:, JAW.start] > 0.05
        assert (item["phone"][~past & open_] == PHONE_SET.index("AA")).all() and (
            item["phone"][~past & ~open_] == 0
        ).all()
