"""Train the built-in talk model (the recipe is :mod:`splattalk.talk.training.default_model`): corpus (made if
missing) → stages 1 and 1b → stage 2 → mouth read-out → ``talk/assets/default_talk.safetensors`` + style clips.

    OMP_WAIT_POLICY=PASSIVE python scripts/train_default_talk.py  # ~115 min on 2 CPU cores (13 of them the corpus)
    python scripts/train_default_talk.py --no-asterisk --out runs/default_talk_tts  # TTS-only variant
"""

from __future__ import annotations

import tyro

from splattalk.talk.training.default_model import DefaultTalkConfig, main

if __name__ == "__main__":
    main(tyro.cli(DefaultTalkConfig))
