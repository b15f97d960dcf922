"""Build the embedded default avatar without training (:mod:`splattalk.avatar.painted`).

python scripts/make_default_avatar.py [--num 20000] [--out splattalk/data/default_avatar.safetensors]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from splattalk.assets import data_path
from splattalk.avatar.io import save_avatar
from splattalk.avatar.painted import build_default_avatar

DEFAULT_OUT = data_path("default_avatar.safetensors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=20_000, help="number of Gaussians")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    avatar = build_default_avatar(args.num, args.seed)
    save_avatar(args.out, avatar)
    print(f"wrote {args.out}: {avatar.gaussians.num} Gaussians, {args.out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
