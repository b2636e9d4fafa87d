#!/usr/bin/env bash
# One run of everything that needs an NVIDIA GPU, on a machine without internet.
#
#   bash scripts/gpu_verify.sh OUT_DIR          # from the repository root (or anywhere)
#
# It installs polygrad from this checkout (pip's editable install, or, without setuptools,
# a dist-info shim on PYTHONPATH so the entry points still register), installs any wheels
# carried in .whl/ whose package is missing, records nvidia-smi and versions, then runs:
#   1. benchmarks/bench_gpu.py (W1 N=1e8, W3 large), alone, so nothing skews the clocks;
#   2. the GPU tests (tests/test_cuda.py, tests/test_cupy.py);
#   3. the whole test suite in the background (pytest -q, xdist when installed) while
#   4. the conformance suite runs on cupy and on torch-cuda, float32 and float64.
# Every step has its own timeout and the whole run stays inside GPU_VERIFY_BUDGET seconds
# (default 520, for a 10-minute slot); a step that runs out of time is interrupted (SIGINT,
# so pytest still prints its summary) and the script goes on. Results land in OUT_DIR:
# summary.md, versions.txt, nvidia-smi.txt, plugins.json, bench_gpu.{json,md},
# pytest-gpu.txt, pytest-all.{txt,xml}, conformance-{cupy,torch}-cuda.{json,md,html}.
# The exit status is 0 when every step finished with status 0.
# Knobs for a dry run elsewhere: GPU_VERIFY_SKIP_INSTALL=1 (polygrad is installed already),
# GPU_VERIFY_SUITE="tests/test_x.py ..." (what step 3 runs instead of the whole suite),
# GPU_VERIFY_WORKERS=N (xdist workers for step 3; 0 runs it serially; default 8).
set -u

OUT=${1:?usage: bash scripts/gpu_verify.sh OUT_DIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${PYTHON:-python3}
BUDGET=${GPU_VERIFY_BUDGET:-520}
SUMMARY=()
FAILED=0

say() { echo "== $* [${SECONDS}s]"; }

left() { echo $(( BUDGET - SECONDS )); }

# run_step NAME LIMIT_S LOG CMD...: run with a timeout (cut to the budget left), keep the log,
# print its last lines, record the outcome.
run_step() {
    local name=$1 limit=$2 log=$3
    shift 3
    local remaining
    remaining=$(( $(left) - 10 ))
    (( limit > remaining )) && limit=$remaining
    if (( limit < 15 )); then
        SUMMARY+=("| $name | skipped: time budget spent | |")
        FAILED=1
        say "$name: skipped, the time budget is spent"
        return
    fi
    say "$name (limit ${limit}s)"
    local t0=$SECONDS
    timeout -s INT -k 20 "$limit" "$@" > "$log" 2>&1
    local rc=$?
    local note="rc=$rc"
    (( rc == 124 || rc == 137 )) && note="timed out after ${limit}s (rc=$rc)"
    (( rc != 0 )) && FAILED=1
    tail -n "${TAIL:-12}" "$log"
    SUMMARY+=("| $name | $note, $(( SECONDS - t0 ))s | $(basename "$log") |")
}

# -- 0. wheels carried in .whl/ for packages missing here ---------------------------------------
say "environment"
EXTRA_PATH=""
if [ -d .whl ]; then
    for whl in .whl/*.whl; do
        [ -e "$whl" ] || continue
        dist=$(basename "$whl" | cut -d- -f1)
        if ! "$PY" -c "import importlib.metadata as m, sys; m.version(sys.argv[1])" "$dist" \
                2>/dev/null; then
            if ! "$PY" -m pip install -q --no-index --no-deps "$whl" 2>/dev/null; then
                # no pip: a wheel is a zip; pure-python ones work unpacked on PYTHONPATH
                EXTRA_PATH=${EXTRA_PATH:-$(mktemp -d)/wheels}
                "$PY" -m zipfile -e "$whl" "$EXTRA_PATH"
            fi
            echo "installed from .whl: $(basename "$whl")"
        fi
    done
fi

# -- 1. polygrad itself -------------------------------------------------------------------------
if [ "${GPU_VERIFY_SKIP_INSTALL:-0}" = 1 ]; then
    echo "polygrad: install skipped (GPU_VERIFY_SKIP_INSTALL=1)"
elif "$PY" -m pip install -q --no-deps --no-build-isolation -e . > "$OUT/install.log" 2>&1; then
    echo "polygrad: pip install -e . (editable)"
else
    # no setuptools (or no pip): the packages and entry points through a dist-info shim
    SITE=$(mktemp -d)/site
    "$PY" - "$REPO" "$SITE" <<'EOF'
import pathlib, sys, tomllib
repo, site = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
cfg = tomllib.loads((repo / "pyproject.toml").read_text())
site.mkdir(parents=True, exist_ok=True)
for name, folder in cfg["tool"]["setuptools"]["package-dir"].items():
    (site / name).symlink_to(repo / folder)
project = cfg["project"]
dist = site / f"polygrad-{project['version']}.dist-info"
dist.mkdir()
version = project["version"]
(dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: polygrad\nVersion: {version}\n")
lines = []
groups = dict(project.get("entry-points", {}), console_scripts=project.get("scripts", {}))
for group, entries in groups.items():
    lines += [f"[{group}]"] + [f"{k} = {v}" for k, v in entries.items()] + [""]
(dist / "entry_points.txt").write_text("\n".join(lines))
EOF
    EXTRA_PATH="$SITE${EXTRA_PATH:+:$EXTRA_PATH}"
    echo "polygrad: pip install -e . failed (see install.log); using a dist-info shim at $SITE"
fi
if [ -n "$EXTRA_PATH" ]; then
    export PYTHONPATH="$EXTRA_PATH${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1

if ! timeout 30 nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1; then
    echo "(nvidia-smi failed)" >> "$OUT/nvidia-smi.txt"
fi
GPU_NAME=$(timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total \
    --format=csv,noheader 2>/dev/null | head -n 1)
head -n 15 "$OUT/nvidia-smi.txt"
timeout 120 "$PY" - > "$OUT/versions.txt" 2>&1 <<'EOF'
import importlib.metadata as m, platform, sys
print("python", platform.python_version(), sys.executable)
for dist in ("polygrad", "numpy", "torch", "cupy-cuda13x", "cupy-cuda12x", "jax", "jaxlib",
             "array-api-compat", "array-api-strict", "pluggy", "scipy", "pytest", "pytest-xdist",
             "hypothesis", "jsonschema", "rich"):
    try:
        print(dist, m.version(dist))
    except m.PackageNotFoundError:
        print(dist, "(not installed)")
try:
    import torch
    print("torch cuda", torch.version.cuda, "available", torch.cuda.is_available(),
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
except Exception as exc:
    print("torch:", type(exc).__name__, exc)
import polygrad
print("polygrad backends usable:", polygrad.backends())
print("polygrad.cuda.is_available():", polygrad.cuda.is_available())
for name in ("cupy", "torch"):
    b = polygrad.get_backend(name)
    print(name, "unavailable:", b.unavailable_reason(), "devices:", b.devices())
EOF
cat "$OUT/versions.txt"
timeout 120 "$PY" -m polygrad plugins --json --load > "$OUT/plugins.json" 2>&1
timeout 120 "$PY" -m polygrad plugins 2>&1 | tee "$OUT/plugins.txt"

# -- 2. the benchmark, alone --------------------------------------------------------------------
TAIL=14 run_step "bench_gpu (W1 N=1e8, W3 large)" 150 "$OUT/bench_gpu.txt" \
    "$PY" benchmarks/bench_gpu.py --json "$OUT/bench_gpu.json" --markdown "$OUT/bench_gpu.md"

# -- 3. the GPU tests ---------------------------------------------------------------------------
run_step "GPU tests (test_cuda, test_cupy)" 150 "$OUT/pytest-gpu.txt" \
    "$PY" -m pytest tests/test_cuda.py tests/test_cupy.py -q -rfEs -p no:cacheprovider \
    --junitxml "$OUT/pytest-gpu.xml"

# -- 4. the whole suite in the background, the conformance suite in the foreground ----------------
XDIST=()
WORKERS=${GPU_VERIFY_WORKERS:-8}
if (( WORKERS > 0 )) && "$PY" -c "import xdist" 2>/dev/null; then
    XDIST=(-n "$WORKERS" --dist loadfile)
fi
read -r -a SUITE <<< "${GPU_VERIFY_SUITE:-}"
SUITE_LIMIT=$(( $(left) - 15 ))
if (( SUITE_LIMIT >= 30 )); then
    say "whole test suite in the background (limit ${SUITE_LIMIT}s, ${XDIST[*]:-serial})"
    SUITE_T0=$SECONDS
    ( timeout -s INT -k 20 "$SUITE_LIMIT" "$PY" -m pytest -q -rfE -p no:cacheprovider \
        "${XDIST[@]}" --junitxml "$OUT/pytest-all.xml" "${SUITE[@]}" > "$OUT/pytest-all.txt" 2>&1
      echo $? > "$OUT/.pytest-all.rc" ) &
    SUITE_PID=$!
else
    SUITE_PID=""
fi

for backend in cupy torch; do
    TAIL=4 run_step "conformance $backend cuda:0 float32+float64" 200 \
        "$OUT/conformance-$backend-cuda.txt" \
        "$PY" -m polygrad conformance --backend "$backend" --device cuda:0 \
        --dtype float32 --dtype float64 --quiet \
        --json "$OUT/conformance-$backend-cuda.json" \
        --markdown "$OUT/conformance-$backend-cuda.md" \
        --html "$OUT/conformance-$backend-cuda.html"
done

if [ -n "$SUITE_PID" ]; then
    wait "$SUITE_PID"
    rc=$(cat "$OUT/.pytest-all.rc" 2>/dev/null || echo "?")
    rm -f "$OUT/.pytest-all.rc"
    note="rc=$rc"
    [ "$rc" = 124 ] && note="interrupted at ${SUITE_LIMIT}s (rc=124); summary is of what ran"
    [ "$rc" != 0 ] && FAILED=1
    say "whole test suite: $note"
    tail -n 25 "$OUT/pytest-all.txt"
    SUMMARY+=("| whole test suite ${XDIST[*]:-} | $note, $(( SECONDS - SUITE_T0 ))s |"\
" pytest-all.txt |")
else
    SUMMARY+=("| whole test suite | skipped: time budget spent | |")
    FAILED=1
fi

# -- summary ------------------------------------------------------------------------------------
{
    echo "# gpu_verify $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    echo "GPU: ${GPU_NAME:-none found by nvidia-smi} (name, driver, memory)"
    echo
    echo "| step | outcome | log |"
    echo "|---|---|---|"
    printf '%s\n' "${SUMMARY[@]}"
    echo
    echo "total ${SECONDS}s"
} > "$OUT/summary.md"
echo
cat "$OUT/summary.md"
exit "$FAILED"
