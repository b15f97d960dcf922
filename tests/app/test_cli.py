"""The command line: instant --help, clean errors."""

import subprocess
import sys
import time


def _run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "splattalk", *args], capture_output=True, text=True, timeout=120, **kw)


def test_help_is_instant():
    _run("--help")  # warm the file cache
    start = time.perf_counter()
    out = _run("--help")
    elapsed = time.perf_counter() - start
    assert out.returncode == 0, out.stderr
    assert "doctor" in out.stdout
    assert elapsed < 1.0, f"--help took {elapsed:.2f} s"


def test_help_imports_nothing_heavy():
    code = (
        "import sys, splattalk.cli as c\n"
        "heavy = [m for m in ('torch', 'mediapipe', 'viser', 'numba', 'transformers', 'cv2') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_doctor_runs(isolated_assets):
    import os

    out = _run("doctor", env={**os.environ, "SPLATTALK_ASSETS": str(isolated_assets)})
    assert out.returncode == 0, out.stderr
    assert "not found" in out.stdout and str(isolated_assets) in out.stdout
    assert "default head" in out.stdout


def test_unknown_command_fails_cleanly():
    out = _run("frobnicate")
    assert out.returncode != 0
    assert "Traceback" not in out.stderr


def test_readme_commands_exist():
    """Every `splattalk X` the README mentions is a real subcommand (the README stays true to the CLI)."""
    import re
    from pathlib import Path

    from splattalk.cli import COMMANDS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    named = set(re.findall(r"`splattalk (\w+)", readme)) | set(re.findall(r"&& splattalk (\w+)", readme))
    assert {"demo", "track", "fit", "talk", "export", "view", "doctor"} <= named
    assert named <= set(COMMANDS), named - set(COMMANDS)
    for name in sorted(named):
        out = _run(name, "--help")
        assert out.returncode == 0 and "usage" in out.stdout.lower(), (name, out.stderr)


def test_demo_refuses_bad_speech_before_any_work(tmp_path):
    bad = tmp_path / "speech.wav"
    bad.write_text("not audio")
    out = _run("demo", "--no-view", "--out", str(tmp_path / "run"), "--speech", str(bad))
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "could not decode audio" in out.stderr
    assert not (tmp_path / "run").exists()
