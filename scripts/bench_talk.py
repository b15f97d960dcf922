#!/usr/bin/env python
"""Talk model speed: real-time factor and first-frame latency, batch and streaming.

Random weights (speed does not depend on them). For the ``small`` preset (decoding as the
built-in model is set to: expected codes, audio guidance, mouth ensemble) and the ``official`` ARTalk size:

* batch: ``generate`` on a whole utterance; real-time factor = audio seconds / compute seconds;
* streaming: ``TalkStream`` fed 20-ms chunks as fast as it takes them (same RTF idea), and
  first-frame latency = compute time of the ``push`` that completes the first window
  (the first window's 4 s of audio must have arrived; a file or upload delivers it at once);
* baseline: the official code's decoding, which recomputes the whole token sequence at
  every scale (``use_cache=False``), against our KV-cached decoding, on the official size.

Thread count: the small model gains little from a second thread, and on a shared machine
OpenMP's spin-waiting makes 2 threads several times slower than 1 (set OMP_WAIT_POLICY=PASSIVE
to avoid that), so both sizes run on 1 thread by default.

The last line is ``realtime factor: X×; first frame: Y s; official realtime factor: Z×``
with X, Y for the small preset (streaming first frame) and Z for the official size (batch).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import numpy as np
import torch

from splattalk.talk.checkpoint import build_model
from splattalk.talk.config import OFFICIAL, PRESETS, SAMPLE_RATE
from splattalk.talk.inference import generate
from splattalk.talk.stream import TalkStream


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 2
    return (rng.standard_normal(t.shape[0]) * 0.2 * envelope).astype(np.float32)


def shipped_decoding() -> dict:
    """The built-in model's decoding settings and read-out (TalkConfig fields), or none when it is missing."""
    from splattalk.models import DEFAULT_MODEL
    from splattalk.talk.checkpoint import load_talk_checkpoint

    if not DEFAULT_MODEL.is_file():
        return {}
    cfg = load_talk_checkpoint(DEFAULT_MODEL).cfg
    keys = (
        "expected_codes",
        "expected_channels",
        "audio_cfg_scale",
        "mouth_samples",
        "audio_posteriors",
        "readout_channels",
        "readout_context",
        "readout_hidden",
        "readout_weight",
    )
    return {k: getattr(cfg, k) for k in keys}


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def bench_batch(model, audio: np.ndarray, repeats: int, **kw) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        generate(model, audio, **kw)
        best = min(best, time.perf_counter() - start)
    return audio.shape[0] / SAMPLE_RATE / best


def bench_stream(model, audio: np.ndarray, chunk: int = 320) -> tuple[float, float]:
    """(real-time factor, first-frame compute latency in s) for 20-ms chunks pushed back to back."""
    stream = TalkStream(model)
    first, total = None, 0.0
    for pos in range(0, audio.shape[0], chunk):
        start = time.perf_counter()
        frames = stream.push(audio[pos : pos + chunk])
        spent = time.perf_counter() - start
        total += spent
        if first is None and frames.shape[0] > 0:
            first = spent
    start = time.perf_counter()
    stream.finish()
    total += time.perf_counter() - start
    return audio.shape[0] / SAMPLE_RATE / total, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--seconds", type=float, default=60.0, help="audio length for the small preset")
    parser.add_argument("--official-seconds", type=float, default=8.0, help="audio length for the official size")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for the small preset (1: see below)")
    parser.add_argument("--official-threads", type=int, default=1, help="torch CPU threads for the official size")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-official", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    print(
        f"device {dev}, {os.cpu_count()} cores, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; {load()}"
    )

    torch.manual_seed(0)
    # the small preset as the built-in model is made and decodes (phone posteriors, mouth read-out, expected codes,
    # audio guidance and mouth ensemble: the last three cost time)
    preset = replace(PRESETS[args.preset], **shipped_decoding()) if args.preset == "small" else PRESETS[args.preset]
    model = build_model(preset).eval().to(dev)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    audio = speechlike(args.seconds)
    generate(model, audio[: 5 * SAMPLE_RATE])  # warm-up
    rtf = bench_batch(model, audio, repeats=2)
    plain_rtf = bench_batch(
        model, audio, repeats=1, expected_codes=False, audio_cfg_scale=1.0, mouth_samples=1, readout_weight=0.0
    )
    stream_rtf, first = bench_stream(model, audio)
    c = model.cfg
    print(
        f"{args.preset} ({params:.1f} M params, {args.threads} threads; expected codes {c.expected_codes}, "
        f"audio guidance {c.audio_cfg_scale:g}, mouth samples {c.mouth_samples}, "
        f"read-out weight {c.readout_weight:g}): batch {rtf:.1f}× real time ({plain_rtf:.1f}× decoding as ARTalk); "
        f"stream {stream_rtf:.1f}×, "
        f"first frame {first:.3f} s after the first window's audio; {load()}"
    )

    official_rtf = float("nan")
    if not args.skip_official:
        torch.set_num_threads(args.official_threads)
        start = time.perf_counter()
        official = build_model(OFFICIAL).eval().to(dev)
        print(
            f"official built in {time.perf_counter() - start:.0f} s "
            f"({sum(p.numel() for p in official.parameters()) / 1e6:.0f} M params)"
        )
        o_audio = speechlike(args.official_seconds, seed=1)
        generate(official, o_audio[: 2 * SAMPLE_RATE])  # warm-up
        official_rtf = bench_batch(official, o_audio, repeats=1)
        baseline_rtf = bench_batch(official, o_audio, repeats=1, use_cache=False)
        o_stream_rtf, o_first = bench_stream(official, o_audio)
        print(
            f"official ({args.official_threads} threads): batch {official_rtf:.2f}× real time with KV cache, "
            f"{baseline_rtf:.2f}× recomputing "
            f"every scale as ARTalk does (cache speed-up {official_rtf / baseline_rtf:.2f}×); stream "
            f"{o_stream_rtf:.2f}×, first frame {o_first:.2f} s after the first window's audio; {load()}"
        )
    print(f"realtime factor: {rtf:.1f}×; first frame: {first:.2f} s; official realtime factor: {official_rtf:.2f}×")


if __name__ == "__main__":
    main()
