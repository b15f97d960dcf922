"""``splattalk demo``: the whole pipeline on the embedded sample, reusing finished stages.

Imported when the command runs (``splattalk.cli`` loads it lazily); only the live viewer (viser) waits for ``--view``.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from splattalk.assets import data_path
from splattalk.atomic import save_npz
from splattalk.avatar.fit import fit_run
from splattalk.avatar.fit_config import FitConfig
from splattalk.avatar.io import load_avatar
from splattalk.commands import DemoCommand
from splattalk.errors import SplattalkError
from splattalk.export import export_clip, talk_motion
from splattalk.head.params import MOTION_FPS
from splattalk.run import RunLayout, avatar_path
from splattalk.talk.audio import load_audio
from splattalk.tracking.config import TrackConfig
from splattalk.tracking.run import track
from splattalk.viewer.config import ViewConfig
from splattalk.viewer.server import run as run_viewer

SAMPLE_VIDEO = data_path("sample", "sample.mp4")
SAMPLE_SPEECH = data_path("speech", "sample_en_1.wav")
DEMO_FIT = FitConfig(resolution=256, coarse_fraction=0.0, head_only=False, retrack_steps=0, alpha_weight=0.0)
"""The demo's fit, as measured before the real-clip defaults (256², the whole matte, no matte term, no held-out
refinement): the synthetic sample's neck belongs to the built-in head, and ``splattalk demo`` must finish in
minutes on 2 cores. ``splattalk fit`` defaults to 512² coarse-to-fine, head-only, with the matte term."""


class _Stages:
    """Prints what each stage does and how long it took."""

    def __init__(self):
        self.times: list[tuple[str, float]] = []

    def run(self, name: str, what: str, fn):
        print(f"\n== {name}: {what}", flush=True)
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        self.times.append((name, elapsed))
        print(f"== {name} done in {elapsed:.1f} s", flush=True)
        return result

    def summary(self) -> str:
        total = sum(t for _, t in self.times)
        rows = "\n".join(f"  {name:<8} {t:7.1f} s" for name, t in self.times)
        return f"stage times:\n{rows}\n  {'total':<8} {total:7.1f} s"


def run(cmd: DemoCommand) -> int:
    if not SAMPLE_VIDEO.is_file():
        raise SplattalkError(
            f"the embedded sample video is missing ({SAMPLE_VIDEO}); "
            "regenerate it with `python scripts/make_sample_video.py`"
        )
    speech = cmd.speech or SAMPLE_SPEECH
    run_dir = cmd.out
    layout = RunLayout(run_dir)

    audio = load_audio(speech)  # a bad --speech fails now, not after minutes of tracking and fitting
    stages = _Stages()

    stages.run(
        "track", f"{SAMPLE_VIDEO.name} → {layout.tracking_dir}", lambda: track(SAMPLE_VIDEO, run_dir, TrackConfig())
    )

    fit_cfg = DEMO_FIT if cmd.fit_iterations is None else dataclasses.replace(DEMO_FIT, iterations=cmd.fit_iterations)
    stages.run("fit", f"Gaussian avatar → {layout.avatar_dir}", lambda: fit_run(run_dir, fit_cfg))

    avatar = load_avatar(avatar_path(run_dir))
    motion_path = layout.motion(speech.stem)

    def talk():
        motion = talk_motion(audio, avatar.model_id, None, None, seed=0, run=run_dir)
        save_npz(motion_path, motion=motion, fps=np.int32(MOTION_FPS), head_model=np.str_(avatar.model_id))
        return motion

    motion = stages.run("talk", f"{speech.name} → {motion_path}", talk)
    mp4 = layout.export("demo")
    stages.run("export", f"→ {mp4}", lambda: export_clip(avatar, motion, mp4, audio))
    print("\n" + stages.summary())
    print(f"\nthe talking-head video: {mp4}")
    if cmd.view:
        print(f"opening the live viewer on http://{cmd.host}:{cmd.port} (Ctrl-C to stop)")
        return run_viewer(ViewConfig(run=run_dir, host=cmd.host, port=cmd.port))
    return 0
