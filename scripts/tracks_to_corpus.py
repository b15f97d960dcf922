"""Turn tracked talking-head videos into a talk training corpus (see :mod:`splattalk.talk.corpus.tracks`).

python scripts/tracks_to_corpus.py --runs run_a run_b --licences CC-BY-4.0 "public domain" --out my_corpus
python -m splattalk.talk.training.train_vqvae --train.data.corpus my_corpus ...

Each run's media defaults to the video it was tracked from; rerunning skips the runs already converted (by hash)
and finishes a killed conversion. The same runs join a TTS corpus with ``scripts/make_talk_corpus.py --videos``.
"""

from __future__ import annotations

import tyro

from splattalk.errors import SplattalkError
from splattalk.talk.corpus.layout import read_manifest
from splattalk.talk.corpus.tracks import TracksToCorpus, add_runs


def main() -> None:
    cfg = tyro.cli(TracksToCorpus)
    try:
        report = add_runs(cfg)
    except SplattalkError as err:
        raise SystemExit(f"error: {err}") from None
    records = [r for r in read_manifest(cfg.out) if r.source == "video"]
    hours = sum(r.duration for r in records) / 3600
    print(
        f"wrote {cfg.out}: {len(report['converted'])} runs converted, {len(report['skipped'])} already there; "
        f"{len(records)} video clips, {hours:.2f} h ({sum(r.split == 'heldout' for r in records)} held out); "
        f"sources and licences in {cfg.out / 'sources.json'}"
    )


if __name__ == "__main__":
    main()
