"""Build the talk training corpus offline: plan utterances from a seed, render, label, write.

The plan is a pure function of the seed: job ``i`` draws its voice, rate, pitch,
style, split and text from its own generator ``(seed, i)``, so a larger
``--hours`` extends the same corpus and a rerun skips finished clips.
Held-out material uses voices (espeak-ng accents/variants, one flite voice) and
sentences that training never sees, plus real recordings of other speakers.
"""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import time
import zlib
from dataclasses import asdict, dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, sosfilt
from tqdm import tqdm

from splattalk.atomic import write_json
from splattalk.errors import SplattalkError
from splattalk.talk.config import SAMPLE_RATE
from splattalk.talk.corpus.layout import (
    SOURCES,
    Utterance,
    clip_done,
    clip_paths,
    read_wav,
    rebuild_manifest,
    remove_partial_files,
    write_clip,
)
from splattalk.talk.corpus.motion_synth import synthesize_motion
from splattalk.talk.corpus.phones import Segmentation, label_speech, normalize
from splattalk.talk.corpus.recordings import alsa_clips, asterisk_prompts, codec2_clips
from splattalk.talk.corpus.styles import STYLES
from splattalk.talk.corpus.texts import WORD_LIST, _dictionary_words, make_sentences
from splattalk.talk.corpus.tracks import TracksToCorpus, add_runs, read_sources
from splattalk.talk.corpus.tts import ESPEAK_VARIANTS, ESPEAK_VOICES, FLITE_VOICES, Voice, synthesize

HELDOUT_ESPEAK_VOICES = ("en-029", "en-gb-x-gbcwmd")
HELDOUT_ESPEAK_VARIANTS = ("m6", "f4", "klatt3")
HELDOUT_FLITE_VOICES = ("rms",)


@dataclass(frozen=True)
class CorpusConfig:
    """Options of ``scripts/make_talk_corpus.py``."""

    out: Path
    """Corpus folder (created; rerunning resumes it)."""
    hours: float = 1.0
    """Approximate hours of speech to make."""
    seed: int = 0
    """Seed of everything random (texts, voices, styles, motion)."""
    heldout_fraction: float = 0.06
    """Share of synthetic utterances spoken by held-out voices (with held-out sentences)."""
    flite_fraction: float = 0.3
    """Share of synthetic utterances spoken by flite (the rest by espeak-ng)."""
    recordings: bool = True
    """Include the real recordings Debian packages ship (asterisk, codec2, alsa), when installed."""
    recording_fraction: float = 0.25
    """At most this share of the hours comes from the asterisk prompts."""
    augment: bool = True
    """Vary level, add low noise or telephone band-limiting to some clips (motion is unaffected)."""
    workers: int = 1
    """Processes rendering in parallel."""
    videos: tuple[Path, ...] = ()
    """Run folders tracked with `splattalk track --head default` whose videos join the corpus as real material
    (source ``video``: speech + the tracked mouth as truth; talk/corpus/tracks.py). Converted once each (by hash)."""
    video_licences: tuple[str, ...] = ()
    """Licence of each --videos video, in order (one value: all); recorded in DIR/sources.json."""
    video_speakers: tuple[str, ...] = ()
    """Speaker of each --videos run, in order (one value: all); default: the run folder's name."""


@dataclass(frozen=True)
class Job:
    """One planned utterance."""

    id: str
    index: int
    source: str
    speaker: str
    split: str
    style: int
    text: str
    rate: float = 1.0
    pitch: float = 1.0
    parts: tuple = ()
    """Recordings: ((path, text), …) joined with pauses."""


_WORDS_PER_SECOND = 2.9  # typical synthetic speech at rate 1, with pauses


def plan(config: CorpusConfig) -> list[Job]:
    """Every utterance of the corpus, in order; deterministic from the config's seed."""
    jobs: list[Job] = []
    budget = config.hours * 3600.0
    if config.recordings:
        rec_jobs, rec_seconds = _recording_jobs(config, asterisk_prompts(), budget * config.recording_fraction)
        jobs += rec_jobs
        for k, rec in enumerate(codec2_clips() + alsa_clips()):
            rng = np.random.default_rng([config.seed, 2, k])
            rec_seconds += sf.info(str(rec.path)).duration
            jobs.append(
                Job(
                    f"real-{k:03d}",
                    k,
                    "recording",
                    rec.speaker,
                    "heldout",
                    int(rng.integers(len(STYLES))),
                    rec.text,
                    parts=((str(rec.path), rec.text),),
                )
            )
        budget -= rec_seconds
    train_espeak = [v for v in ESPEAK_VOICES if v not in HELDOUT_ESPEAK_VOICES]
    train_var = [v for v in ESPEAK_VARIANTS if v not in HELDOUT_ESPEAK_VARIANTS]
    train_flite = [v for v in FLITE_VOICES if v not in HELDOUT_FLITE_VOICES]
    i, seconds, seen = 0, 0.0, set()
    while seconds < budget:
        rng = np.random.default_rng([config.seed, 1, i])
        heldout = rng.random() < config.heldout_fraction
        text = make_sentences(rng, 1)[0]
        while text in seen:  # every utterance says something new (held-out sentences stay unseen)
            text = make_sentences(rng, 1)[0]
        seen.add(text)
        if rng.random() < config.flite_fraction:
            engine, name = "flite", str(rng.choice(HELDOUT_FLITE_VOICES if heldout else train_flite))
            rate, pitch = float(rng.uniform(0.85, 1.2)), 1.0
        else:
            voice = rng.choice(HELDOUT_ESPEAK_VOICES if heldout else train_espeak)
            variant = rng.choice(HELDOUT_ESPEAK_VARIANTS if heldout else train_var)
            engine, name = "espeak-ng", f"{voice}+{variant}"
            rate, pitch = float(rng.uniform(0.8, 1.35)), float(rng.uniform(0.7, 1.4))
        jobs.append(
            Job(
                f"tts-{i:06d}",
                i,
                engine,
                f"{engine}:{name}",
                "heldout" if heldout else "train",
                int(rng.integers(len(STYLES))),
                text,
                rate,
                pitch,
            )
        )
        seconds += len(text.split()) / _WORDS_PER_SECOND / rate + 0.6
        i += 1
    return jobs


def _recording_jobs(config: CorpusConfig, prompts: list, budget: float) -> tuple[list[Job], float]:
    """Asterisk prompts shuffled and joined into 3–10 s utterances, up to ``budget`` seconds."""
    rng = np.random.default_rng([config.seed, 3])
    order = rng.permutation(len(prompts))
    jobs, group, length, total = [], [], 0.0, 0.0
    target = rng.uniform(3.0, 10.0)
    for k in order:
        rec = prompts[k]
        group.append((str(rec.path), rec.text))
        length += sf.info(str(rec.path)).duration + 0.45
        if length >= target:
            n = len(jobs)
            split = "heldout" if rng.random() < 0.1 else "train"
            text = " ".join(t for _, t in group)
            jobs.append(
                Job(
                    f"rec-{n:05d}",
                    n,
                    "recording",
                    "asterisk:allison",
                    split,
                    int(rng.integers(len(STYLES))),
                    text,
                    parts=tuple(group),
                )
            )
            total += length
            group, length, target = [], 0.0, rng.uniform(3.0, 10.0)
            if total >= budget:
                break
    return jobs, total


def render(job: Job, seed: int, augment: bool = True) -> tuple[Utterance, np.ndarray, np.ndarray, object]:
    """Speech, ground-truth motion and phones of one job."""
    rng = np.random.default_rng([seed, 7, hash_id(job.id)])
    if job.source == "recording":
        pieces, labels, starts, ends, t, methods = [], [], [], [], 0.0, set()
        for path, text in job.parts:
            audio = read_wav(path)
            seg, method = label_speech(audio, text)
            methods.add(method)
            gap = np.zeros(int(rng.uniform(0.25, 0.7) * SAMPLE_RATE), np.float32) if len(job.parts) > 1 else None
            pieces.append(audio)
            labels += seg.labels
            starts += list(seg.start + t)
            ends += list(seg.end + t)
            t += len(audio) / SAMPLE_RATE
            if gap is not None:
                pieces.append(gap)
                t += len(gap) / SAMPLE_RATE
        audio = np.concatenate(pieces)
        seg = normalize(Segmentation(labels, np.array(starts), np.array(ends)), len(audio) / SAMPLE_RATE)
        phone_source = "+".join(sorted(methods))
    else:
        voice = Voice(job.source, job.speaker.split(":", 1)[1], job.rate, job.pitch)
        audio, seg = synthesize(job.text, voice)
        lead, tail = rng.uniform(0.1, 0.6, size=2)
        pad0, pad1 = int(lead * SAMPLE_RATE), int(tail * SAMPLE_RATE)
        audio = np.concatenate([np.zeros(pad0, np.float32), audio, np.zeros(pad1, np.float32)])
        seg = normalize(
            Segmentation(seg.labels, seg.start + pad0 / SAMPLE_RATE, seg.end + pad0 / SAMPLE_RATE),
            len(audio) / SAMPLE_RATE,
        )
        phone_source = job.source
    peak = float(np.abs(audio).max()) if len(audio) else 0.0
    if peak > 0:
        audio = audio * (0.7 / peak)
    motion = synthesize_motion(audio, seg, STYLES[job.style], rng)
    if augment:
        audio = _augment(audio, rng)
    wav, npz = clip_paths(job.id)
    record = Utterance(
        job.id,
        wav,
        npz,
        len(audio) / SAMPLE_RATE,
        job.speaker,
        job.style,
        job.split,
        job.text,
        job.source,
        phone_source,
    )
    return record, audio, motion, seg


def _augment(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Level change, sometimes a noise floor (SNR 25–45 dB), sometimes telephone band (300–3400 Hz)."""
    audio = audio * 10 ** (rng.uniform(-10.0, 0.0) / 20.0)
    if rng.random() < 0.15:
        sos = butter(4, [300, 3400], btype="bandpass", fs=SAMPLE_RATE, output="sos")
        audio = sosfilt(sos, audio)
    if rng.random() < 0.3:
        speech_rms = np.sqrt(np.mean(audio[np.abs(audio) > 1e-3] ** 2)) if (np.abs(audio) > 1e-3).any() else 1e-3
        noise = rng.standard_normal(len(audio)) * speech_rms * 10 ** (-rng.uniform(25.0, 45.0) / 20.0)
        audio = audio + noise
    return audio.astype(np.float32)


def hash_id(text: str) -> int:
    """A stable (process-independent) integer for a string."""
    return zlib.crc32(text.encode("utf-8"))


def _recordings_found() -> dict:
    """How many package-shipped recordings were found, with the packages to install when none were."""
    return {
        "asterisk (asterisk-core-sounds-en-wav + asterisk-core-sounds-en)": len(asterisk_prompts()),
        "codec2 (codec2-examples)": len(codec2_clips()),
        "alsa (alsa-utils)": len(alsa_clips()),
    }


def _environment() -> dict:
    """Versions of what shapes the corpus (another espeak-ng or word list gives other audio/texts)."""

    def tool(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return "missing"
        lines = [ln.strip() for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
        return next((ln for ln in lines if "version" in ln.lower() or "1." in ln), lines[0] if lines else "")

    try:
        ps = version("pocketsphinx")
    except PackageNotFoundError:
        ps = "missing"
    return {
        "espeak_ng": tool(["espeak-ng", "--version"]),
        "flite": tool(["flite", "--version"]),
        "pocketsphinx": ps,
        "word_list": f"{WORD_LIST} ({len(_dictionary_words())} usable words)",
    }


def _work(args: tuple) -> str:
    job, root, seed, augment = args
    record, audio, motion, seg = render(job, seed, augment)
    write_clip(root, record, audio, motion, seg.labels, seg.start, seg.end)
    return job.id


def build_corpus(config: CorpusConfig) -> dict:
    """Make (or finish) the corpus in ``config.out``; returns a summary."""
    root = Path(config.out)
    root.mkdir(parents=True, exist_ok=True)
    cfg_path = root / "config.json"
    if cfg_path.is_file():
        old = json.loads(cfg_path.read_text())
        if old.get("seed") != config.seed:
            raise SplattalkError(
                f"{root} was made with seed {old.get('seed')}, not {config.seed}; "
                "rerun with that seed to resume it, or choose a new --out."
            )
    write_json(
        cfg_path, asdict(replace(config, out=str(root))) | {"format": "splattalk-talk-corpus-1"} | _environment()
    )
    t0 = time.time()
    remove_partial_files(root)
    jobs = plan(config)
    todo = [j for j in jobs if not clip_done(root, j.id)]
    args = [(j, root, config.seed, config.augment) for j in todo]
    since_manifest = 0
    with tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="corpus", unit="clip") as bar:
        if config.workers > 1:
            with multiprocessing.get_context("spawn").Pool(config.workers) as pool:
                for _ in pool.imap_unordered(_work, args, chunksize=4):
                    bar.update()
                    since_manifest += 1
                    if since_manifest >= 200:
                        rebuild_manifest(root)
                        since_manifest = 0
        else:
            for a in args:
                _work(a)
                bar.update()
                since_manifest += 1
                if since_manifest >= 200:
                    rebuild_manifest(root)
                    since_manifest = 0
    videos = {"converted": [], "skipped": []}
    if config.videos:
        videos = add_runs(
            TracksToCorpus(
                runs=tuple(config.videos),
                out=root,
                licences=config.video_licences,
                speakers=config.video_speakers,
            )
        )
    records = rebuild_manifest(root)
    wanted = {j.id for j in jobs} | {
        c for e in read_sources(root) if e["run"] in map(str, config.videos) for c in e["clips"]
    }
    records = [r for r in records if r.id in wanted]
    summary = {
        "clips": len(records),
        "rendered_now": len(todo),
        "videos_converted_now": len(videos["converted"]),
        "hours": sum(r.duration for r in records) / 3600.0,
        "hours_by_source": {s: sum(r.duration for r in records if r.source == s) / 3600.0 for s in SOURCES},
        "heldout_clips": sum(r.split == "heldout" for r in records),
        "recordings_found": _recordings_found() if config.recordings else "disabled",
        "seconds": time.time() - t0,
    }
    return summary
