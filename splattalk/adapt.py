"""``splattalk adapt RUN``: fit the talk model's mouth read-out to the person of a tracked run.

The run's video gives true (speech, mouth) pairs of one person: its audio and the tracked expression +
jaw. The mouth read-out (phone posteriors → mouth, ``talk/readout.py``) continues training on the first
``1 − holdout`` of them (``talk/training/readout_finetune.py``); the rest of the video scores it: Pearson r of the
inner-lip gap (``head/mouth.py``, best lag within ±2 frames) of the model against the tracked mouth on the
held-out seconds, before and after (the model hears only the held-out part's audio).

Audio/video sync: some videos carry their sound a few frames off the picture (the Obama addresses of
../shared/real: 2–6 frames, 80–240 ms). Learned as is, the read-out would learn that delay along with the mouth,
and every avatar it drives from new speech would move its lips off the words. So the video's offset is found from
its loudness alone (:func:`splattalk.talk.metrics.av_offset` on the part adapt learns from) and, beyond the lips'
own lead on the sound (:data:`NATURAL_LEAD` frames), taken out of the training pairs; the held-out r, before and
after, is then searched around the same offset (the held-out video carries it too).

Written to ``RUN/talk/``: ``readout_adapted.safetensors`` (the read-out's weights; metadata: the base
model's SHA-256 and the figures) and ``adapt.json``; while training, ``adapt_state.pt`` after every epoch,
so a killed run resumes where it stopped. :func:`adapted_model` applies the result to the base model.

A run whose video has no speech keeps the base read-out: only its motion style is taken.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from splattalk.assets import file_sha256
from splattalk.atomic import atomic_path, write_json
from splattalk.commands import AdaptCommand
from splattalk.errors import SplattalkError
from splattalk.head.default import load_default_head
from splattalk.head.mouth import mouth_gap
from splattalk.models import FORMAT_TAG, base_checkpoint, paths, resolve_model
from splattalk.run import RunLayout, Tracks
from splattalk.talk.audio import load_audio
from splattalk.talk.inference import generate
from splattalk.talk.metrics import av_offset, lagged_pearson, loudness_envelope, shifted
from splattalk.talk.pitch import speech_features
from splattalk.talk.training.readout_finetune import finetune_readout, tracked_motion

MIN_VOICED_FRACTION = 0.1
"""Below this fraction of voiced frames a video counts as having no speech to learn from (the real clips of
../shared/real: 0.22–0.56; noise: 0)."""
MIN_LEVEL_DBFS = -55.0
"""Quieter than this (RMS over the whole video, dB full scale) counts as silence (the real clips: −32 to −19)."""
NATURAL_LEAD = 1
"""Frames of audio/video offset that speech itself shows (the lips part a little before the sound: 0 to −1 frame
on the lab-synchronised clips of ../shared/real): offsets this small are left in the training pairs."""


def _load_tracks(run: Path) -> dict:
    """The run's tracks as arrays (a missing or broken file is a clear error naming it)."""
    return Tracks.load(RunLayout(run).tracks).to_arrays()


def _speech(cmd: AdaptCommand):
    """The run's speech ``[S]`` at 16 kHz, or None when its video has no audio or no speech."""
    source = cmd.audio
    if source is None:
        config = Path(cmd.run) / "tracking" / "config.json"
        try:
            source = Path(json.loads(config.read_text())["video"])
        except (OSError, KeyError, ValueError):
            raise SplattalkError(
                f"{config} does not name the tracked video: pass --audio with the video's speech"
            ) from None
        if not source.is_file():
            raise SplattalkError(f"the tracked video {source} is gone: pass --audio with its speech")
    try:
        audio = load_audio(source, max_bytes=None)
    except SplattalkError as err:
        if cmd.audio is not None:
            raise
        print(f"splattalk adapt: {source} has no readable audio ({str(err)[:120]})")
        return None
    level = 20 * np.log10(np.sqrt(np.mean(np.square(audio, dtype=np.float64))) + 1e-12)
    if level < MIN_LEVEL_DBFS:
        return None
    return audio if np.mean(speech_features(audio).voiced) >= MIN_VOICED_FRACTION else None


def tracked_gap(head, tracks: dict, frames: slice) -> np.ndarray:
    """The tracked inner-lip gap ``[T]`` of ``frames`` (``head.mouth.mouth_gap``, the person's identity)."""
    identity = {"shape": tracks["shape"], "static_offset": tracks["static_offset"]}
    return mouth_gap(head, tracks["expr"][frames], tracks["jaw"][frames], **identity)


def mouth_r(model, head, audio, tracks: dict, frames: slice, centre: int = 0) -> float:
    """Lagged Pearson r (±2 frames around ``centre``) of ``model``'s inner-lip gap on the audio of ``frames`` vs
    the tracked gap."""
    E = head.num_expr
    identity = {"shape": tracks["shape"], "static_offset": tracks["static_offset"]}
    truth = tracked_gap(head, tracks, frames)
    motion = generate(model, audio[frames.start * 640 : frames.stop * 640])
    n = min(len(truth), len(motion))
    pred = mouth_gap(head, motion[:n, :E], motion[:n, E + 3 : E + 6], **identity)
    return lagged_pearson(pred, truth[:n], 2, centre=centre)[0]


def sync_offset(audio: np.ndarray, gap: np.ndarray) -> int:
    """The video's audio/video offset in frames, from ``audio`` and the tracked inner-lip gap ``gap: [T]`` of its
    first T frames (as ``talk.metrics.av_offset`` reports it: negative when the mouth moves before its sound),
    0 when within :data:`NATURAL_LEAD`."""
    offset, _ = av_offset(loudness_envelope(audio, len(gap)), gap)
    return offset if abs(offset) > NATURAL_LEAD else 0


def run(cmd: AdaptCommand) -> int:
    torch.set_num_threads(1)
    out = paths(cmd.run)
    if not 0.0 <= cmd.holdout < 0.9:
        raise SplattalkError(f"--holdout must be in [0, 0.9), got {cmd.holdout}")
    if out["readout"].is_file() and not cmd.force:
        print(f"{out['readout']} exists (pass --force to adapt again); figures in {out['report']}")
        return 0
    tracks = _load_tracks(cmd.run)
    model = resolve_model(cmd.checkpoint)
    if str(tracks.get("head_model")) != model.cfg.head_model:
        raise SplattalkError(
            f"{cmd.run} was tracked with head model {tracks.get('head_model')!s} but the talk model moves "
            f"{model.cfg.head_model}: retrack with the matching --head or pass a matching --checkpoint"
        )
    if model.readout is None:
        raise SplattalkError("this talk model has no mouth read-out to adapt (the built-in model has one)")
    if str(tracks.get("head_model")) != load_default_head().model_id:
        raise SplattalkError(
            f"adapt measures the mouth on the default head; {cmd.run} uses {tracks.get('head_model')!s}"
        )
    audio = _speech(cmd)
    if audio is None:
        print(
            f"splattalk adapt: the video of {cmd.run} has no speech to learn from; only its motion style is taken "
            "(the talk model's mouth stays as it is)"
        )
        return 0
    motion = tracked_motion(tracks)
    T = min(len(motion), len(audio) // 640)
    cut = round((1.0 - cmd.holdout) * T)
    if cut < 50:
        raise SplattalkError(f"only {cut / 25:.1f} s of speech to learn from in {cmd.run}: adapt needs at least 2 s")
    head = load_default_head()
    offset = sync_offset(audio, tracked_gap(head, tracks, slice(0, cut)))
    if offset:
        print(
            f"splattalk adapt: the sound of {cmd.run}'s video is {abs(offset) * 40} ms "
            f"{'behind' if offset < 0 else 'ahead of'} its picture; learning from the re-synchronised pairs"
        )
        motion = shifted(motion, -offset)  # motion[t] now the mouth that goes with the sound at t
    tuned, summary = finetune_readout(
        model, [(audio[: cut * 640], motion[:cut])], cmd.epochs, cmd.lr, seed=cmd.seed, state_path=out["state"]
    )
    report = {
        "config": {k: str(v) for k, v in asdict(cmd).items()},
        "training": summary,
        "frames_trained": cut,
        "frames_held_out": T - cut,
        "av_offset_frames": offset,
    }
    if T - cut >= 25:
        held = slice(cut, T)
        report["heldout_r_before"] = mouth_r(model, head, audio, tracks, held, offset)
        report["heldout_r_after"] = mouth_r(tuned, head, audio, tracks, held, offset)
    base = base_checkpoint(cmd.checkpoint)
    meta = {"format": FORMAT_TAG, "base_sha256": file_sha256(base), "report": json.dumps(report)}
    tensors = {k: v.detach().contiguous() for k, v in tuned.readout.state_dict().items()}
    with atomic_path(out["readout"]) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    write_json(out["report"], report)
    out["state"].unlink(missing_ok=True)
    if "heldout_r_after" in report:
        print(
            f"adapted the mouth to {cmd.run}: "
            f"held-out r {report['heldout_r_before']:.3f} → {report['heldout_r_after']:.3f} "
            f"({(T - cut) / 25:.1f} s held out); wrote {out['readout']}"
        )
    else:
        print(f"adapted the mouth to {cmd.run} on {cut / 25:.1f} s; wrote {out['readout']}")
    return 0
