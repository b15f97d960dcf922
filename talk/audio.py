"""Audio files → 16 kHz mono float32, for any common format and rate.

Decoding: soundfile (libsndfile: wav, flac, ogg/vorbis/opus, mp3) first, then
PyAV (ffmpeg: m4a/aac, mp3, webm, video containers …). Channels are averaged
to mono; the rate is converted with a polyphase filter
(``scipy.signal.resample_poly``, Kaiser-windowed FIR). Every bad input —
missing, empty, corrupt, unsupported, silent container, too long or too large
— raises :class:`SplattalkError` naming the file.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import av
import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from splattalk.errors import SplattalkError
from splattalk.talk.config import SAMPLE_RATE

FORMATS = "wav, mp3, m4a/aac, ogg/opus, flac"
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
"""Files above this size are refused before decoding (512 MiB)."""

Source = str | Path | bytes


def load_audio(
    source: Source,
    sample_rate: int = SAMPLE_RATE,
    max_seconds: float | None = None,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    name: str | None = None,
) -> np.ndarray:
    """Decode ``source`` (a path, or the file's bytes) to ``[S]`` float32 mono at ``sample_rate``.

    ``max_seconds`` / ``max_bytes`` cap what is accepted (None: no cap); ``name`` labels
    bytes in messages (e.g. the uploaded file's name).
    """
    label = name or (str(source) if not isinstance(source, bytes) else "uploaded audio")
    size = _size(source, label)
    if size == 0:
        raise SplattalkError(f"audio file {label} is empty (0 bytes)")
    if max_bytes is not None and size > max_bytes:
        raise SplattalkError(f"audio file {label} is {size / 2**20:.0f} MiB; the limit is {max_bytes / 2**20:.0f} MiB")
    errors = []
    for decode in (_decode_soundfile, _decode_av):
        try:
            samples, rate = decode(source, max_seconds, label)
            break
        except SplattalkError:
            raise
        except Exception as err:  # noqa: BLE001 - try the next decoder, report both if all fail
            errors.append(
                f"{decode.__name__.removeprefix('_decode_')}: "
                f"{str(err).splitlines()[0][:160] if str(err) else type(err).__name__}"
            )
    else:
        raise SplattalkError(
            f"could not decode audio file {label}: corrupt, or not a supported format ({FORMATS}). Details: "
            + "; ".join(errors)
        )
    if samples.size == 0:
        raise SplattalkError(f"audio file {label} contains no audio samples")
    if not np.isfinite(samples).all():
        raise SplattalkError(f"audio file {label} contains NaN or infinite samples")
    _check_duration(samples.shape[0] / rate, max_seconds, label)
    return resample(samples, rate, sample_rate)


def resample(audio: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling of ``audio: [S]`` from ``rate`` to ``target`` Hz (float32)."""
    audio = np.asarray(audio, np.float32)
    if rate == target:
        return audio
    g = math.gcd(int(rate), int(target))
    return resample_poly(audio, target // g, int(rate) // g).astype(np.float32)


def _size(source: Source, label: str) -> int:
    if isinstance(source, bytes):
        return len(source)
    path = Path(source)
    if not path.exists():
        raise SplattalkError(f"audio file {label} not found")
    if not path.is_file():
        raise SplattalkError(f"{label} is not a file")
    return path.stat().st_size


def _open(source: Source):
    return io.BytesIO(source) if isinstance(source, bytes) else str(source)


def _check_duration(seconds: float, max_seconds: float | None, label: str) -> None:
    if max_seconds is not None and seconds > max_seconds:
        raise SplattalkError(f"audio file {label} lasts {seconds:.1f} s; the limit is {max_seconds:g} s")


def _decode_soundfile(source: Source, max_seconds: float | None, label: str) -> tuple[np.ndarray, int]:
    with sf.SoundFile(_open(source)) as f:
        if f.frames > 0:
            _check_duration(f.frames / f.samplerate, max_seconds, label)
        data = f.read(dtype="float32", always_2d=True)
        return data.mean(axis=1), int(f.samplerate)


def _decode_av(source: Source, max_seconds: float | None, label: str) -> tuple[np.ndarray, int]:
    with av.open(_open(source), mode="r") as container:
        streams = container.streams.audio
        if not streams:
            raise SplattalkError(f"{label} has no audio stream")
        stream = streams[0]
        rate = int(stream.rate or stream.codec_context.sample_rate)
        resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=rate)
        chunks, total = [], 0
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                block = out.to_ndarray()
                chunks.append(block.mean(axis=0) if block.ndim == 2 else block)
                total += chunks[-1].shape[0]
            _check_duration(total / rate, max_seconds, label)
        for out in resampler.resample(None):
            block = out.to_ndarray()
            chunks.append(block.mean(axis=0) if block.ndim == 2 else block)
    if not chunks:
        return np.zeros(0, np.float32), rate
    return np.concatenate(chunks).astype(np.float32), rate
