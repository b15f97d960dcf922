"""The ``splattalk`` command line: one entry point, tyro subcommands.

Only light modules are imported here (config dataclasses, stdlib), so
``splattalk --help`` answers at once; each command's module is imported when the
command runs, and imports its heavy stage (torch, mediapipe, viser …) then.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

import tyro

from splattalk.commands import (
    AdaptCommand,
    DemoCommand,
    DoctorCommand,
    ExportCommand,
    FitCommand,
    TalkCommand,
    TrackCommand,
)
from splattalk.errors import SplattalkError
from splattalk.tracking.export_dataset import ExportDatasetCommand
from splattalk.viewer.config import ViewConfig


def _lazy(target: str) -> Callable[[object], int | None]:
    """Resolve ``"module:function"`` only when the command runs (the modules import torch, mediapipe, viser)."""
    module, _, name = target.partition(":")

    def call(cmd: object) -> int | None:
        return getattr(importlib.import_module(module), name)(cmd)

    return call


# command name → (its config dataclass, the function that runs it)
COMMANDS: dict[str, tuple[type, Callable[[object], int | None]]] = {
    "demo": (DemoCommand, _lazy("splattalk.demo:run")),
    "track": (TrackCommand, _lazy("splattalk.stages:track")),
    "fit": (FitCommand, _lazy("splattalk.stages:fit")),
    "doctor": (DoctorCommand, _lazy("splattalk.doctor:run")),
    "talk": (TalkCommand, _lazy("splattalk.talk_command:run")),
    "adapt": (AdaptCommand, _lazy("splattalk.adapt:run")),
    "export": (ExportCommand, _lazy("splattalk.export:run")),
    "export-dataset": (ExportDatasetCommand, _lazy("splattalk.tracking.export_dataset:run")),
    "view": (ViewConfig, _lazy("splattalk.view_command:run")),
}


def main(argv: list[str] | None = None) -> None:
    configs = {name: cfg for name, (cfg, _) in COMMANDS.items()}
    cmd = tyro.extras.subcommand_cli_from_dict(
        configs,
        prog="splattalk",
        description="splattalk: a personal, talking 3D Gaussian head from a phone video.",
        args=argv,
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
