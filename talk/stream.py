"""Streaming speech → motion: push audio chunks, get motion frames as soon as they are final.

Latency, honestly: the model generates a window of W frames (4 s for ARTalk
and our presets) from that window's audio, so the first frames exist once the
first window's audio has arrived — or, for a shorter utterance, at
:meth:`TalkStream.finish`. A file or an upload delivers that audio at once;
live speech needs W/25 seconds of it. What we bound is the *compute* latency:
the time from the push that completes a window to its frames coming out
(``scripts/bench_talk.py`` measures it). Smoothing holds back the last 4
frames of each window until the next window (or ``finish``).

The stream runs exactly ``inference.step_window`` on exactly the windows
``inference.generate`` cuts, so both give the same motion. Memory is bounded
on any length: the audio buffer never exceeds context + one window plus the
last chunk, the smoother keeps a few frames, and the KV cache lives for one
window only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from splattalk.talk import inference
from splattalk.talk.generator import TalkModel
from splattalk.talk.smoothing import StreamSmoother


class TalkStream:
    """Incremental :func:`inference.generate`.

    >>> stream = TalkStream(model)
    >>> for chunk in chunks:              # float32 16 kHz mono, any sizes
    ...     frames = stream.push(chunk)   # [n, D], possibly n == 0
    >>> frames = stream.finish()          # the rest; the stream is then closed

    or ``for block in TalkStream(model).frames(chunks): ...``.
    """

    def __init__(
        self,
        model: TalkModel,
        style: np.ndarray | None = None,
        seed: int = 0,
        cfg_scale: float | None = None,
        temperature: float = 0.0,
        smooth: bool = True,
        use_cache: bool = True,
        expected_codes: bool | None = None,
        audio_cfg_scale: float | None = None,
        *,
        mouth_samples: int | None = None,
        pause_closure: bool | None = None,
    ):
        self.model = model
        self.cfg = model.cfg
        self.smooth = smooth
        self.session = inference.start_session(
            model,
            style,
            seed,
            cfg_scale,
            temperature,
            use_cache,
            expected_codes,
            audio_cfg_scale,
            mouth_samples=mouth_samples,
            pause_closure=pause_closure,
        )
        self.smoother = StreamSmoother(self.cfg) if smooth else None
        # Pending audio, starting with the left context of the next window (zeros before the start).
        self.buffer = np.zeros(self.cfg.context_samples, np.float32)
        self.samples_in = 0
        self.raw_frames = 0
        self.frames_out = 0
        self.closed = False

    @property
    def buffered_samples(self) -> int:
        return self.buffer.shape[0]

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Add audio ``[n]`` float32 16 kHz mono; return the motion frames ``[k, D]`` now final."""
        if self.closed:
            raise RuntimeError("push() after finish(): start a new TalkStream")
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        self.samples_in += chunk.shape[0]
        self.buffer = np.concatenate([self.buffer, chunk])
        need = self.cfg.context_samples + self.cfg.window_samples
        out = []
        while self.buffer.shape[0] >= need:
            out.append(self._run_window(self.buffer[:need]))
            self.buffer = self.buffer[self.cfg.window_samples :].copy()
        return self._emit(np.concatenate(out) if out else None)

    def finish(self) -> np.ndarray:
        """Flush: generate the last (zero-padded) window and return every remaining frame."""
        if self.closed:
            return np.zeros((0, self.cfg.motion_dim), np.float32)
        self.closed = True
        total = inference.frames_for(self.samples_in)
        raw = None
        if self.buffer.shape[0] > self.cfg.context_samples:
            window = np.zeros(self.cfg.context_samples + self.cfg.window_samples, np.float32)
            window[: self.buffer.shape[0]] = self.buffer
            before = self.raw_frames
            raw = self._run_window(window)[: total - before]
        self.buffer = self.buffer[:0]
        frames = self._emit(raw)
        if self.smoother is not None:
            rest = inference.zero_jaw_twist(self.smoother.finish(), self.cfg)
            self.frames_out += rest.shape[0]
            frames = np.concatenate([frames, rest])
        return frames

    def frames(self, chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Feed ``chunks`` and yield each non-empty block of final frames ``[k, D]``, then the rest."""
        for chunk in chunks:
            out = self.push(chunk)
            if out.shape[0]:
                yield out
        rest = self.finish()
        if rest.shape[0]:
            yield rest

    def _run_window(self, audio: np.ndarray) -> np.ndarray:
        motion = inference.step_window(self.model, self.session, torch.from_numpy(np.ascontiguousarray(audio)))
        self.raw_frames += motion.shape[0]
        return motion.cpu().numpy()

    def _emit(self, raw: np.ndarray | None) -> np.ndarray:
        if raw is None:
            raw = np.zeros((0, self.cfg.motion_dim), np.float32)
        if self.smoother is None:
            frames = inference.zero_jaw_twist(raw.copy(), self.cfg)
        else:
            frames = inference.zero_jaw_twist(self.smoother.push(raw), self.cfg)
        self.frames_out += frames.shape[0]
        return frames
