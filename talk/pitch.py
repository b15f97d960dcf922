"""Speech features at 100 frames a second: loudness envelope, F0 (YIN), voicing.

YIN (de Cheveigné & Kawahara, 2002) in numpy: the cumulative-mean-normalised
difference function per frame, computed for all frames at once with FFT
autocorrelation on audio decimated to 8 kHz (speech F0 lies far below 4 kHz).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_closing, binary_dilation, median_filter

from splattalk.talk.audio import resample
from splattalk.talk.config import SAMPLE_RATE

RATE = 100
"""Feature frames per second."""
F0_MIN, F0_MAX = 60.0, 400.0


@dataclass
class SpeechFeatures:
    """Per-frame features of one clip; frame i covers time i / RATE."""

    energy_db: np.ndarray
    """[N] RMS level in dB full scale (about -100 in digital silence)."""
    f0: np.ndarray
    """[N] fundamental frequency in Hz, 0 where unvoiced."""
    voiced: np.ndarray
    """[N] bool."""
    speech_level_db: float
    """Typical level of the speech in this clip (median over loud frames)."""

    @property
    def times(self) -> np.ndarray:
        return np.arange(len(self.f0)) / RATE


def _frames(x: np.ndarray, size: int, hop: int, n: int) -> np.ndarray:
    pad = np.pad(x, (size // 2, size + hop * n))
    idx = np.arange(n)[:, None] * hop + np.arange(size)[None, :]
    return pad[idx]


def energy_db(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, window: float = 0.03) -> np.ndarray:
    """[N] RMS level (dB) of ``audio: [S]`` in ``window``-second frames every 1/RATE s."""
    hop = sample_rate // RATE
    n = int(np.ceil(len(audio) / hop))
    frames = _frames(audio.astype(np.float64), int(window * sample_rate), hop, n)
    return 10.0 * np.log10((frames**2).mean(1) + 1e-10)


def yin(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, threshold: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """F0 [N] (Hz, 0 = no periodicity found) and aperiodicity [N] (YIN's d', lower = more periodic)."""
    sr = 8000
    x = resample(audio, sample_rate, sr).astype(np.float64)
    hop = sr // RATE
    n = int(np.ceil(len(audio) / (sample_rate // RATE)))
    win = int(0.025 * sr)  # integration window
    tau_max = int(sr / F0_MIN) + 1
    tau_min = int(sr / F0_MAX)
    frames = _frames(x, win + tau_max, hop, n)  # [N, W + tau_max], centred on the frame time
    nfft = 1 << int(np.ceil(np.log2(2 * (win + tau_max))))
    spec = np.fft.rfft(frames, nfft)
    head = np.fft.rfft(frames[:, :win], nfft)
    # r(tau) = sum_j x_j x_{j+tau} over the first `win` samples
    r = np.fft.irfft(np.conj(head) * spec, nfft)[:, : tau_max + 1]
    sq = np.cumsum(frames**2, axis=1)
    sq = np.concatenate([np.zeros((n, 1)), sq], axis=1)
    e0 = sq[:, win] - sq[:, 0]
    taus = np.arange(tau_max + 1)
    e_tau = sq[:, taus + win] - sq[:, taus]
    d = np.maximum(e0[:, None] + e_tau - 2.0 * r, 0.0)
    d[:, 0] = 0.0
    cum = np.cumsum(d[:, 1:], axis=1) / np.arange(1, tau_max + 1)
    dn = np.ones_like(d)
    dn[:, 1:] = d[:, 1:] / np.maximum(cum, 1e-12)
    dn[:, :tau_min] = 1.0

    below = dn < threshold
    first = np.where(below.any(1), below.argmax(1), dn.argmin(1))
    # walk to the local minimum after the first dip below threshold
    best = first.copy()
    for _ in range(tau_max):
        nxt = np.minimum(best + 1, tau_max)
        step = dn[np.arange(n), nxt] < dn[np.arange(n), best]
        if not step.any():
            break
        best = np.where(step, nxt, best)
    rows = np.arange(n)
    left = dn[rows, np.maximum(best - 1, 0)]
    mid = dn[rows, best]
    right = dn[rows, np.minimum(best + 1, tau_max)]
    denom = left - 2 * mid + right
    safe = np.where(np.abs(denom) > 1e-12, denom, 1.0)
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / safe, 0.0).clip(-1, 1)
    period = best + shift
    f0 = np.where(period > 0, sr / np.maximum(period, 1e-6), 0.0)
    return f0, mid


def speech_features(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, level_floor: float = -np.inf) -> SpeechFeatures:
    """Loudness, F0 and voicing of ``audio: [S]``; the speech level is this audio's, or ``level_floor`` dB if that
    is higher (a stream carries the level of its louder past, so a stretch of room noise is not taken for speech)."""
    level = energy_db(audio, sample_rate)
    f0, aperiodicity = yin(audio, sample_rate)
    n = min(len(level), len(f0))
    level, f0, aperiodicity = level[:n], f0[:n], aperiodicity[:n]
    loud = level[level > level.max() - 40.0] if n else level
    typical = max(float(np.median(loud)) if len(loud) else -100.0, level_floor)
    voiced = (aperiodicity < 0.3) & (level > typical - 25.0) & (f0 >= F0_MIN) & (f0 <= F0_MAX)
    voiced = median_filter(voiced.astype(np.uint8), size=5).astype(bool)
    f0 = np.where(voiced, median_filter(f0, size=5), 0.0)
    return SpeechFeatures(level, f0, voiced, typical)


def voice_activity(feat: SpeechFeatures, margin_db: float = 20.0, hangover: float = 0.1) -> np.ndarray:
    """[N] bool speech activity: loud enough relative to the clip's speech level, or voiced."""
    active = (feat.energy_db > feat.speech_level_db - margin_db) | feat.voiced
    active = binary_closing(active, structure=np.ones(int(0.1 * RATE)))
    return binary_dilation(active, structure=np.ones(int(hangover * RATE) | 1))
