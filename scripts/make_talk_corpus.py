"""Build the talk training corpus offline: TTS + package-shipped recordings → speech with
ground-truth motion for the default head. Rerunning resumes.

    python scripts/make_talk_corpus.py --out corpus/ --hours 1 --seed 0
"""

from __future__ import annotations

import json

import tyro

from splattalk.errors import SplattalkError
from splattalk.talk.corpus.build import CorpusConfig, build_corpus


def main() -> None:
    config = tyro.cli(CorpusConfig)
    try:
        summary = build_corpus(config)
    except SplattalkError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
