"""A speech clip and its motion, generated in a worker thread while it plays.

:class:`Clip` holds the decoded audio and a motion array that a
:class:`MotionWorker` fills window by window through ``talk.TalkStream``; the
player reads whatever frames are final and waits for the rest. Memory does
not grow with processing: the motion array is allocated once (T × D floats,
~128 B a frame) and the stream keeps at most one window of audio.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import numpy as np

from splattalk.talk.config import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from splattalk.talk.stream import TalkStream

CHUNK_SECONDS = 0.5
"""Audio fed to the stream per push (the stream emits a window's frames once it has the whole window)."""

_ids = itertools.count(1)


class Clip:
    """One utterance: audio ``[S]`` float32 16 kHz and its motion ``[T, D]``, T = ⌈S / 640⌉."""

    def __init__(self, audio: np.ndarray, label: str, motion_dim: int):
        self.id = next(_ids)
        self.audio = np.ascontiguousarray(audio, np.float32)
        self.label = label
        self.num_frames = -(-self.audio.shape[0] // SAMPLES_PER_FRAME)
        self.motion = np.zeros((self.num_frames, motion_dim), np.float32)
        self.ready = 0
        """Frames final so far (motion[:ready])."""
        self.done = False
        self.error: str | None = None
        self.generation = 0
        """Bumped by :meth:`reset`; a worker of an older generation can no longer write."""
        self.cond = threading.Condition()
        self.extras: np.ndarray | None = None
        """[T, 12] neck, translation and eyes per frame for a driven (reenacted) clip, whose motion is given whole."""

    @classmethod
    def driven(cls, audio: np.ndarray, label: str, motion: np.ndarray, extras: np.ndarray) -> Clip:
        """A finished clip from a driving video (``splattalk.reenact``): motion ``[T, D]``, extras ``[T, 12]``; the
        audio is trimmed or padded to the motion's length."""
        samples = np.zeros(len(motion) * SAMPLES_PER_FRAME, np.float32)
        if audio is not None:
            samples[: min(len(samples), len(audio))] = audio[: len(samples)]
        clip = cls(samples, label, motion.shape[1])
        clip.motion[:] = motion
        clip.extras = np.ascontiguousarray(extras, np.float32)
        clip.ready, clip.done = clip.num_frames, True
        return clip

    def reset(self) -> None:
        """Forget the motion (to generate it again, e.g. in another style); the audio stays."""
        with self.cond:
            self.ready, self.done, self.error = 0, False, None
            self.generation += 1
            self.cond.notify_all()

    @property
    def duration(self) -> float:
        return self.audio.shape[0] / SAMPLE_RATE

    def append(self, frames: np.ndarray, generation: int = 0) -> None:
        with self.cond:
            if generation != self.generation:
                return
            n = min(frames.shape[0], self.num_frames - self.ready)
            self.motion[self.ready : self.ready + n] = frames[:n]
            self.ready += n
            self.cond.notify_all()

    def finish(self, error: str | None = None, generation: int = 0) -> None:
        with self.cond:
            if generation != self.generation:
                return
            self.error = error
            self.done = True
            self.cond.notify_all()

    def wait(self, frames: int, timeout: float) -> bool:
        """Block until ``frames`` frames are final (or the clip is done); True if they are."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.ready < min(frames, self.num_frames) and not self.done:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return self.ready >= min(frames, self.num_frames)

    def frame(self, index: int) -> np.ndarray | None:
        """Motion row ``index`` if it is final, else None."""
        if 0 <= index < self.ready:
            return self.motion[index]
        return None


def talk_streams(model) -> Callable[[np.ndarray | None], object]:
    """A stream factory for a talk model: ``style → TalkStream(model, style=style)``."""
    return lambda style: TalkStream(model, style=style)


class MotionWorker(threading.Thread):
    """Streams a clip's audio through a motion stream (``push``/``finish``); stop it with :meth:`cancel`.

    ``streams(style)`` makes the stream: :func:`talk_streams` for a talk model,
    or ``loudness.LoudnessStream`` without one.
    """

    def __init__(
        self,
        clip: Clip,
        streams: Callable,
        style: np.ndarray | None = None,
        on_done: Callable[[Clip], None] | None = None,
    ):
        super().__init__(name=f"talk-clip-{clip.id}", daemon=True)
        self.clip = clip
        self.streams = streams
        self.style = style
        self.on_done = on_done
        self.generation = clip.generation
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()

    def run(self) -> None:
        clip, error = self.clip, None
        try:
            stream = self.streams(self.style)
            step = int(CHUNK_SECONDS * SAMPLE_RATE)
            for start in range(0, clip.audio.shape[0], step):
                if self.cancelled.is_set():
                    return
                clip.append(stream.push(clip.audio[start : start + step]), self.generation)
            if not self.cancelled.is_set():
                clip.append(stream.finish(), self.generation)
        except Exception as err:  # noqa: BLE001 - reported to the user, the server keeps serving
            error = f"{type(err).__name__}: {err}"
        finally:
            if not self.cancelled.is_set() or error:
                clip.finish(error, self.generation)
                if self.on_done is not None:
                    self.on_done(clip)
            else:
                clip.finish("cancelled", self.generation)


def frames_of(seconds: float) -> int:
    return int(np.floor(seconds * FPS))
