"""How well do the TTS engines' own phone timings agree with pocketsphinx's forced alignment?

Synthesises sentences with several espeak-ng and flite voices, aligns the known text
with pocketsphinx, and prints the mean |start difference| of matching phones per engine.

    python scripts/check_phone_timings.py --n 20
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import tyro


@dataclass(frozen=True)
class TimingConfig:
    n: int = 20
    """Utterances per engine."""
    seed: int = 0
    """Seed for the sentences and voices."""


def main() -> None:
    from splattalk.errors import SplattalkError
    from splattalk.talk.corpus.phones import align_pocketsphinx, boundary_error
    from splattalk.talk.corpus.texts import make_sentences
    from splattalk.talk.corpus.tts import ESPEAK_VARIANTS, ESPEAK_VOICES, FLITE_VOICES, Voice, synthesize

    cfg = tyro.cli(TimingConfig)
    rng = np.random.default_rng(cfg.seed)
    report = {}
    for engine in ("espeak-ng", "flite"):
        errors, weights, failed = [], [], 0
        for text in make_sentences(rng, cfg.n, max_sentences=2):
            if engine == "flite":
                voice = Voice("flite", str(rng.choice(FLITE_VOICES)), float(rng.uniform(0.85, 1.15)))
            else:
                name = f"{rng.choice(ESPEAK_VOICES)}+{rng.choice(ESPEAK_VARIANTS)}"
                voice = Voice("espeak-ng", name, float(rng.uniform(0.8, 1.3)), float(rng.uniform(0.7, 1.4)))
            audio, seg = synthesize(text, voice)
            try:
                err, matched = boundary_error(align_pocketsphinx(audio, text), seg)
            except SplattalkError:
                failed += 1
                continue
            errors.append(err)
            weights.append(matched)
        e = np.array(errors)
        report[engine] = {
            "utterances": len(errors),
            "alignment_failed": failed,
            "mean_boundary_error_ms": round(float(np.average(e, weights=weights)) * 1000, 1),
            "median_utterance_error_ms": round(float(np.median(e)) * 1000, 1),
            "matched_phones": int(np.sum(weights)),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
