"""Viewer sessions without a browser: bad input, long files, several tabs, disconnects, text, styles, export."""

from __future__ import annotations

import asyncio
import threading
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from talk_helpers import random_model
from viewer_helpers import ROOT, RecordingView, small_avatar, speech_like, wav_bytes

from splattalk.viewer import uploads
from splattalk.viewer.loudness import LoudnessStream, mouth_open_channel
from splattalk.viewer.session import Limits, Resources, Session
from splattalk.viewer.talking import talk_streams

SAMPLES = {p.name: p for p in sorted((ROOT / "splattalk" / "data" / "speech").glob("*.wav"))}


def make_resources(streams=None, **kw) -> Resources:
    avatar = small_avatar(1500)
    if streams is None:
        channel = mouth_open_channel(avatar.head.expr_names)
        streams = lambda style: LoudnessStream(avatar.head.num_expr + 6, channel)  # noqa: E731
    kw.setdefault("limits", Limits(max_upload_bytes=50 * 2**20, max_audio_seconds=900.0, max_text_chars=200))
    return Resources(avatar=avatar, streams=streams, samples=SAMPLES, export_resolution=64, **kw)


@pytest.fixture
def res():
    return make_resources()


def new_session(res, tmp_path, name="s"):
    view = RecordingView()
    return Session(res, view, tmp_path / name), view


def wait(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# ----------------------------------------------------------------------------- bad uploads


def test_upload_that_is_not_audio_is_refused_and_the_session_keeps_working(res, tmp_path):
    s, view = new_session(res, tmp_path)
    for name, content in (("notes.wav", b"this is not audio at all " * 200), ("photo.mp3", bytes(range(256)) * 64)):
        assert s.on_upload(name, content) is None
    assert len(view.errors()) == 2 and all("could not decode" in e for e in view.errors())
    clip = s.on_upload("speech.wav", wav_bytes(speech_like(1.0)))
    assert clip is not None and view.audio[-1][1].startswith("data:audio/webm")
    s.close()


def test_empty_upload(res, tmp_path):
    s, view = new_session(res, tmp_path)
    assert s.on_upload("empty.wav", b"") is None
    assert "empty (0 bytes)" in view.errors()[0]


def test_wrong_extension_is_refused_before_decoding(res, tmp_path):
    s, view = new_session(res, tmp_path)
    assert s.on_upload("script.sh", wav_bytes(speech_like(0.5))) is None
    assert ".sh files are not accepted" in view.errors()[0]


def test_oversized_upload_is_refused_when_it_starts(tmp_path):
    """The size guard on a real viser server: a declared 200 MB transfer is dropped before any part is stored."""
    import viser
    from viser import _messages

    server = viser.ViserServer(host="127.0.0.1", port=_free_port(), verbose=False)
    try:
        button = server.gui.add_upload_button("Upload speech")
        refused = []
        shim = SimpleNamespace(_websock_connection=server._websock_server, gui=server.gui)
        uploads.install_size_guard(shim, 50 * 2**20, refused.append)
        sent = []
        original = server._websock_server.queue_message
        server._websock_server.queue_message = lambda m: (sent.append(m), original(m))[1]
        size = 200 * 2**20
        uuid = button._impl.uuid

        async def deliver(message):
            await server._websock_server._handle_incoming_message(7, message)

        asyncio.run(
            deliver(_messages.FileTransferStartUpload(uuid, "t-big", "big.wav", "audio/wav", size // 2**19, size))
        )
        assert "t-big" not in server.gui._current_file_upload_states
        assert refused and "200 MiB" in refused[0] and "50 MiB" in refused[0]
        acks = [m for m in sent if isinstance(m, _messages.FileTransferPartAck)]
        assert acks and acks[0].transferred_bytes == acks[0].total_bytes == size  # the page's button is released
        part = bytes(2**19)
        for i in range(3):  # the parts the browser sends anyway are dropped, not stored
            asyncio.run(deliver(_messages.FileTransferPart(uuid, "t-big", i, part)))
        assert server.gui._current_file_upload_states == {} and button.value.content == b""
        # A file within the limit still goes through (the handle gets it; there is no real client to call back).
        small = wav_bytes(speech_like(0.2))
        asyncio.run(deliver(_messages.FileTransferStartUpload(uuid, "t-ok", "ok.wav", "audio/wav", 1, len(small))))
        asyncio.run(deliver(_messages.FileTransferPart(uuid, "t-ok", 0, small)))
        assert button.value.name == "ok.wav" and button.value.content == small
    finally:
        server.stop()


def test_check_declared_and_display_names():
    with pytest.raises(Exception, match="200 MiB"):
        uploads.check_declared("big.flac", 200 * 2**20, 50 * 2**20)
    assert uploads.display_name("../../../etc/passwd.wav") == "passwd.wav"
    assert uploads.display_name("..\\..\\windows\\x.mp3") == "x.mp3"
    assert uploads.display_name('/abs/"<b>.ogg') == "b.ogg"
    assert uploads.display_name("") == "upload" and uploads.display_name("..") == "upload"
    assert len(uploads.display_name("a" * 500 + ".wav")) == 80


def test_filename_with_dotdot_writes_nothing_anywhere(res, tmp_path, monkeypatch):
    cwd = tmp_path / "cwd" / "deep"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    s, view = new_session(res, tmp_path, "session")
    clip = s.on_upload("../../evil.wav", wav_bytes(speech_like(0.6)))
    assert clip is not None and clip.label == "evil.wav" and view.audio[-1][2] == "evil.wav"
    wait(lambda: clip.done)
    s.step(time.monotonic())
    files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert files == [], f"an upload wrote files: {files}"
    assert not list(tmp_path.rglob("evil*"))
    s.close()
    assert not (tmp_path / "session").exists()


def test_unknown_sample_and_style_names(res, tmp_path):
    s, view = new_session(res, tmp_path)
    assert s.use_sample("../../../etc/passwd") is None and "no sample clip" in view.errors()[-1]
    s.set_style("../evil")
    assert "Unknown style" in view.notes[-1][0]
    clip = s.use_sample(next(iter(SAMPLES)))
    assert clip is not None and clip.duration > 1.0


# ----------------------------------------------------------------------------- streaming and playback


def test_ten_minute_upload_streams_with_flat_memory(tmp_path):
    model = random_model()
    progress, memory = [], {}  # (audio pushed, frames out) per push; traced memory at some pushes
    go, checked = threading.Event(), threading.Event()

    class Recorded:
        """The talk stream, watched: holds at the start until the upload call has returned,
        and mid-file until the test looked."""

        def __init__(self, style):
            self.stream, self.pushed, self.out = talk_streams(model)(style), 0, 0

        def push(self, chunk):
            go.wait(30)
            n = len(progress)
            if n == 300:
                checked.wait(30)
            if n in (150, 650):
                memory[n] = tracemalloc.get_traced_memory()[0]
            frames = self.stream.push(chunk)
            self.pushed += len(chunk)
            self.out += len(frames)
            progress.append((self.pushed, self.out))
            return frames

        def finish(self):
            return self.stream.finish()

    res = make_resources(streams=Recorded)
    s, view = new_session(res, tmp_path)
    clip = s.on_upload("ten_minutes.wav", wav_bytes(speech_like(600.0)))
    assert clip is not None and clip.num_frames == 15_000
    tracemalloc.start()
    try:
        go.set()
        wait(lambda: len(progress) >= 300)
        s.step(time.monotonic())
        assert s.player.playing and not clip.done  # playing the first windows while the rest is generated
        checked.set()
        wait(lambda: len(memory) == 2, timeout=120)
    finally:
        tracemalloc.stop()
        s.close()
    # Streams: the first frames come out once one window of audio (4 s) is in, not after 600 s.
    first = next(pushed for pushed, out in progress if out > 0)
    assert first <= 5 * 16000
    # Memory stays flat while 250 s of audio stream through the model.
    growth = memory[650] - memory[150]
    assert growth < 2 * 2**20, f"memory grew by {growth / 2**20:.1f} MiB while streaming"
    assert not s.threads  # closing stopped the worker mid-file
    assert clip.error == "cancelled" or clip.ready == clip.num_frames


def test_playback_sends_frames_and_the_mouth_follows_the_speech(res, tmp_path):
    s, view = new_session(res, tmp_path)
    clip = s.on_upload("speech.wav", wav_bytes(speech_like(2.0)))
    wait(lambda: clip.done)
    t0 = time.monotonic()
    frames, jaw = [], []
    for k in range(60):
        frame = s.step(t0 + k * 0.04)
        if frame is not None:
            frames.append(frame)
            jaw.append(float(clip.motion[frame, -3]))
    assert frames == sorted(frames) and len(set(frames)) > 40  # a new frame each tick
    assert view.frames >= 55 and view.readouts[30][4] == "playing" and view.readouts[-1][4] == "ended"
    assert np.ptp(jaw) > 0.1  # the jaw opens and closes
    s.close()


def test_disconnect_mid_playback_stops_that_session_only(res, tmp_path):
    a, view_a = new_session(res, tmp_path, "a")
    b, view_b = new_session(res, tmp_path, "b")
    a.start(), b.start()
    clip_a = a.on_upload("a.wav", wav_bytes(speech_like(5.0, seed=1)))
    clip_b = b.on_upload("b.wav", wav_bytes(speech_like(5.0, seed=2)))
    assert clip_a.id != clip_b.id
    wait(lambda: a.player.playing and b.player.playing)
    time.sleep(0.3)
    before = threading.active_count()
    a.close()
    assert not a.threads and not (tmp_path / "a").exists()
    assert threading.active_count() < before
    frames = view_b.frames
    wait(lambda: view_b.frames > frames + 5, timeout=5)  # the other tab keeps playing
    assert b.player.clip is clip_b and b.player.playing
    assert view_a.audio[-1][0] == clip_a.id and view_b.audio[-1][0] == clip_b.id  # each page got its own audio
    b.close()


def test_several_sessions_share_the_model_but_not_state(tmp_path):
    res = make_resources(streams=talk_streams(random_model()))
    sessions = [new_session(res, tmp_path, f"s{i}") for i in range(3)]
    clips = [s.on_upload(f"{i}.wav", wav_bytes(speech_like(4.5, seed=i))) for i, (s, _) in enumerate(sessions)]
    for clip in clips:
        wait(lambda clip=clip: clip.done)
    assert all(c.error is None for c in clips)
    # The same model on different audio gives different motion; the same audio gives the same motion.
    assert not np.allclose(clips[0].motion, clips[1].motion)
    again = sessions[0][0].on_upload("0.wav", wav_bytes(speech_like(4.5, seed=0)))
    wait(lambda: again.done)
    np.testing.assert_allclose(again.motion, clips[0].motion, atol=1e-5)
    sessions[1][0].pause()
    sessions[0][0].step(time.monotonic())
    assert sessions[0][0].player.clip is again and sessions[2][0].player.clip is clips[2]
    for s, _ in sessions:
        s.close()


def test_style_change_regenerates_the_clip(tmp_path):
    style = np.random.default_rng(0).normal(0, 0.5, (50, 32)).astype(np.float32)
    res = make_resources(streams=talk_streams(random_model()), styles={"model default": None, "lively": style})
    s, view = new_session(res, tmp_path)
    clip = s.on_upload("x.wav", wav_bytes(speech_like(4.2)))
    wait(lambda: clip.done)
    neutral = clip.motion.copy()
    s.set_style("lively")
    assert clip.generation == 1
    wait(lambda: clip.done and clip.ready == clip.num_frames)
    assert not np.allclose(clip.motion, neutral)
    s.close()


# ----------------------------------------------------------------------------- text and export


def test_text_to_speech(res, tmp_path):
    from splattalk.viewer.speech_text import find_engine

    if find_engine() is None:
        pytest.skip("no espeak-ng or flite installed")
    res.tts_engine = find_engine()
    s, view = new_session(res, tmp_path)
    clip = s.say("--help Hello there; this is a test.")  # a leading dash is text, not an option
    assert clip is not None and 1.0 < clip.duration < 10.0, view.notes
    assert s.say("x" * 500) is None and "limit is 200" in view.errors()[-1]
    assert s.say(" \n\t\x00 ") is None and "nothing to say" in view.errors()[-1]
    assert list((tmp_path / "s").iterdir()) == []  # the engine's files are gone
    s.close()


def test_export_offers_an_mp4_with_both_streams(res, tmp_path):
    from splattalk.mp4 import probe

    s, view = new_session(res, tmp_path)
    assert s.export() is None and "Nothing to export" in view.notes[-1][0]
    clip = s.on_upload("x.wav", wav_bytes(speech_like(0.6)))
    thread = s.export()
    thread.join(120)
    assert view.downloads, view.notes
    name, content = view.downloads[0]
    out = tmp_path / name
    out.write_bytes(content)
    info = probe(out)
    assert info["video"][0] == clip.num_frames and info["video"][2:] == (64, 64)
    assert info["audio"] is not None and abs(info["audio"][0] - info["video"][1]) <= 1 / 25 + 1e-6
    assert list((tmp_path / "s").iterdir()) == []  # rendered in the session folder, then removed
    s.close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_load_resources_refuses_a_mismatched_talk_model(tmp_path):
    from talk_helpers import TINY_W2V

    from splattalk.errors import SplattalkError
    from splattalk.talk.checkpoint import save_talk_checkpoint
    from splattalk.viewer.config import ViewConfig
    from splattalk.viewer.server import load_resources

    path = tmp_path / "flame_model.safetensors"
    save_talk_checkpoint(random_model(TINY_W2V), path)
    with pytest.raises(SplattalkError, match="flame2020"):
        load_resources(ViewConfig(checkpoint=path), log=lambda *a, **k: None)
    res = load_resources(ViewConfig(loudness_only=True), log=lambda *a, **k: None)
    assert res.avatar.gaussians.num == 20_000 and "sample_en_1.wav" in res.samples
    assert isinstance(res.streams(None), LoudnessStream)
    assert Path(res.samples["sample_en_1.wav"]).is_file()


def test_view_command_help():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "splattalk", "view", "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "--port" in out.stdout and "--max-upload-mb" in out.stdout and "127.0.0.1" in out.stdout
