"""Turn tracked talking-head videos into a talk training corpus (see :mod:`splattalk.talk.corpus.tracks`).

python scripts/tracks_to_corpus.py --runs run_a run_b --media a.mp4 b.mp4 --out my_corpus
python -m splattalk.talk.training.train_vqvae --train.data.corpus my_corpus ...
"""

from __future__ import annotations

import tyro

from splattalk.errors import SplattalkError
from splattalk.talk.corpus.tracks import TracksToCorpus, convert


def main() -> None:
    cfg = tyro.cli(TracksToCorpus)
    try:
        records = convert(cfg)
    except SplattalkError as err:
        raise SystemExit(f"error: {err}") from None
    hours = sum(r.duration for r in records) / 3600
    print(
        f"wrote {cfg.out}: {len(records)} clips, {hours:.2f} h ({sum(r.split == 'heldout' for r in records)} held out)"
    )


if __name__ == "__main__":
    main()
