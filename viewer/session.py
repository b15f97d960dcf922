"""One browser tab's session: its clip, its player, its threads, its temp folder.

A :class:`Session` is the viewer's logic without viser: the GUI (``gui.py``)
calls its handlers and it answers through a :class:`View` (what the page
shows). Tests drive it with a recording view. Each session owns

* a playback thread (poses and sends frames: the clip's, or idle motion),
* at most one motion worker (``talking.MotionWorker``) and one export thread,
* a private temp folder — the only place it writes (export, text-to-speech).

:meth:`close` (the tab disconnected) stops all of them and removes the folder.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from splattalk.avatar.sequence import render_sequence
from splattalk.errors import SplattalkError
from splattalk.head.params import HeadParams, scale_motion
from splattalk.mp4 import write_mp4
from splattalk.talk.audio import load_audio
from splattalk.talk.config import FPS
from splattalk.viewer import idle, uploads
from splattalk.viewer.audio_sync import audio_data_url, parse_report
from splattalk.viewer.live_audio import LiveMic
from splattalk.viewer.live_readout import readout_factory
from splattalk.viewer.live_video import LiveVideo
from splattalk.viewer.loudness import mouth_open_channel
from splattalk.viewer.playback import Desired, Player
from splattalk.viewer.speech_text import speak
from splattalk.viewer.splats import SplatPoser
from splattalk.viewer.stream import SplatStream
from splattalk.viewer.talking import Clip, MotionWorker

TICK_SECONDS = 0.005
"""How often the playback thread looks at the clock (frames are sent only when they change)."""


@dataclass
class Limits:
    max_upload_bytes: int = 50 * 2**20
    max_audio_seconds: float = 900.0
    max_text_chars: int = 600
    max_export_seconds: float = 120.0


@dataclass
class Resources:
    """What all sessions share, read-only: the avatar, the talk model, sample clips, styles."""

    avatar: object
    """``avatar.model.Avatar`` (each session poses its own shallow copy)."""
    streams: object
    """Motion stream factory ``style → stream`` with ``push``/``finish`` (``talking.talk_streams(model)``:
    the model keeps no inference state, so sessions share it; or ``loudness.LoudnessStream``)."""
    base: object = None
    """``head.params.HeadParams`` of the tracked subject (neck, translation, eyes, facing), or None."""
    samples: dict[str, Path] = field(default_factory=dict)
    """Sample clip name → file (the only files a client can make the server read)."""
    styles: dict[str, np.ndarray | None] = field(default_factory=lambda: {"model default": None})
    """Style name → clip [style_frames, D] (None: the model's neutral style)."""
    tts_engine: str | None = None
    talk_model: object = None
    """The talk model behind ``streams`` (None: loudness only); Talk live reads lip shapes from its read-out."""
    scene_scale: float = 10.0
    latency: float = 0.03
    export_resolution: int = 512
    limits: Limits = field(default_factory=Limits)
    light_stream: bool = False
    """Send the head pose as a node transform and only the Gaussian groups that moved (``viewer/stream.py``)
    to a view that can show such updates, instead of every Gaussian every frame."""
    stream_tolerance_m: float = 1e-4
    """Largest error (metres) the light stream leaves in any Gaussian's centre or extent."""
    drive: object = None
    """A driven clip's (audio [S], motion [T, D], extras [T, 12], label) from ``splattalk view --drive``,
    played on connect."""
    mirror: object = None
    """Mirror me: a factory ``() → live_video.MirrorTracker`` (``splattalk view`` passes one that tracks with the
    avatar's head model), or None (the button says it is not available)."""


class _Cancelled(Exception):
    """The tab closed during an export."""


def render_clip(
    avatar,
    motion: np.ndarray,
    audio: np.ndarray,
    out: Path,
    size: int,
    background,
    base,
    expr_scale: float = 1.0,
    head_scale: float = 1.0,
    cancelled=lambda: False,
    extras: np.ndarray | None = None,
) -> int:
    """Render motion ``[T, E + 6]`` (scaled like the live view) with a front camera to ``out``
    (H.264 + AAC of ``audio``).

    The frames come from ``splattalk export``'s renderer (:func:`splattalk.avatar.sequence.render_sequence`: gsplat
    on CUDA, the CPU backend here); stops, raising :class:`_Cancelled`, as soon as ``cancelled()`` is true.
    """
    motion = scale_motion(motion, motion.shape[1] - 6, expr_scale, head_scale)
    params = HeadParams.from_motion(motion, base)
    if extras is not None:  # a driven clip: the driver's neck, translation and eyes
        params.neck, params.transl, params.eyes = extras[:, 0:3], extras[:, 3:6], extras[:, 6:12]
    rest = HeadParams.from_motion(np.zeros_like(motion[:1]), base)

    def frames():
        for frame in render_sequence(avatar, params, size, camera="front", rest=rest, background=background):
            if cancelled():
                raise _Cancelled
            yield frame

    return write_mp4(out, frames(), FPS, audio, sample_rate=16000)


class View(Protocol):
    """What a session shows in its page (``gui.ViserView``; a recording fake in tests)."""

    def show_splats(self, buffer: np.ndarray) -> None: ...
    def set_audio(self, clip_id: int, data_url: str | None, label: str) -> None: ...
    def set_audio_state(self, desired: Desired) -> None: ...
    def set_readout(
        self, frame: int | None, total: int, ready: int, fps: float, state: str, lead: float = 0.0
    ) -> None: ...
    def notify(self, title: str, body: str, level: str = "info") -> None: ...
    def offer_download(self, filename: str, content: bytes) -> None: ...


class Session:
    def __init__(self, resources: Resources, view: View, workdir: Path, clock=time.monotonic):
        self.res = resources
        self.view = view
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.poser = SplatPoser(resources.avatar, resources.base, resources.scene_scale)
        self.player = Player(resources.latency)
        self.lock = threading.RLock()
        self.closed = threading.Event()
        self._wake = threading.Event()
        self.worker: MotionWorker | None = None
        self.current: Clip | None = None
        """The clip most recently asked for (the player gets it once its audio is in the page)."""
        self.exporter: threading.Thread | None = None
        self.style_name = next(iter(resources.styles))
        self.expr_scale = 1.0
        self.head_scale = 1.0
        self.background = (1.0, 1.0, 1.0)
        """RGB in [0, 1]: the page's background, also the exported video's."""
        self.blink_ids = idle.blink_channels(resources.avatar.head.expr_names)
        self.live = LiveMic(
            self.poser.motion_dim,
            mouth_open_channel(resources.avatar.head.expr_names),
            view.notify,
            getattr(view, "live_command", lambda action: None),
            getattr(view, "live_status", lambda text, ms: None),
            clock=clock,
            readout=readout_factory(resources.talk_model),
            on_frame=self._wake_up,
        )
        """Talk live: the page's microphone drives the mouth over the idle motion (``live_audio.py``)."""
        self.mirror = LiveVideo(
            resources.mirror,
            view.notify,
            getattr(view, "mirror_command", lambda action: None),
            getattr(view, "mirror_status", lambda text, shown: None),
            clock=clock,
        )
        """Mirror me: the page's webcam drives the whole face and head (``live_video.py``)."""
        self.frames_sent = 0
        self.fps = 0.0
        self._t0 = clock()
        self._last_key = None
        self._last_readout = None
        self._sent_desired: Desired | None = None
        self._buffer = np.zeros((self.poser.num, 8), np.uint32)
        self._pending_drive = resources.drive
        """A driven clip to start once the page's controller first reports (its audio element exists then)."""
        self.stream = None
        if resources.light_stream and hasattr(view, "show_update"):
            self.stream = SplatStream(self.poser, resources.stream_tolerance_m)
        self._fps_window: list[float] = []
        self.thread = threading.Thread(target=self._run, name="viewer-playback", daemon=True)

    def _wake_up(self) -> None:
        """A new live mouth frame: the playback thread sends it now, not at its next tick."""
        self._wake.set()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Session:
        self.thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop every thread of this session and delete its temp folder (the tab is gone)."""
        with self.lock:
            self.closed.set()
            self._wake.set()
            if self.worker is not None:
                self.worker.cancel()
        self.live.close()
        self.mirror.close(timeout)
        for thread in (self.thread, self.worker, self.exporter):
            if thread is not None and thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout)
        shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def threads(self) -> list[threading.Thread]:
        return [t for t in (self.thread, self.worker, self.exporter) if t is not None and t.is_alive()]

    # ------------------------------------------------------------------ speech in
    def upload_refused(self, message: str) -> None:
        self.view.notify("Upload refused", message, "error")

    def on_upload(self, filename: str, content: bytes) -> Clip | None:
        """A finished upload (name and bytes as the browser sent them)."""
        label = uploads.display_name(filename)
        try:
            audio = uploads.decode_upload(
                filename, content, self.res.limits.max_upload_bytes, self.res.limits.max_audio_seconds
            )
        except SplattalkError as err:
            self.view.notify("Cannot use this upload", str(err), "error")
            return None
        return self.load_clip(audio, label)

    def use_sample(self, name: str) -> Clip | None:
        path = self.res.samples.get(name)
        if path is None:
            self.view.notify(
                "Unknown sample", f"there is no sample clip called {uploads.display_name(name)!r}", "error"
            )
            return None

        try:
            audio = load_audio(path, max_seconds=self.res.limits.max_audio_seconds)
        except SplattalkError as err:
            self.view.notify("Cannot read the sample", str(err), "error")
            return None
        return self.load_clip(audio, name)

    def say(self, text: str) -> Clip | None:
        try:
            audio = speak(text, self.workdir, self.res.limits.max_text_chars, self.res.tts_engine)
        except SplattalkError as err:
            self.view.notify("Cannot speak this text", str(err), "error")
            return None
        return self.load_clip(audio, f"text: {text[:40]}")

    def load_clip(self, audio: np.ndarray, label: str) -> Clip | None:
        """Start generating motion for ``audio`` at once, put its sound in the page, and play when frames exist."""
        if self.closed.is_set():
            return None
        clip = Clip(audio, label, self.poser.motion_dim)
        with self.lock:
            if self.closed.is_set():
                return None
            if self.worker is not None:
                self.worker.cancel()
            self.player.unload(self.clock())
            self.current = clip
            self._start_worker(clip)
        url = audio_data_url(clip.audio)
        self.view.set_audio(clip.id, url, label)
        with self.lock:
            if self.current is clip and not self.closed.is_set():
                self.player.load(clip, self.clock())
        return clip

    def load_driven(self, audio: np.ndarray | None, motion: np.ndarray, extras: np.ndarray, label: str) -> Clip | None:
        """Play a reenacted performance (no talk model: its motion is given whole)."""
        if self.closed.is_set():
            return None
        clip = Clip.driven(audio, label, motion, extras)
        with self.lock:
            if self.worker is not None:
                self.worker.cancel()
            self.worker = None
            self.player.unload(self.clock())
            self.current = clip
        self.view.set_audio(clip.id, audio_data_url(clip.audio), label)
        with self.lock:
            if self.current is clip and not self.closed.is_set():
                self.player.load(clip, self.clock())
        return clip

    def _start_worker(self, clip: Clip) -> None:
        style = self.res.styles.get(self.style_name)
        self.worker = MotionWorker(clip, self.res.streams, style, on_done=self._motion_done)
        self.worker.start()

    def _motion_done(self, clip: Clip) -> None:
        if clip.error and clip.error != "cancelled" and not self.closed.is_set():
            self.view.notify("Motion generation failed", f"{clip.label}: {clip.error}", "error")

    def talk_live(self) -> None:
        """Start the microphone (a playing clip pauses: the mouth follows the person now)."""
        self.pause()
        self.live.start()

    def mirror_me(self) -> None:
        """Start the webcam mirror (a playing clip pauses: the avatar copies the person now)."""
        self.pause()
        self.mirror.start()

    # ------------------------------------------------------------------ playback controls
    def play(self) -> None:
        with self.lock:
            self.player.play(self.clock())

    def pause(self) -> None:
        with self.lock:
            self.player.pause(self.clock())

    def toggle(self) -> None:
        with self.lock:
            if self.player.playing:
                self.player.pause(self.clock())
            elif self.player.clip is None:
                self.view.notify("Nothing to play", "upload speech, pick a sample clip or type text first", "warning")
            else:
                self.player.play(self.clock())

    def seek_frame(self, frame: int) -> None:
        with self.lock:
            self.player.seek(frame / FPS, self.clock())

    def set_loop(self, loop: bool) -> None:
        with self.lock:
            self.player.set_loop(loop)

    def set_expr_scale(self, value: float) -> None:
        self.expr_scale = float(value)

    def set_head_scale(self, value: float) -> None:
        self.head_scale = float(value)

    def set_background(self, rgb) -> None:
        self.background = tuple(float(np.clip(c, 0, 255)) / 255.0 for c in rgb)

    def set_style(self, name: str) -> None:
        """Another speaking style: the current clip's motion is generated again (playback waits for it)."""
        if name not in self.res.styles:
            self.view.notify("Unknown style", uploads.display_name(name), "error")
            return
        with self.lock:
            self.style_name = name
            clip = self.player.clip
            if clip is None or clip.extras is not None or self.closed.is_set():
                return  # nothing to regenerate (a driven clip has no talk model behind it)
            if self.worker is not None:
                self.worker.cancel()
            clip.reset()
            self._start_worker(clip)

    def clock_report(self, text: str) -> None:
        """The page's audio clock (the hidden text input's value)."""
        with self.lock:
            drive, self._pending_drive = self._pending_drive, None
        if drive is not None:  # the page is up: start `splattalk view --drive`'s clip now, not while it loads
            self.load_driven(*drive)
        report = parse_report(text)
        if report is None:
            return
        with self.lock:
            was_blocked = self.player.blocked
            self.player.report(report, self.clock())
            blocked = self.player.blocked
        if blocked and not was_blocked:
            self.view.notify(
                "Audio is blocked",
                "the browser did not allow sound to start: press Play (or ▶ on the audio bar)",
                "warning",
            )

    # ------------------------------------------------------------------ export
    def export(self, filename: str = "splattalk.mp4") -> threading.Thread | None:
        """Render the current clip to mp4 in a thread and offer it for download."""
        with self.lock:
            clip = self.player.clip
            if clip is None:
                self.view.notify("Nothing to export", "load speech first (upload, sample clip or text)", "warning")
                return None
            if clip.duration > self.res.limits.max_export_seconds:
                self.view.notify(
                    "Clip too long to export here",
                    f"{clip.duration:.0f} s; the viewer exports up to {self.res.limits.max_export_seconds:.0f} s. "
                    "Use `splattalk export RUN --audio FILE` for longer clips.",
                    "warning",
                )
                return None
            if self.exporter is not None and self.exporter.is_alive():
                self.view.notify("Export running", "wait for the current export to finish", "warning")
                return None
            self.exporter = threading.Thread(
                target=self._export, args=(clip, filename), name="viewer-export", daemon=True
            )
            self.exporter.start()
            return self.exporter

    def _export(self, clip: Clip, filename: str) -> None:
        while not clip.wait(clip.num_frames, 0.2):
            if self.closed.is_set():
                return
        if clip.error:
            self.view.notify("Export failed", f"motion generation failed: {clip.error}", "error")
            return
        size = self.res.export_resolution
        self.view.notify("Exporting", f"rendering {clip.ready} frames at {size}×{size}…", "info")
        out = self.workdir / f"export-{clip.id}.mp4"
        try:
            render_clip(
                self.res.avatar,
                clip.motion[: clip.ready],
                clip.audio,
                out,
                size,
                self.background,
                self.res.base,
                self.expr_scale,
                self.head_scale,
                cancelled=self.closed.is_set,
                extras=clip.extras[: clip.ready] if clip.extras is not None else None,
            )
            content = out.read_bytes()
        except _Cancelled:
            return
        except Exception as err:  # noqa: BLE001 - reported; the server keeps serving
            self.view.notify("Export failed", f"{type(err).__name__}: {err}", "error")
            return
        finally:
            out.unlink(missing_ok=True)
        self.view.offer_download(filename, content)

    # ------------------------------------------------------------------ the playback thread
    def _run(self) -> None:
        while not self.closed.is_set():
            self._wake.wait(TICK_SECONDS)
            self._wake.clear()
            if self.closed.is_set():
                break
            try:
                self.step(self.clock())
            except Exception as err:  # noqa: BLE001 - keep the tab alive; say what broke
                self.view.notify("Viewer error", f"{type(err).__name__}: {err}", "error")
                self.closed.wait(1.0)

    def step(self, now: float) -> int | None:
        """One tick: advance the player, sync the page's audio, send the frame if it changed.
        Returns the clip frame or None."""
        with self.lock:
            frame = self.player.tick(now)
            desired = self.player.desired()
            clip = self.player.clip
            state = self._state_name()
        if desired != self._sent_desired:
            self._sent_desired = desired
            self.view.set_audio_state(desired)
        mirror = self.mirror.frame(now) if frame is None else None
        live = self.live.frame(now) if frame is None and mirror is None else None
        if mirror is not None:  # the webcam drives everything: expression, jaw, eyes, head
            key = ("mirror", mirror[0], self.expr_scale, self.head_scale)
            row = None if key == self._last_key else mirror[1]
            extras = mirror[2]
        elif frame is None:
            t = now - self._t0
            # While the microphone streams, a frame goes out with each new mouth frame (~16/s) carrying the idle
            # motion of that moment: no extra frames in between for the page to decode.
            tick = int(t * FPS) if live is None or live[0] is None else live[0]
            key = ("idle", tick, self.expr_scale, self.head_scale)
            paced = live is not None and not self.live.may_send(now)  # the page has not drawn the last one yet
            row = None if key == self._last_key or paced else idle.idle_motion(t, self.poser.motion_dim, self.blink_ids)
            extras = None
            if row is not None and live is not None:
                row = row + live[1]
        else:
            key = (clip.id, clip.generation, frame, self.expr_scale, self.head_scale)
            row = None if key == self._last_key else clip.motion[frame]
            extras = clip.extras[frame] if clip.extras is not None else None
        total = clip.num_frames if clip is not None else 0
        ready = clip.ready if clip is not None else 0
        if row is not None:
            self._last_key = key
            row = scale_motion(row[None], self.poser.motion_dim - 6, self.expr_scale, self.head_scale)[0]
            if self.stream is not None:
                self.view.show_update(self.stream.update(row, extras))
            else:
                self.view.show_splats(self.poser.buffer(row, self._buffer, extras))
            self._count_frame(now)
            if live is not None:
                self.live.shown(live[2])
            if mirror is not None:
                self.mirror.shown(mirror[0], mirror[3])
        readout = (frame, total, ready, state)
        if row is not None or readout != self._last_readout:
            self._last_readout = readout
            self.view.set_readout(frame, total, ready, self.fps, state, self.player.lead)
        return frame

    def _state_name(self) -> str:
        p = self.player
        if p.clip is None:
            return "mirror" if self.mirror.active else "live" if self.live.active else "idle"
        if p.stalled:
            return "generating"
        if p.playing:
            return "playing"
        if p.ended:
            return "ended"
        return "paused" if p.started else "generating"

    def _count_frame(self, now: float) -> None:
        self.frames_sent += 1
        window = self._fps_window
        window.append(now)
        while window and now - window[0] > 1.0:
            window.pop(0)
        self.fps = (len(window) - 1) / max(window[-1] - window[0], 1e-6) if len(window) > 1 else 0.0
