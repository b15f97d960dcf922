#!/usr/bin/env bash
# GPU checks for the gsplat rasterizer backend, in one go, on a CUDA machine:
#   versions + nvidia-smi → build gsplat's CUDA extension (timed) → pytest -m gpu
#   → scripts/bench_rasterize.py (cpu, reference and gsplat) → scripts/bench_fit.py (auto = gsplat on CUDA).
#
#   bash scripts/gpu_check.sh            # from the repository root
#
# Environment (all optional):
#   OUT             folder for log.txt (default: /tmp/gpu_check_out)
#   WHEELS          folder of wheels to install first with --no-index into /tmp/gpu_check_site
#                   (gsplat, tyro and its needs, for a machine without a package index)
#   FIT_RUN         a tracked run folder (frames/, masks/, tracking/tracks.npz) that bench_fit
#                   fits a copy of; without it bench_fit tracks the sample video itself (needs
#                   the tracker's dependencies: mediapipe, av, …)
#   DEADLINE_S      seconds the whole check may take (default 900); each step gets at most its own
#                   limit and what is left of this
#   SKIP_FIT=1      leave bench_fit out
#   SKIP_BENCH=1    leave bench_rasterize out
#   FORCE_TREE=1    use the import tree below even where splattalk is installed
# If `splattalk.avatar` does not import (the project is not installed, e.g. on an image whose
# Python is outside requires-python), an import tree mapping pyproject's package-dir is built in
# /tmp/gpu_check_pkg and put on PYTHONPATH. gsplat compiles its CUDA code on first use (minutes):
# the build goes to $TORCH_EXTENSIONS_DIR (default /tmp/torch_extensions) for TORCH_CUDA_ARCH_LIST
# (default: the GPU's own compute capability); on an H200 with 16 cores it took 55-75 s.
# Offline example (wheels fetched elsewhere with `pip download --no-deps --only-binary=:all:
# --python-version 3.12 -d .gpu/whl gsplat tyro docstring-parser typeguard typing_extensions`):
#   OUT=/tmp/out WHEELS=.gpu/whl FIT_RUN=.gpu/run DEADLINE_S=440 TORCH_CUDA_ARCH_LIST=9.0 bash scripts/gpu_check.sh
set -u -o pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
LOG=$OUT/log.txt
: >"$LOG"
export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-/tmp/torch_extensions}
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
PY=${PYTHON:-python3}
START=$(date +%s)
END=$((START + ${DEADLINE_S:-900}))
FAILED=()

log() { echo "$*" | tee -a "$LOG"; }

# step NAME LIMIT_S COMMAND...: run under `timeout`, its output tee'd to the log.
step() {
    local name=$1 limit=$2 left rc t0
    shift 2
    left=$((END - $(date +%s)))
    ((left < limit)) && limit=$left
    if ((limit < 5)); then
        log "=== $name: skipped, out of time"
        FAILED+=("$name(no time)")
        return 1
    fi
    log "=== $name (limit ${limit} s): $*"
    t0=$(date +%s%N)
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$LOG"
    rc=${PIPESTATUS[0]}
    log "=== $name: rc=$rc in $((($(date +%s%N) - t0) / 1000000)) ms"
    ((rc == 0)) || FAILED+=("$name(rc=$rc)")
    return "$rc"
}

# Python's bin folder first: torch's extension builder runs `ninja` from the PATH.
PATH="$(dirname "$($PY -c 'import sys; print(sys.executable)')"):$PATH"

if [[ -n ${WHEELS:-} ]]; then
    step install 120 $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/gpu_check_site "$WHEELS"/*.whl || exit 1
    export PYTHONPATH=/tmp/gpu_check_site${PYTHONPATH:+:$PYTHONPATH}
fi

if [[ -n ${FORCE_TREE:-} ]] || ! $PY -P -c "import splattalk.avatar" 2>/dev/null; then
    log "splattalk is not installed: building an import tree in /tmp/gpu_check_pkg"
    $PY - "$ROOT" /tmp/gpu_check_pkg <<'EOF' 2>&1 | tee -a "$LOG" || exit 1
import os, shutil, sys, tomllib
root, dest = sys.argv[1:]
dirs = tomllib.load(open(os.path.join(root, "pyproject.toml"), "rb"))["tool"]["setuptools"]["package-dir"]
shutil.rmtree(dest, ignore_errors=True)
pkg = os.path.join(dest, "splattalk")
shutil.copytree(os.path.join(root, dirs["splattalk"]), pkg)  # copied: links to subpackages go inside it
for name, path in sorted(dirs.items()):
    parts = name.split(".")
    if len(parts) == 2 and parts[0] == "splattalk" and not os.path.exists(os.path.join(pkg, parts[1])):
        os.symlink(os.path.join(root, path), os.path.join(pkg, parts[1]))
print("import tree:", " ".join(sorted(os.listdir(pkg))))
EOF
    export PYTHONPATH=/tmp/gpu_check_pkg${PYTHONPATH:+:$PYTHONPATH}
fi

step versions 60 $PY -P -c '
import sys, numpy, torch
print("python", sys.version.split()[0], "| numpy", numpy.__version__, "| torch", torch.__version__,
      "| cuda", torch.version.cuda, "| device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
import splattalk.avatar
print("splattalk.avatar from", splattalk.avatar.__path__[0])
for name in ("numba", "gsplat", "tyro", "cv2", "scipy", "safetensors"):
    try:
        mod = __import__(name)
        print(name, getattr(mod, "__version__", "?"))
    except Exception as exc:
        print(name, "FAILED:", repr(exc))
'
step nvidia-smi 30 nvidia-smi
command -v nvcc >/dev/null && nvcc --version | tail -2 | tee -a "$LOG"

if ! $PY -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
    log "torch sees no CUDA device: nothing more to check here"
    exit 1
fi
if [[ -z ${TORCH_CUDA_ARCH_LIST:-} ]]; then
    TORCH_CUDA_ARCH_LIST=$($PY -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())' 2>/dev/null)
    export TORCH_CUDA_ARCH_LIST
fi
log "TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST MAX_JOBS=$MAX_JOBS TORCH_EXTENSIONS_DIR=$TORCH_EXTENSIONS_DIR"
# `import gsplat` alone does not build the extension: its first kernel call does. Build it here, timed.
step gsplat-build 420 $PY -c '
import time
t0 = time.perf_counter()
from gsplat.cuda._backend import _C
assert _C is not None, "gsplat found no CUDA toolkit and disabled its CUDA backend"
print(f"gsplat CUDA extension ready in {time.perf_counter() - t0:.1f} s")
' || { log "gsplat did not build: stopping"; exit 1; }

step pytest-gpu 180 $PY -P -m pytest -m gpu tests/avatar/raster -v -p no:cacheprovider
if [[ -z ${SKIP_BENCH:-} ]]; then
  step bench_rasterize 300 $PY scripts/bench_rasterize.py
fi

if [[ -z ${SKIP_FIT:-} ]]; then
    FIT_ARGS=(--quiet)
    if [[ -n ${FIT_RUN:-} ]]; then
        rm -rf /tmp/gpu_check_fit && cp -r "$FIT_RUN" /tmp/gpu_check_fit && rm -rf /tmp/gpu_check_fit/avatar
        FIT_ARGS+=(--run /tmp/gpu_check_fit)
    fi
    step bench_fit 600 $PY scripts/bench_fit.py "${FIT_ARGS[@]}"
fi

log "=== total $(($(date +%s) - START)) s; failed steps: ${FAILED[*]:-none}"
((${#FAILED[@]} == 0))
