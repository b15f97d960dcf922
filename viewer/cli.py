"""The ``splattalk`` command line: one entry point, tyro subcommands.

Only light modules are imported here (config dataclasses, stdlib), so
``splattalk --help`` answers at once; each command imports its heavy stage
(torch, mediapipe, viser …) when it runs.
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable

import tyro

from splattalk.adapt import AdaptCommand
from splattalk.avatar.fit_config import FitCommand
from splattalk.errors import SplattalkError
from splattalk.talk.cli_config import TalkCommand
from splattalk.tracking.config import TrackCommand
from splattalk.viewer.commands import DemoCommand, ExportCommand, ViewCommand
from splattalk.viewer.doctor import DoctorCommand


def _lazy(target: str) -> Callable[[object], int | None]:
    """Resolve ``"module:function"`` only when the command runs."""
    module, _, name = target.partition(":")

    def call(cmd: object) -> int | None:
        return getattr(importlib.import_module(module), name)(cmd)

    return call


# command name → (its config dataclass, the function that runs it)
COMMANDS: dict[str, tuple[type, Callable[[object], int | None]]] = {
    "demo": (DemoCommand, _lazy("splattalk.viewer.demo:run")),
    "track": (TrackCommand, _lazy("splattalk.tracking.run:run")),
    "fit": (FitCommand, _lazy("splattalk.avatar.fit:run")),
    "doctor": (DoctorCommand, _lazy("splattalk.viewer.doctor:run")),
    "talk": (TalkCommand, _lazy("splattalk.talk.cli:run")),
    "adapt": (AdaptCommand, _lazy("splattalk.adapt:run")),
    "export": (ExportCommand, _lazy("splattalk.viewer.export:run")),
    "view": (ViewCommand, _lazy("splattalk.viewer.server:run")),
}


def main(argv: list[str] | None = None) -> None:
    configs = {name: cfg for name, (cfg, _) in COMMANDS.items()}
    cmd = tyro.extras.subcommand_cli_from_dict(
        configs, prog="splattalk", description="splattalk: a personal, talking 3D Gaussian head from a phone video.", args=argv
    )
    runner = next(run for cfg, run in COMMANDS.values() if isinstance(cmd, cfg))
    try:
        code = runner(cmd)
    except SplattalkError as err:
        print(f"splattalk: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("splattalk: interrupted; finished stages are kept and rerunning resumes.", file=sys.stderr)
        raise SystemExit(130) from None
    raise SystemExit(code or 0)


if __name__ == "__main__":
    main()
