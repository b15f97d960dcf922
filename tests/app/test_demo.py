"""`splattalk demo --no-view` end to end on the embedded sample: an mp4 with both streams whose mouth moves
with the speech.

Slow (track + a short fit + talk + export: ~2–3 minutes on 2 cores); CI runs it after the default selection.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    from splattalk.models import DEFAULT_MODEL

    if not DEFAULT_MODEL.is_file():
        pytest.fail(f"the built-in talk model {DEFAULT_MODEL} is missing: the demo cannot talk")
    out = tmp_path_factory.mktemp("demo") / "run"
    args = [sys.executable, "-m", "splattalk", "demo", "--out", str(out), "--no-view", "--fit-iterations", "200"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout


def _mouth_box(avatar, size: int) -> tuple[slice, slice]:
    """Pixel box around the lips in the export's front view
    (the default head's vertices follow mediapipe's numbering)."""
    import torch

    from splattalk.avatar.framing import front_view
    from splattalk.avatar.model import posed_vertices
    from splattalk.head.params import HeadParams

    with torch.no_grad():
        rest = posed_vertices(avatar, HeadParams.zeros(1, avatar.head.num_expr))[0].numpy()
    viewmat, K = front_view(rest, size, size)
    lips = rest[[13, 14, 61, 291]]  # inner upper/lower lip, mouth corners
    cam = lips @ viewmat[:3, :3].T + viewmat[:3, 3]
    uv = (cam @ K.T)[:, :2] / cam[:, 2:3]
    (u0, v0), (u1, v1) = uv.min(0), uv.max(0)
    pad_u, pad_v = 0.15 * (u1 - u0), 0.04 * size
    return slice(int(v0 - pad_v), int(v1 + 2 * pad_v)), slice(int(u0 - pad_u), int(u1 + pad_u))


def test_demo_writes_a_talking_mp4(demo_run):
    import av
    from scipy.ndimage import gaussian_filter1d

    from splattalk.avatar.io import load_avatar
    from splattalk.demo import SAMPLE_SPEECH
    from splattalk.mp4 import probe
    from splattalk.talk.audio import load_audio
    from splattalk.talk.corpus.speech_checks import frame_activity, frame_envelope, pause_frames

    out, stdout = demo_run
    mp4 = out / "exports" / "demo.mp4"
    assert "stage times" in stdout and str(mp4) in stdout
    info = probe(mp4)
    assert info["video"] is not None and info["audio"] is not None
    audio = load_audio(SAMPLE_SPEECH)
    seconds = len(audio) / 16000
    frames, _, w, h = info["video"]
    assert abs(frames / 25 - seconds) < 0.1
    assert abs(info["audio"][0] - seconds) < 0.15

    rows, cols = _mouth_box(load_avatar(out / "avatar" / "avatar.safetensors"), w)
    with av.open(str(mp4)) as c:
        images = [f.to_ndarray(format="rgb24").astype(np.float32) for f in c.decode(video=0)]
    mouth = np.stack([im[rows, cols] for im in images])
    env = frame_envelope(audio, len(images))
    # [T] share of dark pixels in the mouth box: the open mouth's cavity (a closed mouth shows only the lip line).
    # Unlike a difference to a closed frame, it does not grow when the head turns or nods a little.
    opening = (mouth.mean(-1) < 50).mean(axis=(1, 2))
    active, pauses = frame_activity(audio, len(images)), pause_frames(audio, len(images))
    assert opening.max() > 0.08  # the mouth opens visibly
    assert opening[active].mean() > 3 * opening[pauses].mean()  # open while speaking, (nearly) closed in pauses
    assert np.corrcoef(opening, gaussian_filter1d(env, 2.0))[0, 1] > 0.3  # and it follows the speech envelope


def test_demo_reuses_finished_stages(demo_run):
    out, _ = demo_run
    stamp = (out / "avatar" / "avatar.safetensors").stat().st_mtime_ns
    args = [sys.executable, "-m", "splattalk", "demo", "--out", str(out), "--no-view", "--fit-iterations", "200"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "avatar" / "avatar.safetensors").stat().st_mtime_ns == stamp
