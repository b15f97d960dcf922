"""Mirror me in a real browser: Chromium's fake camera plays the repository's sample video into the viewer page.

The sample (``splattalk/data/sample/sample.mp4``: the default head rendered with known parameters) is converted
at test time to a y4m file (imageio-ffmpeg's binary) that Chromium plays as its camera
(``--use-file-for-fake-video-capture``, looped). "Mirror me" starts the page's capture; the server tracks the
frames with the application's live tracker (``splattalk.mirror``) and the avatar's jaw must follow the video's
mouth: the tracked jaw, placed on the video's timeline by the page's capture times, correlates with the jaw the
sample was rendered with. A second tab whose camera is denied gets a clear message; "Stop mirroring" stops it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from viewer_helpers import CHROMIUM, CHROMIUM_ARGS, FAKE_MEDIA_ARGS, ROOT, small_avatar

pytestmark = pytest.mark.browser

SAMPLE = ROOT / "splattalk" / "data" / "sample" / "sample.mp4"
SECONDS = 8
"""Length of the y4m the fake camera loops (200 frames at 25 fps)."""
ARGS = CHROMIUM_ARGS + FAKE_MEDIA_ARGS
VIEWPORT = {"width": 900, "height": 480}
SHOTS = Path(os.environ["SPLATTALK_SCREENSHOTS"]) if os.environ.get("SPLATTALK_SCREENSHOTS") else None
DENY_JS = (
    "navigator.mediaDevices.getUserMedia = () => "
    "Promise.reject(new DOMException('denied by the test', 'NotAllowedError'));"
)


def to_y4m(video: Path, out: Path, seconds: float, side: int = 320) -> Path:
    """The first ``seconds`` of ``video`` as a ``side``² 25-fps y4m (Chromium's fake camera format)."""
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-i", str(video), "-t", str(seconds)]
    cmd += ["-vf", f"scale={side}:{side},fps=25", "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", str(out)]
    subprocess.run(cmd, check=True)
    return out


def _wait(condition, message: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def _session_of(server, known: set):
    _wait(lambda: set(server.sessions) - known, "no session for the new tab", 30)
    cid = next(iter(set(server.sessions) - known))
    return cid, server.sessions[cid]


@pytest.fixture(scope="module")
def mirror_server():
    """A viewer with a small default avatar and the application's live tracker (no talk model: quicker)."""
    from conftest import free_port

    from splattalk.mirror import mirror_factory
    from splattalk.viewer.config import ViewConfig
    from splattalk.viewer.server import ViewServer, load_resources

    cmd = ViewConfig(port=free_port(), loudness_only=True)
    resources = load_resources(cmd, log=lambda *a, **k: None)
    resources.avatar = small_avatar(3000)
    resources.mirror = mirror_factory(resources.avatar, None)
    srv = ViewServer(cmd, resources=resources, log=lambda *a, **k: None).start()
    yield srv
    srv.stop()


def best_lag_r(times_s: np.ndarray, values: np.ndarray, truth: np.ndarray, fps: float = 25.0) -> tuple[float, float]:
    """Correlation of ``values`` (sampled at page times ``times_s``) with the looped ``truth`` [N] at the best
    start offset, and the median correlation over all offsets (what an unrelated signal gets)."""
    n = len(truth)
    frames = np.round((times_s - times_s[0]) * fps).astype(int)
    rs = []
    for lag in range(n):
        rs.append(np.corrcoef(values, truth[(frames + lag) % n])[0, 1])
    rs = np.nan_to_num(np.array(rs))
    return float(rs.max()), float(np.median(rs))


def test_mirror_me_in_chromium(playwright_api, mirror_server, tmp_path):
    server = mirror_server
    y4m = to_y4m(SAMPLE, tmp_path / "sample.y4m", SECONDS)
    browser = playwright_api.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=[*ARGS, f"--use-file-for-fake-video-capture={y4m}"]
    )
    try:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"http://127.0.0.1:{server.port}")
        page.wait_for_selector("#splattalk-mirror", timeout=45_000)
        cid, (session, _) = _session_of(server, set())
        page.get_by_role("button", name="Mirror me").click()
        _wait(lambda: session.mirror.faces > 10, "no tracked webcam frame reached the session", 30)
        assert "live video" not in page.inner_text("body"), "a hidden live-video input is visible"

        # Collect the tracked jaw with the page's capture time of each frame: one loop of the video when the page
        # and the tracker keep up (≥ 80 frames), two on a loaded machine.
        jaw: dict[int, tuple[float, float]] = {}
        t_start = time.monotonic()
        while time.monotonic() < t_start + 2 * SECONDS:
            if time.monotonic() > t_start + SECONDS and len(jaw) >= 80:
                break
            shown = session.mirror.frame(time.monotonic())
            if shown is not None:
                seq, row, _, page_ms = shown
                jaw[seq] = (page_ms / 1000.0, float(row[-3]))
            time.sleep(0.01)
        assert session._state_name() == "mirror" and session._last_key[0] == "mirror"
        times, jaws = np.array(sorted(jaw.values())).T
        with np.load(ROOT / "splattalk" / "data" / "sample" / "sample_gt.npz") as gt:
            truth = gt["jaw"][: 25 * SECONDS, 0]
        r, r_unrelated = best_lag_r(times, jaws, truth)
        fps = len(jaw) / (times[-1] - times[0])
        history = np.array(page.evaluate("window.__splattalkMirror.history"))
        sent = page.evaluate("window.__splattalkMirror.seq")
        print(
            f"\nmirror: {len(jaw)} tracked frames ({fps:.1f}/s, tracker {np.median(session.mirror.track_ms):.0f} ms), "
            f"page sent {sent}, server received {session.mirror.received}, dropped {session.mirror.dropped}; "
            f"jaw r {r:.2f} vs the rendered jaw (any other offset: median {r_unrelated:.2f}); "
            f"the page saw {len(history)} mirrored frames"
        )
        assert r > 0.7, f"the avatar's jaw does not follow the video's mouth (r {r:.2f})"
        assert len(history) > 20 and np.median(history[:, 2]) < 2000
        assert session.mirror.refused == 0
        assert "camera: live" in page.inner_text("#splattalk-mirror")

        folder = SHOTS or Path(tempfile.gettempdir()) / "splattalk-browser-test"
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / "viewer_mirror.png"))

        # A second tab whose camera is denied: a clear message, its own session untouched.
        other = browser.new_page(viewport=VIEWPORT)
        other.add_init_script(DENY_JS)
        other.goto(f"http://127.0.0.1:{server.port}")
        other.wait_for_selector("#splattalk-mirror", timeout=45_000)
        _, (session2, _) = _session_of(server, {cid})
        other.get_by_role("button", name="Mirror me").click()
        other.wait_for_function("() => document.body.innerText.includes('Camera unavailable')", timeout=15_000)
        assert "allow it for this page" in other.inner_text("body")
        assert not session2.mirror.active and session2.mirror.received == 0
        assert session.mirror.active

        # Stop: the page stops capturing, the worker ends and frees its tracker.
        worker = session.mirror.worker
        page.get_by_role("button", name="Stop mirroring").click()
        _wait(lambda: not session.mirror.active, "Stop did not reach the server")
        page.wait_for_function("() => !window.__splattalkMirror.on", timeout=10_000)
        worker.join(5)
        assert not worker.is_alive()
        received = session.mirror.received
        time.sleep(0.5)
        assert session.mirror.received == received and session.mirror.frame(time.monotonic()) is None
    finally:
        browser.close()
