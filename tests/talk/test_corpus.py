"""Talk corpus: on-disk format, phone timings, coarticulated motion, determinism, resume."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from splattalk.talk.config import FPS, SAMPLE_RATE, SIL
from splattalk.talk.corpus import layout as C
from splattalk.talk.corpus.phones import Segmentation, normalize

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")


def _speak(text: str, voice: str = "en-us+m3", engine: str = "espeak-ng"):
    from splattalk.talk.corpus.tts import Voice, synthesize

    return synthesize(text, Voice(engine, voice))


def _motion(audio, seg, style=0, seed=0):
    from splattalk.talk.corpus.motion_synth import synthesize_motion
    from splattalk.talk.corpus.styles import STYLES

    return synthesize_motion(audio, seg, STYLES[style], np.random.default_rng(seed))


def _padded(audio, seg, pad=0.6):
    n = int(pad * SAMPLE_RATE)
    audio = np.concatenate([np.zeros(n, np.float32), audio, np.zeros(n, np.float32)])
    seg = normalize(Segmentation(seg.labels, seg.start + pad, seg.end + pad), len(audio) / SAMPLE_RATE)
    return audio, seg


def test_expression_names_match_default_head():
    from splattalk.head.default import EXPR_NAMES

    assert C.EXPR_NAMES == EXPR_NAMES
    assert C.MOTION_DIM == 32 and C.JAW == slice(29, 32) and C.ROTATION == slice(26, 29)


def test_espeak_mnemonics_map_to_arpabet():
    from splattalk.talk.config import ARPABET
    from splattalk.talk.corpus.phones import espeak_to_arpabet

    for m in ["p", "b", "m", "aI", "aU@", "@L", "i@3", "t#", "r-", "3:", "0", "_:", "dZ", "N", "O@", "VR", "e@"]:
        out = espeak_to_arpabet(m)
        assert out and all(p in ARPABET or p == SIL for p in out), m
    assert espeak_to_arpabet(";") == []


@needs_espeak
def test_format_round_trip(tmp_path):
    audio, seg = _speak("Bring me the blue map.")
    motion = _motion(audio, seg)
    dur = len(audio) / SAMPLE_RATE
    assert motion.shape == (round(dur * 25), 32) and motion.dtype == np.float32
    wav, npz = C.clip_paths("a")
    rec = C.Utterance("a", wav, npz, dur, "espeak-ng:en-us+m3", 0, "train", "Bring me the blue map.", "espeak-ng")
    C.write_clip(tmp_path, rec, audio, motion, seg.labels, seg.start, seg.end)
    assert C.clip_done(tmp_path, "a") and not C.clip_done(tmp_path, "b")
    C.rebuild_manifest(tmp_path)
    clips = list(C.iter_corpus(tmp_path, "train"))
    assert len(clips) == 1 and list(C.iter_corpus(tmp_path, "heldout")) == []
    clip = clips[0]
    assert clip.record == rec
    np.testing.assert_array_equal(clip.motion, motion)
    assert clip.phones == seg.labels
    np.testing.assert_allclose(clip.phone_end, seg.end, atol=1e-5)
    assert len(clip.audio) == len(audio)
    np.testing.assert_allclose(clip.audio, np.clip(audio, -1, 1), atol=1.0 / 32767)
    assert len(clip.motion) == round(clip.record.duration * FPS)
    with pytest.raises(ValueError):
        C.write_clip(tmp_path, rec, audio, motion[:-3], seg.labels, seg.start, seg.end)


def test_manifest_errors_are_actionable(tmp_path):
    from splattalk.errors import SplattalkError

    with pytest.raises(SplattalkError, match="make_talk_corpus"):
        C.read_manifest(tmp_path)


def test_coarticulation_is_smooth_and_anticipates():
    from splattalk.talk.corpus.visemes import articulate

    # "ma" + "moo": steps of 80-200 ms; a step function would jump by the full target change.
    labels = [SIL, "M", "AA", "M", "UW", SIL]
    edges = np.array([0.0, 0.5, 0.6, 0.8, 0.9, 1.1, 1.6])
    seg = Segmentation(labels, edges[:-1], edges[1:])
    t = (np.arange(160) + 0.5) / 100.0
    jaw, expr = articulate(seg, t)
    pucker = expr[:, C.expr_index("mouth_pucker")]
    for x in (jaw, pucker, expr[:, C.expr_index("lips_press")]):
        step = np.ptp(x)
        assert np.abs(np.diff(x, 2)).max() < 0.15 * step  # bounded acceleration, no steps
        assert np.abs(np.diff(x)).max() < 0.35 * step
    # anticipatory rounding: the /m/ before "oo" is already rounded, the /m/ before "a" is not
    m1, m2 = np.searchsorted(t, 0.55), np.searchsorted(t, 0.85)
    assert pucker[m2] > 0.2 and pucker[m2] > 3 * pucker[m1]


@needs_espeak
def test_bilabials_close_the_lips():
    from splattalk.talk.corpus.motion_synth import frame_times

    audio, seg = _padded(*_speak("Bob bought a map, maybe a pump by the pub.", "en-us+f2"))
    motion = _motion(audio, seg)
    t = frame_times(len(motion))
    press = motion[:, C.expr_index("lips_press")]
    jaw = motion[:, C.JAW.start]
    opening = motion[:, C.expr_index("mouth_open")]
    closures = []
    for lab, s, e in zip(seg.labels, seg.start, seg.end):
        if lab in ("P", "B", "M"):
            k = int(np.argmin(np.abs(t - 0.5 * (s + e))))
            assert press[k] > 0.5 and jaw[k] < 0.08 and opening[k] < 0.15, (lab, s, press[k], jaw[k])
            closures.append(jaw[k])
    assert len(closures) >= 8
    vowels = [0.5 * (s + e) for lab, s, e in zip(seg.labels, seg.start, seg.end) if lab in ("AA", "AE", "AH", "AO")]
    vowel_jaw = np.mean([jaw[np.argmin(np.abs(t - c))] for c in vowels])
    assert vowel_jaw > 0.07 and vowel_jaw > 2.5 * np.mean(closures)


@needs_espeak
def test_silence_relaxes_the_mouth_closed():
    from splattalk.talk.corpus.motion_synth import frame_times

    audio, seg = _padded(*_speak("Hello there. Look at that."), pad=0.8)
    motion = _motion(audio, seg)
    t = frame_times(len(motion))
    quiet = np.zeros(len(t), bool)
    for lab, s, e in zip(seg.labels, seg.start, seg.end):
        if lab == SIL and e - s > 0.7:  # a pause's middle; the mouth may open ~0.2 s before speech
            quiet |= (t > s + 0.25) & (t < e - 0.25)
    assert quiet.sum() >= 10
    assert motion[quiet, C.JAW.start].max() < 0.03
    assert motion[quiet, C.expr_index("mouth_open")].max() < 0.05
    assert motion[~quiet, C.JAW.start].max() > 0.15


@needs_espeak
def test_phone_timings_agree_with_pocketsphinx():
    from splattalk.talk.corpus.phones import align_pocketsphinx, boundary_error

    text = "Please call Stella. Ask her to bring these things with her from the store."
    audio, seg = _speak(text)
    err, matched = boundary_error(align_pocketsphinx(audio, text), seg)
    assert matched > 35 and err < 0.04


@needs_flite
def test_flite_voices_give_timed_phones():
    audio, seg = _speak("Five thick slabs of blue cheese.", "slt", "flite")
    assert len(audio) / SAMPLE_RATE == pytest.approx(seg.end[-1])
    assert {"F", "AY", "V", "TH", "B", "L", "UW", "CH", "IY", "Z"} <= set(seg.labels)
    assert np.all(np.diff(seg.start) > 0)


def test_yin_finds_the_pitch_of_a_tone():
    from splattalk.talk.pitch import yin

    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    for f in (90.0, 180.0, 320.0):
        x = 0.3 * np.sin(2 * np.pi * f * t) + 0.15 * np.sin(4 * np.pi * f * t)
        f0, _ = yin(x.astype(np.float32))
        assert np.median(f0[10:-10]) == pytest.approx(f, rel=0.01)


@needs_espeak
def test_motion_is_deterministic_and_styles_differ():
    from splattalk.talk.corpus.styles import style_id

    audio, seg = _padded(*_speak("Why did the tiger hide the golden key? Nobody knows, but we found it at home."))
    a, b = _motion(audio, seg, seed=3), _motion(audio, seg, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, _motion(audio, seg, seed=4))
    calm = [_motion(audio, seg, style_id("calm"), s)[:, C.ROTATION].std(0).sum() for s in range(4)]
    lively = [_motion(audio, seg, style_id("lively"), s)[:, C.ROTATION].std(0).sum() for s in range(4)]
    assert np.mean(lively) > 1.8 * np.mean(calm)
    short = _padded(*_speak("Yes, of course."), pad=0.3)
    for style in range(6):  # conversational head motion stays within a few degrees, short clips too
        for seed in range(8):
            rot = np.degrees(_motion(*short, style, seed)[:, C.ROTATION])
            assert np.abs(rot).max() < 15.0 and rot.std(0).max() < 5.0
    blinks = a[:, C.expr_index("blink_left")]
    assert blinks.max() > 0.35  # at least one blink in ~6 s


@needs_espeak
def test_build_is_deterministic_and_resumes(tmp_path):
    from splattalk.talk.corpus.build import CorpusConfig, build_corpus, plan

    cfg = CorpusConfig(out=tmp_path / "c", hours=0.006, seed=5, recordings=False, flite_fraction=0.0)
    assert plan(cfg) == plan(cfg)
    first = build_corpus(cfg)
    assert first["clips"] >= 2 and first["rendered_now"] == first["clips"]
    records = C.read_manifest(cfg.out)
    motion0 = list(C.iter_corpus(cfg.out))[0].motion
    again = build_corpus(cfg)
    assert again["rendered_now"] == 0 and again["clips"] == first["clips"]
    (cfg.out / records[0].motion).unlink()
    (cfg.out / "clips" / f".{records[0].id}.npz.tmp.x1.npz").write_bytes(b"PK")  # a killed write
    third = build_corpus(cfg)
    assert not list((cfg.out / "clips").glob(".*"))
    assert third["rendered_now"] == 1
    np.testing.assert_array_equal(list(C.iter_corpus(cfg.out))[0].motion, motion0)
    other = CorpusConfig(out=tmp_path / "d", hours=0.006, seed=6, recordings=False, flite_fraction=0.0)
    assert [j.text for j in plan(other)] != [j.text for j in plan(cfg)]


def test_plan_holds_out_voices_and_sentences(tmp_path):
    from splattalk.talk.corpus.build import CorpusConfig, plan

    jobs = plan(CorpusConfig(out=tmp_path, hours=0.5, seed=1, recordings=False, heldout_fraction=0.2))
    train = [j for j in jobs if j.split == "train"]
    held = [j for j in jobs if j.split == "heldout"]
    assert len(held) > 10 and len(train) > 4 * len(held)
    assert not {j.speaker for j in train} & {j.speaker for j in held}
    assert len({j.text for j in jobs}) == len(jobs)
    assert {j.source for j in jobs} == {"espeak-ng", "flite"}
    assert len({j.style for j in jobs}) == 6
    longer = plan(CorpusConfig(out=tmp_path, hours=0.7, seed=1, recordings=False, heldout_fraction=0.2))
    assert longer[: len(jobs)] == jobs  # more hours extend the same corpus


def test_transcripts_are_made_speakable():
    from splattalk.talk.corpus.recordings import number_words, speakable

    assert number_words(42) == "forty two" and number_words(100) == "one hundred" and number_words(7) == "seven"
    assert speakable("Press 1 [beep] or 20.") == "Press one or twenty."


def test_real_recording_is_labelled_and_moves_with_the_voice():
    from splattalk.talk.corpus import speech_checks as S
    from splattalk.talk.corpus.phones import label_speech
    from splattalk.talk.corpus.recordings import asterisk_prompts

    prompts = [p for p in asterisk_prompts() if p.path.stem == "agent-pass"]
    if not prompts:
        pytest.skip("asterisk-core-sounds-en(-wav) not installed")
    audio = C.read_wav(prompts[0].path)
    audio, _ = _padded(audio, Segmentation([], np.zeros(0), np.zeros(0)), pad=0.5)
    seg, method = label_speech(audio, prompts[0].text)  # "Please enter your password followed by the pound key."
    assert method == "pocketsphinx-align"
    assert {"P", "L", "IY", "Z", "W", "D", "K"} <= set(seg.labels)
    motion = _motion(audio, seg)
    closed, pauses = S.pause_closure(audio, motion)
    assert pauses >= 10 and closed == pauses
    assert S.jaw_envelope_correlation(audio, motion) > 0.4
