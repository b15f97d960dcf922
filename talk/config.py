"""Sizes and constants of the talk model (ARTalk architecture), as frozen dataclasses.

Light module: no torch here, so the CLI's ``--help`` stays instant.

``official`` reproduces the published ``ARTalk_wav2vec.pt`` exactly (its
``config.json``: AR depth 12 / 12 heads / width 768; VQ-VAE depth 8 / 8 heads /
width 512; 32-bit codes over scales [1, 5, 25, 50, 100]; wav2vec2 XLS-R 300M
audio encoder; style encoder width 128 over 50-frame clips). ``small`` is our
default model's size (≤ 10 M parameters, log-mel front-end); ``tiny`` is for tests.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

SAMPLE_RATE = 16_000
"""Audio sample rate every model sees (Hz)."""
FPS = 25
"""Motion frame rate (frames per second)."""
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS
"""640 audio samples per motion frame."""
POSE_DIMS = 6
"""Motion layout ``[expression (E), global rotation (3), jaw (3)]``: 6 pose numbers after E."""

SIL = "sil"
"""The silence label of phone segmentations and frame phone labels."""
ARPABET = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH",
    "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH",
    "UH", "UW", "V", "W", "Y", "Z", "ZH",
)  # fmt: skip  # a table: 16 phones a row
"""The 39 CMU phones; with :data:`SIL` the whole label set of a segmentation."""
PHONE_SET = (SIL, *ARPABET)
"""Frame phone labels (the front-end's phone head predicts them): index 0 is silence, then the 39 CMU phones."""


@dataclass(frozen=True)
class TalkConfig:
    """Architecture of one talk model. Every size the weights depend on lives here."""

    name: str = "small"
    """Preset name (for messages and saved configs)."""
    head_model: str = "default-head-v1"
    """Id of the head model whose parameter space the motion lives in ("flame2020" for ARTalk)."""
    motion_dim: int = 32
    """D: expression coefficients E, then 3 global rotation, then 3 jaw (axis-angle)."""

    # multi-scale VQ-VAE
    scales: tuple[int, ...] = (1, 5, 25, 50, 100)
    """Token counts per scale; the last one is the window length in frames."""
    code_dim: int = 32
    """Bits per token (binary spherical quantization)."""
    vae_dim: int = 128
    """Width of the VQ-VAE transformers."""
    vae_depth: int = 4
    """Attention+MLP blocks in each of the VQ-VAE encoder and decoder."""
    vae_heads: int = 4
    """Attention heads in the VQ-VAE."""

    # autoregressive generator
    ar_dim: int = 128
    """Width of the autoregressive transformer."""
    ar_depth: int = 6
    """Number of AdaLN blocks."""
    ar_heads: int = 4
    """Attention heads in the AR transformer."""
    prev_windows: int = 1
    """How many previous windows' tokens form the prefix (ARTalk: 1)."""

    # style encoder
    style_dim: int = 64
    """Width of the style encoder."""
    style_layers: int = 2
    """Transformer layers in the style encoder."""
    style_heads: int = 4
    """Attention heads in the style encoder."""
    style_frames: int = 50
    """Length of a style clip in frames (2 s)."""

    # audio
    audio_encoder: str = "logmel"
    """"wav2vec2" (XLS-R 300M layout, official) or "logmel" (light front-end for our models)."""
    audio_dim: int = 128
    """Width of the audio features that condition the AR transformer (wav2vec2: 1024)."""
    audio_context_frames: int = 25
    """Audio before each window (in motion frames) the encoder also sees; 0 for the official model."""
    n_mels: int = 80
    """Mel bands of the log-mel front-end."""
    logmel_layers: int = 4
    """Transformer layers of the log-mel front-end."""
    logmel_dropout: float = 0.0
    """Dropout in the log-mel front-end's transformer layers while it trains (stage 1b regularisation)."""
    audio_posteriors: bool = False
    """Log-mel front-end only: the generator hears the front-end's frame phone posteriors and a relative
    frame energy (through a learned projection, ``audio_in``) instead of its hidden features — a
    phonetic bottleneck that carries little of the voice, so a generator trained on few voices
    generalises better to new ones (stage 2's ``--audio-posteriors``)."""
    wav2vec2_layers: int = 24
    """Transformer layers of wav2vec2 (XLS-R 300M: 24; fewer only for tests)."""
    wav2vec2_dim: int = 1024
    """Hidden size of wav2vec2 (XLS-R 300M: 1024; smaller only for tests)."""
    wav2vec2_conv_dim: int = 512
    """Channels of wav2vec2's convolutional feature extractor (XLS-R 300M: 512; smaller only for tests)."""

    # inference defaults
    cfg_scale: float = 1.1
    """Style guidance: cond = s·style + (1−s)·null (ARTalk uses 1.1)."""
    expected_codes: bool = False
    """Decode each token's expected code under its bit probabilities instead of the chosen bits
    (the AR still continues from the chosen bits). Closer to the mean motion given the audio, which
    greedy decoding's most-likely bits under-shoot; off reproduces ARTalk's decoding."""
    expected_channels: tuple[int, ...] = ()
    """With ``expected_codes``: the motion columns taken from the expected-code decoding (the mouth);
    the rest come from the chosen bits, so blinks and head motion keep their full swing. Empty: all."""
    audio_cfg_scale: float = 1.0
    """Audio guidance on the bit logits: ``l = l_null + s·(l_audio − l_null)``, the null being all-zero
    audio features (for models trained with audio dropout, ``train_ar --audio-dropout``); 1 = off, as ARTalk."""
    mouth_samples: int = 1
    """Mouth ensemble: each window is decoded ``mouth_samples`` times in one batch — the chosen bits as
    usual plus ``mouth_samples − 1`` draws at ``mouth_sample_temperature`` — and the mouth columns
    (``expected_channels``; all when empty) are their mean, a closer estimate of the mean motion given
    the audio. Head pose and lids come from the first, as without it. 1 = off, as ARTalk."""
    mouth_sample_temperature: float = 1.0
    """Temperature of the extra decodings of the mouth ensemble."""
    readout_channels: tuple[int, ...] = ()
    """Mouth read-out (``talk/readout.py``; needs ``audio_posteriors``): the motion columns (mouth and jaw) a
    linear map reads from the phone posteriors and energy of nearby frames. Empty: no read-out."""
    readout_context: int = 0
    """Frames on each side of a frame, within its window, the read-out reads."""
    readout_hidden: int = 256
    """Width of the read-out's hidden layer."""
    readout_weight: float = 0.0
    """Share of the read-out in those columns; the generator's decoding gives the rest (0 = generator only)."""
    pause_closure: bool = True
    """Close the lips in the audio's pauses (``talk/pauses.py``): the ``closure_channels`` are gated to rest in
    frames away from voice activity. Our models learned closure from synthetic pauses and seldom close on real
    recordings; off reproduces ARTalk's decoding."""
    closure_channels: tuple[int, ...] = (0, 11, 12, 29)
    """The motion columns that part the lips, gated by ``pause_closure``: for the default head mouth_open,
    upper_lip_raise, lower_lip_depress and the jaw's opening (its expression order; ``talk`` does not import
    ``head``, a test checks the names). The mouth's shape (smile, pucker…) is left as the model made it."""
    closure_rest: tuple[float, ...] = (0.0, 0.0, 0.0, 0.012)
    """Where each of ``closure_channels`` rests in a pause: the lips together, the jaw a hair open (the corpus'
    silence target, ``talk/corpus/visemes.py``: 0.012 rad; the default head's lips meet there)."""
    jaw_open_only: bool = True
    """Zero the jaw's 2nd/3rd axis-angle components after generation, as ARTalk does."""
    smooth_window: int = 5
    """Savitzky–Golay window for expression and jaw (frames, odd)."""
    smooth_order: int = 2
    """Savitzky–Golay polynomial order for expression and jaw."""
    pose_smooth_window: int = 9
    """Savitzky–Golay window for the global rotation (frames, odd)."""
    pose_smooth_order: int = 3
    """Savitzky–Golay polynomial order for the global rotation."""

    @property
    def expr_dim(self) -> int:
        """E, the number of expression coefficients."""
        return self.motion_dim - POSE_DIMS

    @property
    def window(self) -> int:
        """Frames per autoregressive window (the finest scale)."""
        return self.scales[-1]

    @property
    def tokens(self) -> int:
        """Tokens per window, all scales together (181 for ARTalk)."""
        return sum(self.scales)

    @property
    def window_samples(self) -> int:
        return self.window * SAMPLES_PER_FRAME

    @property
    def context_samples(self) -> int:
        return self.audio_context_frames * SAMPLES_PER_FRAME

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> TalkConfig:
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(TalkConfig)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown talk config fields {unknown}")
        for key in ("scales", "expected_channels", "readout_channels", "closure_channels", "closure_rest"):
            if key in data:
                data[key] = tuple(data[key])
        return TalkConfig(**data)


OFFICIAL = TalkConfig(
    name="official",
    head_model="flame2020",
    motion_dim=106,
    vae_dim=512,
    vae_depth=8,
    vae_heads=8,
    ar_dim=768,
    ar_depth=12,
    ar_heads=12,
    style_dim=128,
    style_layers=4,
    style_heads=4,
    audio_encoder="wav2vec2",
    audio_dim=1024,
    audio_context_frames=0,
    pause_closure=False,
    closure_channels=(103,),  # FLAME: the jaw's opening (its expression coefficients have no names)
    closure_rest=(0.0,),
)
SMALL = TalkConfig()
TINY = TalkConfig(
    name="tiny",
    vae_dim=32,
    vae_depth=2,
    vae_heads=2,
    ar_dim=32,
    ar_depth=2,
    ar_heads=2,
    style_dim=16,
    style_layers=1,
    style_heads=2,
    audio_dim=32,
    n_mels=32,
    logmel_layers=1,
)

PRESETS = {"official": OFFICIAL, "small": SMALL, "tiny": TINY}
