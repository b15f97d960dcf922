"""Bad input made from the real clips: does `splattalk track` then `splattalk fit` lose nothing and say why?

    python scripts/check_bad_input.py [--real DIR] [--out DIR] [--cases a b ...] [--iterations N] [--no-fit]

Each case is made at run time from ``../shared/real`` (see its SOURCES.md; nothing is
copied into the repository) with the ffmpeg that imageio-ffmpeg bundles:

* ``gap``: 10 s of ``obama_address_uncropped`` (450², 25 fps); the picture pans away from
  the face from 3.5 s and back by 7.5 s (the face is out of the frame ~3 s);
* ``gap_ends``: the same 10 s with the face hidden (grey) for the first and the last 2 s;
* ``two``: two people side by side, one larger (the address at 600², Reagan at 300²), 8 s;
* ``two_away``: the same, but the larger face leaves the frame from 3 s to 6 s;
* ``portrait4k``: the address scaled to 2160² and padded to a 2160×3840 portrait frame, 10 s,
  H.264 (what a phone records in 4K portrait);
* ``noface``: 5 s with the picture greyed out (sound kept);
* ``truncated``: the first 300 kB of the address (an .mp4 whose index comes last: unreadable);
* ``truncated_faststart``: the address with its index first, cut at 40 % (a partial copy);
* ``corrupt``: the address with 2000 random bytes overwritten (seeded);
* ``audio_only``: the address's sound track alone (.m4a).

Each stage runs as its own process (``python -m splattalk``) and its peak resident memory is
that process's maximum RSS from ``wait4`` (what ``/usr/bin/time -v`` prints). The fit uses
``--iterations`` (default 100: a check that it runs on the frames it should, not a quality
measurement). Prints a table (case, stage, outcome, frames kept, peak RSS, seconds) and writes
it to OUT/check_bad_input.json; the machine's load average is printed (times are wall clock).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import imageio_ffmpeg

ROOT = Path(__file__).resolve().parents[1]
REAL = next(
    (p for p in (ROOT.parent / "shared" / "real", ROOT.parents[1] / "shared" / "real") if p.is_dir()),
    ROOT.parent / "shared" / "real",
)
ADDRESS = "obama_address_uncropped.mp4"
CASES = (
    "gap",
    "gap_ends",
    "two",
    "two_away",
    "portrait4k",
    "noface",
    "truncated",
    "truncated_faststart",
    "corrupt",
    "audio_only",
)


def ffmpeg(*args: str) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", *args], check=True)


def make_case(name: str, real: Path, folder: Path) -> Path:
    """Write case ``name`` into ``folder``; returns its path."""
    src = str(real / ADDRESS)
    h264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]
    out = folder / f"{name}.mp4"
    if name == "gap":
        pan = "450-450*clip((t-3.5)/0.5,0,1)+450*clip((t-7)/0.5,0,1)"
        ffmpeg(
            "-i", src, "-t", "10", "-vf", f"pad=1350:450:450:0:color=gray,crop=450:450:x='{pan}':y=0", *h264, str(out)
        )
    elif name == "gap_ends":
        grey = "drawbox=x=0:y=0:w=iw:h=ih:color=gray:t=fill:enable='lt(t,2)+gte(t,8)'"
        ffmpeg("-i", src, "-t", "10", "-vf", grey, *h264, str(out))
    elif name in ("two", "two_away"):
        reagan = str(real / "reagan_address.mp4")
        x = "0" if name == "two" else "-700*clip((t-2.5)/0.5,0,1)+700*clip((t-6)/0.5,0,1)"
        graph = (
            "[0:v]scale=600:600[a];[1:v]scale=300:300[b];color=c=gray:s=1000x600:r=25[bg];"
            f"[bg][a]overlay=x='{x}':y=0:shortest=1[c];[c][b]overlay=680:150"
        )
        ffmpeg("-i", src, "-i", reagan, "-t", "8", "-filter_complex", graph, *h264, "-an", str(out))
    elif name == "portrait4k":
        ffmpeg("-i", src, "-t", "10", "-vf", "scale=2160:2160,pad=2160:3840:0:840", *h264, "-c:a", "aac", str(out))
    elif name == "noface":
        ffmpeg("-i", src, "-t", "5", "-vf", "drawbox=x=0:y=0:w=iw:h=ih:color=gray:t=fill", *h264, str(out))
    elif name == "truncated":
        out.write_bytes((real / ADDRESS).read_bytes()[:300_000])
    elif name == "truncated_faststart":
        whole = folder / "faststart_whole.mp4"
        ffmpeg("-i", src, "-c", "copy", "-movflags", "+faststart", str(whole))
        data = whole.read_bytes()
        out.write_bytes(data[: int(len(data) * 0.4)])
        whole.unlink()
    elif name == "corrupt":
        data = bytearray((real / ADDRESS).read_bytes())
        rng = random.Random(0)
        for _ in range(2000):
            data[rng.randrange(5000, len(data))] = rng.randrange(256)
        out.write_bytes(bytes(data))
    elif name == "audio_only":
        out = folder / f"{name}.m4a"
        ffmpeg("-i", src, "-vn", "-t", "5", "-c:a", "aac", str(out))
    else:
        raise SystemExit(f"unknown case {name!r}; cases: {', '.join(CASES)}")
    return out


def run_stage(args: list[str], log: Path) -> tuple[int, float, float]:
    """Run ``python -m splattalk ARGS``; (exit code, peak RSS MiB, seconds), output to ``log``."""
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "splattalk", *args], stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024, time.perf_counter() - start


def outcome(code: int, log: Path) -> str:
    """'ok' plus what the run said about the input, or the error message."""
    text = log.read_text(errors="replace").replace("\r", "\n")  # progress bars end their lines with \r
    lines = [line.strip() for line in text.splitlines()]
    if code != 0:
        errors = [line for line in lines if line.startswith("splattalk: error:")]
        return "error: " + (errors[-1].removeprefix("splattalk: error:").strip() if errors else f"exit {code}")
    said = [
        line
        for line in lines
        if line.startswith("warning:")
        or line.startswith("fit:")
        or any(w in line for w in ("no face in", "faces seen", "decoded at", "not taken", "left out"))
    ]
    return "ok" + ("; " + " / ".join(said) if said else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REAL, help="folder of the real clips")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bad_input", help="cases, runs and logs go here")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--iterations", type=int, default=100, help="fit iterations (a check, not quality)")
    parser.add_argument("--no-fit", action="store_true", help="track only")
    args = parser.parse_args()
    if not (args.real / ADDRESS).is_file():
        print(f"skipped: no real clips at {args.real} (see shared/real/SOURCES.md)")
        return
    cases_dir = args.out / "cases"
    cases_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.cases:
        video = make_case(name, args.real, cases_dir)
        run = args.out / "runs" / name
        shutil.rmtree(run, ignore_errors=True)
        log = args.out / f"{name}.track.log"
        code, rss, seconds = run_stage(["track", str(video), "--run", str(run), "--head", "default"], log)
        row = {"case": name, "stage": "track", "outcome": outcome(code, log), "rss_mib": rss, "seconds": seconds}
        summary_path = run / "tracking" / "config.json"
        if code == 0:
            summary = json.loads(summary_path.read_text())
            row["kept"] = f"{summary['faces_found']}/{summary['frames']}"
        else:
            row["kept"] = "-"
            written = (
                sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()) if run.exists() else []
            )
            row["outcome"] += f" [files left in the run folder: {len(written)}]"
        rows.append(row)
        if code == 0 and not args.no_fit:
            log = args.out / f"{name}.fit.log"
            fit_args = ["fit", str(run), "--iterations", str(args.iterations), "--quiet"]
            code, rss, seconds = run_stage(fit_args, log)
            row = {"case": name, "stage": "fit", "outcome": outcome(code, log), "rss_mib": rss, "seconds": seconds}
            if code == 0:
                frames = json.loads((run / "avatar" / "config.json").read_text())["frames"]
                total = frames["train"] + frames["heldout"] + len(frames.get("skipped_no_face", []))
                row["kept"] = f"{frames['train']}+{frames['heldout']}/{total}"
            else:
                row["kept"] = "-"
            rows.append(row)
    (args.out / "check_bad_input.json").write_text(json.dumps(rows, indent=1))
    print(f"load average: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print("| case | stage | outcome | frames kept | peak RSS MiB | s |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['case']} | {row['stage']} | {row['outcome']} | {row['kept']} | {row['rss_mib']:.0f} | "
            f"{row['seconds']:.0f} |"
        )


if __name__ == "__main__":
    main()
