"""Tracked real video as a corpus source: converted once (by hash), resumed after a kill, mixed into training
batches by per-source weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from talk_helpers import save_tracked_run
from talk_toy_corpus import make_toy_corpus

from splattalk.errors import SplattalkError
from splattalk.talk.config import TINY
from splattalk.talk.corpus import tracks as tracks_mod
from splattalk.talk.corpus.layout import read_manifest
from splattalk.talk.corpus.tracks import SOURCES_FILE, TracksToCorpus, add_runs, read_sources
from splattalk.talk.training.dataset import WindowDataset, parse_source_weights


def _run(folder, seconds=9.0, seed=0, head_model="default-head-v1", fps=25.0):
    """A tracked run (jaw following a syllable envelope) and its 16 kHz speech wav."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fps)
    t = (np.arange(n) + 0.5) / fps
    env = np.clip(np.sin(2 * np.pi * 3.0 * t + seed), 0, None) ** 2
    jaw = np.zeros((n, 3), np.float32)
    jaw[:, 0] = 0.2 * env
    save_tracked_run(
        folder,
        (0.02 * rng.standard_normal((n, 26))).astype(np.float32),
        jaw,
        rot=(0.01 * rng.standard_normal((n, 3))).astype(np.float32),
        head_model=head_model,
        fps=fps,
    )
    media = folder.parent / f"{folder.name}.wav"
    s = np.arange(int(16000 * seconds)) / 16000
    sf.write(media, (0.2 * np.sin(2 * np.pi * 180 * s) * np.interp(s, t, env)).astype(np.float32), 16000)
    (folder / "tracking" / "config.json").write_text(json.dumps({"video": str(media)}))
    return folder, media


def _clips(root):
    out = {}
    for rec in read_manifest(root):
        with np.load(root / rec.motion) as data:
            out[rec.id] = (rec, data["motion"].copy())
    return out


def test_runs_convert_once_and_record_their_sources(tmp_path):
    a, _ = _run(tmp_path / "alice", seed=1)
    b, media_b = _run(tmp_path / "bob", seed=2)
    cfg = TracksToCorpus(runs=(a, b), out=tmp_path / "corpus", licences=("CC-BY-4.0", "public domain"), clip_seconds=4)
    assert add_runs(cfg) == {"converted": [str(a), str(b)], "skipped": []}
    records = read_manifest(tmp_path / "corpus")
    assert {r.source for r in records} == {"video"} and {r.speaker for r in records} == {"alice", "bob"}
    sources = {e["speaker"]: e for e in read_sources(tmp_path / "corpus")}
    assert sources["alice"]["licence"] == "CC-BY-4.0" and sources["bob"]["media"] == str(media_b)
    assert sum(len(e["clips"]) for e in sources.values()) == len(records) == 6  # 9 s in ≤ 4 s pieces: 3 each
    assert add_runs(cfg) == {"converted": [], "skipped": [str(a), str(b)]}
    sf.write(media_b, np.zeros(16000 * 9, np.float32), 16000)  # another recording: bob's key changes
    assert add_runs(cfg)["converted"] == [str(b)]


def test_a_killed_conversion_resumes_and_ends_as_an_uninterrupted_one(tmp_path, monkeypatch):
    runs = tuple(_run(tmp_path / name, seed=k)[0] for k, name in enumerate(("r0", "r1", "r2")))
    whole = TracksToCorpus(runs=runs, out=tmp_path / "whole", clip_seconds=4)
    add_runs(whole, log=lambda *a: None)
    cfg = TracksToCorpus(runs=runs, out=tmp_path / "killed", clip_seconds=4)
    real_write, written = tracks_mod.write_clip, []

    def dies_in_the_second_run(root, record, *args):
        if len(written) == 4:  # run 0's three clips and one of run 1's are written
            raise KeyboardInterrupt
        real_write(root, record, *args)
        written.append(record.id)

    monkeypatch.setattr(tracks_mod, "write_clip", dies_in_the_second_run)
    with pytest.raises(KeyboardInterrupt):
        add_runs(cfg, log=lambda *a: None)
    assert [e["run"] for e in read_sources(cfg.out)] == [str(runs[0])]  # only the finished run is recorded
    monkeypatch.setattr(tracks_mod, "write_clip", real_write)
    assert add_runs(cfg, log=lambda *a: None) == {"converted": [str(runs[1]), str(runs[2])], "skipped": [str(runs[0])]}
    done, ref = _clips(cfg.out), _clips(whole.out)
    assert sorted(done) == sorted(ref)
    for cid, (rec, motion) in ref.items():
        assert done[cid][0] == rec
        np.testing.assert_array_equal(done[cid][1], motion)
    entries = json.loads((cfg.out / SOURCES_FILE).read_text())["runs"]
    assert [e["licence"] for e in entries] == ["unknown"] * 3


def test_another_head_model_or_missing_media_is_a_clear_error(tmp_path):
    flame, _ = _run(tmp_path / "flame", head_model="flame2023")
    with pytest.raises(SplattalkError, match="track it again with `splattalk track --head default`"):
        add_runs(TracksToCorpus(runs=(flame,), out=tmp_path / "c"), log=lambda *a: None)
    gone, media = _run(tmp_path / "gone")
    media.unlink()
    with pytest.raises(SplattalkError, match="is gone: pass --media"):
        add_runs(TracksToCorpus(runs=(gone,), out=tmp_path / "c"), log=lambda *a: None)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Toy TTS clips (6 train utterances, ~14 windows) and tracked video (2 runs, 6 windows)."""
    root = make_toy_corpus(tmp_path_factory.mktemp("mixed"))
    folder = tmp_path_factory.mktemp("runs")
    runs = tuple(_run(folder / f"v{k}", seconds=12.0, seed=k)[0] for k in range(2))
    add_runs(TracksToCorpus(runs=runs, out=root, clip_seconds=4, heldout_every=0), log=lambda *a: None)
    return root


def _weighted(root, weights, seed=0):
    return WindowDataset(
        root, "train", window=TINY.window, context_frames=TINY.audio_context_frames, jitter=False,
        with_audio=False, seed=seed, source_weights=parse_source_weights(weights),
    )  # fmt: skip


@pytest.mark.parametrize("share", [0.5, 0.25, 0.8])
def test_every_batch_holds_the_weighted_share_of_video(mixed, share):
    ds = _weighted(mixed, (f"video={share}", f"tts={1 - share}"))
    video = ds.window_group == "video"
    natural = video.mean()
    assert 0.2 < natural < 0.4  # the corpus' own share differs from the weights asked for
    B = 8
    for epoch in range(3):
        order = ds.order(epoch)
        assert len(order) == len(ds)
        assert abs(video[order].mean() - share) <= 1.0 / len(ds) + 1e-9
        for step in range(ds.steps_per_epoch(B)):
            _, idx = ds.batch_indices(epoch * ds.steps_per_epoch(B) + step, B)
            assert abs(video[idx].sum() - share * B) <= 1.0 + 1e-9
    # a group's windows are shuffled and cycled: none repeats before all were drawn
    order = ds.order(0)
    drawn = order[video[order]]
    first = drawn[: int(video.sum())]
    assert len(set(first)) == len(first) and set(first) <= set(np.flatnonzero(video))
    if len(drawn) >= video.sum():
        assert sorted(first) == sorted(np.flatnonzero(video))
    assert not np.array_equal(ds.order(0), ds.order(1))  # a new shuffle each epoch
    np.testing.assert_array_equal(ds.order(2), _weighted(mixed, (f"video={share}", f"tts={1 - share}")).order(2))


def test_without_weights_windows_are_drawn_uniformly_and_zero_leaves_a_source_out(mixed):
    ds = _weighted(mixed, ())
    assert sorted(ds.order(0)) == list(range(len(ds)))
    only_video = _weighted(mixed, ("video=1", "tts=0"))
    assert (only_video.window_group[only_video.order(0)] == "video").all()


@pytest.mark.parametrize(
    "weights, message",
    [
        (("video=1",), "does not weigh"),
        (("video=0.5", "tts=0.3", "recording=0.2"), "has no such material"),
        (("video=0", "tts=0"), "all 0"),
        (("speech=1",), "GROUP=WEIGHT"),
        (("video=-1",), "GROUP=WEIGHT"),
        (("video",), "GROUP=WEIGHT"),
    ],
)
def test_bad_weights_are_clear_errors(mixed, weights, message):
    with pytest.raises(SplattalkError, match=message):
        _weighted(mixed, weights)
