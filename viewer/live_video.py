"""Mirror me: the page's webcam puppeteers the avatar, server side.

The page (``live_video_page.py``) draws webcam frames on a small canvas
(:data:`INPUT_SIDE` px on its longer side: the tracker's input size),
JPEG-encodes them and writes one message per frame (at most
:data:`SEND_FPS` a second) into hidden viser text inputs, alternating between
:data:`PANELS` panels (viser sends each panel's value at most every 50 ms):

    v <seq> <page ms at capture> <base64 JPEG>
    e <error name>        the camera could not start (denied, absent, …)
    s                     the page stopped capturing

:class:`LiveVideo` (one per tab session) checks each message against
:class:`VideoLimits` (size, rate, image dimensions) and keeps only the
*newest* frame: one worker thread per mirroring session decodes it and runs
the tracker; frames that arrive while it works replace each other (counted as
dropped, never queued). Nothing is written to disk. Stopping (or the tab
closing) ends the worker, which closes the tracker (its mediapipe graph).

The tracker comes from the application (the viewer must not import
tracking): a factory that makes a :class:`MirrorTracker`, which turns one RGB
frame into a motion row ``[E + 6]`` and extras ``[12]`` (neck, translation,
eyes) already retargeted onto the avatar — ``splattalk view`` passes
:class:`splattalk.mirror.Mirror`.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

VIDEO_LABELS = ("live video a", "live video b")
"""Labels of the hidden text inputs the page writes its frames into (one panel each, used in turn)."""
PANELS = len(VIDEO_LABELS)
INPUT_SIDE = 320
"""Longer side (pixels) of the frames the page sends: the live tracker's input size."""
SEND_FPS = 25
"""Most frames the page sends a second."""
JPEG_QUALITY = 0.75
"""The page's JPEG quality (lowered for a frame that would pass the size cap)."""
STALE_SECONDS = 0.5
"""No tracked frame for this long: the avatar goes back to its idle motion."""

_FRAME = re.compile(r"^v (\d{1,9}) (\d{1,12}(?:\.\d+)?) ([A-Za-z0-9+/]*={0,2})$")
_ERROR = re.compile(r"^e ([A-Za-z]{1,40})$")


class MirrorTracker(Protocol):
    """One stream's tracker (made per mirroring session by ``Resources.mirror``)."""

    def __call__(self, rgb: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray] | None:
        """``rgb [H, W, 3]`` uint8 at ``t`` seconds → (motion row ``[E + 6]``, extras ``[12]``), None: no face."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class VideoLimits:
    """What one tab may send (every limit is per session)."""

    max_message_chars: int = 80_000
    """Longest message accepted (a 320×240 webcam JPEG at quality 0.75 is ~15–30 KB, 20–40 K characters)."""
    max_messages_per_second: int = 30
    """The page sends at most 25."""
    max_side: int = 2 * INPUT_SIDE
    """Largest width or height of a frame (checked in the JPEG header, before decoding)."""


@dataclass(frozen=True)
class VideoFrame:
    seq: int
    page_ms: float
    """``performance.now()`` in the page when the frame was captured."""
    jpeg: bytes


class VideoRefused(ValueError):
    """A message broke a limit or the format (the reason is user-facing)."""


def encode_frame(rgb: np.ndarray, seq: int = 0, page_ms: float = 0.0, quality: int = 75) -> str:
    """An RGB frame ``[H, W, 3]`` uint8 → a message as the page writes it (tests and benchmarks)."""
    import cv2

    ok, jpg = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return f"v {seq} {page_ms:.1f} {base64.b64encode(jpg.tobytes()).decode('ascii')}"


def parse_frame(text: str, limits: VideoLimits = VideoLimits()) -> VideoFrame:
    """Check a frame message's size and form (cheap: no decoding). Raises :class:`VideoRefused`."""
    if not isinstance(text, str):
        raise VideoRefused("not text")
    if len(text) > limits.max_message_chars:
        raise VideoRefused(f"a frame of {len(text)} characters (at most {limits.max_message_chars})")
    m = _FRAME.match(text)
    if m is None:
        raise VideoRefused("a malformed video message")
    seq, page_ms, b64 = m.groups()
    try:
        jpeg = base64.b64decode(b64, validate=True)
    except binascii.Error as err:
        raise VideoRefused(f"bad base64 ({err})") from None
    return VideoFrame(int(seq), float(page_ms), jpeg)


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's frame header, without decoding it. Raises :class:`VideoRefused`."""
    if data[:2] != b"\xff\xd8":
        raise VideoRefused("a frame that is not a JPEG image")
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise VideoRefused("a damaged JPEG image")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            if i + 9 > len(data):
                break
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
        i += 2 + length
    raise VideoRefused("a JPEG image without a frame header")


def decode_frame(jpeg: bytes, limits: VideoLimits = VideoLimits()) -> np.ndarray:
    """JPEG bytes → RGB ``[H, W, 3]`` uint8, refusing images over ``limits.max_side`` before decoding."""
    import cv2

    width, height = jpeg_size(jpeg)
    if not (0 < width <= limits.max_side and 0 < height <= limits.max_side):
        raise VideoRefused(f"a {width}×{height} frame (at most {limits.max_side} px a side)")
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape[:2] != (height, width):
        raise VideoRefused("a JPEG image that does not decode")
    return np.ascontiguousarray(image[:, :, ::-1])


CAMERA_REASONS = {
    "NotAllowedError": "the browser or the system denied access to the camera: "
    "allow it for this page (the icon in the address bar) and press Mirror me again",
    "NotFoundError": "no camera was found: connect one and press Mirror me again",
    "NotReadableError": "the camera is in use by another program or failed to start",
    "OverconstrainedError": "the camera cannot deliver video in a usable format",
    "NoMediaDevices": "this page cannot use a camera here: open the viewer at http://127.0.0.1 or "
    "http://localhost (browsers allow cameras only on secure or local pages)",
}


class LiveVideo:
    """One tab's webcam mirror: receives its frames, tracks the newest, keeps the newest result.

    ``factory()`` makes the tracker (None: this viewer has none — ``Mirror me`` says so); ``notify``,
    ``command(action)`` and ``status(text, data)`` talk to the page like :class:`~splattalk.viewer.live_audio.LiveMic`.
    """

    def __init__(
        self,
        factory: Callable[[], MirrorTracker] | None,
        notify,
        command=lambda action: None,
        status=lambda text, data: None,
        limits: VideoLimits = VideoLimits(),
        clock=time.monotonic,
    ):
        self.factory = factory
        self.notify, self.command, self.status = notify, command, status
        self.limits = limits
        self.clock = clock
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.active = False
        self.worker: threading.Thread | None = None
        self._run_id = 0
        self._reset()

    def _reset(self) -> None:
        self.slot: VideoFrame | None = None
        """The newest frame not yet tracked (a newer one replaces it)."""
        self.result: tuple[int, np.ndarray, np.ndarray, float] | None = None
        """(seq, motion row [D], extras [12], page ms) of the newest tracked frame with a face."""
        self.result_at = -1e9
        self.received = self.dropped = self.tracked = self.faces = self.refused = 0
        self._last_seq = -1
        self._told_refused = False
        self._times: deque[float] = deque()
        self.track_ms: deque[float] = deque(maxlen=50)
        """Tracker time of the last frames (decode + landmarks + fit), milliseconds."""
        self._done: deque[float] = deque(maxlen=50)

    # ------------------------------------------------------------------ control (GUI)
    def start(self) -> bool:
        if self.factory is None:
            self.notify(
                "Mirror me is not available",
                "this viewer has no live tracker (start it with `splattalk view`)",
                "error",
            )
            return False
        with self.lock:
            if self.active:
                return True
            self.active = True
            self._reset()
            self._run_id += 1
            run_id = self._run_id
            self.worker = threading.Thread(target=self._work, args=(run_id,), name="viewer-mirror", daemon=True)
            self.worker.start()
        self.command("start")
        self.status("camera: starting…", None)
        return True

    def stop(self, tell_page: bool = True) -> None:
        """Stop mirroring; the worker closes the tracker and ends (not waited for: this runs on viser's thread)."""
        with self.lock:
            was = self.active
            self.active = False
            self.slot = None
            self.result = None
            self.wake.notify_all()
        if tell_page:
            self.command("stop")
        if was:
            self.status("camera: off", None)

    def close(self, timeout: float = 5.0) -> None:
        """The tab is gone: stop and wait for the worker (the tracker is closed when it returns)."""
        self.stop(tell_page=False)
        worker = self.worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)

    # ------------------------------------------------------------------ messages (page)
    def receive(self, text: str) -> bool:
        """A message from the page; True when it was a frame kept for tracking."""
        if not isinstance(text, str) or not text:
            return False
        if text == "s":
            self.stop(tell_page=False)
            return False
        m = _ERROR.match(text)
        if m is not None:
            self._camera_failed(m.group(1))
            return False
        now = self.clock()
        reason = None
        with self.lock:
            if not self.active:
                return False
            try:
                self._check_rate(now)
                frame = parse_frame(text, self.limits)
            except VideoRefused as err:
                self.refused += 1
                if not self._told_refused:
                    self._told_refused, reason = True, str(err)
                frame = None
            if frame is not None:
                if frame.seq <= self._last_seq:
                    return False  # older than one already taken (the two panels can overtake each other)
                self._last_seq = frame.seq
                self.received += 1
                if self.slot is not None:
                    self.dropped += 1  # the worker is still busy: the newer frame wins
                self.slot = frame
                self.wake.notify_all()
        if reason is not None:
            self.notify("Webcam frame refused", f"the page sent {reason}; further refusals are not reported", "warning")
        return frame is not None

    def _check_rate(self, now: float) -> None:
        times = self._times
        times.append(now)
        while times and now - times[0] > 1.0:
            times.popleft()
        if len(times) > self.limits.max_messages_per_second:
            raise VideoRefused(f"more than {self.limits.max_messages_per_second} frames a second")

    def _camera_failed(self, name: str) -> None:
        self.stop(tell_page=False)
        self.notify("Camera unavailable", CAMERA_REASONS.get(name, f"the camera could not start ({name})"), "error")
        self.status("camera: unavailable", None)

    # ------------------------------------------------------------------ the worker
    def _work(self, run_id: int) -> None:
        tracker = None
        try:
            tracker = self.factory()
            while True:
                with self.lock:
                    while self.active and self._run_id == run_id and self.slot is None:
                        self.wake.wait(0.5)
                    if not self.active or self._run_id != run_id:
                        return
                    frame, self.slot = self.slot, None
                t0 = time.perf_counter()
                try:
                    rgb = decode_frame(frame.jpeg, self.limits)
                except VideoRefused as err:
                    with self.lock:
                        self.refused += 1
                        tell, self._told_refused = not self._told_refused, True
                    if tell:
                        self.notify("Webcam frame refused", f"the page sent {err}", "warning")
                    continue
                out = tracker(rgb, frame.page_ms / 1000.0)
                now = self.clock()
                with self.lock:
                    if not self.active or self._run_id != run_id:
                        return
                    self.tracked += 1
                    self.track_ms.append(1000 * (time.perf_counter() - t0))
                    self._done.append(now)
                    if out is not None:
                        self.faces += 1
                        self.result = (
                            frame.seq,
                            np.asarray(out[0], np.float32),
                            np.asarray(out[1], np.float32),
                            frame.page_ms,
                        )
                        self.result_at = now
        except Exception as err:  # noqa: BLE001 - the tab keeps working; say what broke
            with self.lock:
                mine = self._run_id == run_id
            if mine:
                self.stop()
                self.notify("Mirror me stopped", f"the live tracker failed: {type(err).__name__}: {err}", "error")
        finally:
            if tracker is not None:
                tracker.close()

    # ------------------------------------------------------------------ the session's playback thread
    def frame(self, now: float) -> tuple[int, np.ndarray, np.ndarray, float] | None:
        """(seq, motion row [D], extras [12], page ms) of the newest tracked face while mirroring, else None."""
        with self.lock:
            if not self.active or self.result is None or now - self.result_at > STALE_SECONDS:
                return None
            return self.result

    @property
    def fps(self) -> float:
        """Frames tracked a second, over the last ones."""
        with self.lock:
            done = list(self._done)
        return (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 and done[-1] > done[0] else 0.0

    def shown(self, seq: int, page_ms: float) -> None:
        """The session sent frame ``seq``'s pose: tell the page (it measures fps and lag from it)."""
        ms = float(np.median(self.track_ms)) if self.track_ms else 0.0
        self.status(f"camera: live · tracking {self.fps:.0f} fps · {ms:.0f} ms a frame", (seq, page_ms))
