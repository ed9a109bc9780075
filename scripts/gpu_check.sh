#!/usr/bin/env bash
# The GPU checks of a session lent a CUDA machine, as one short run (about 5 minutes on
# an H100 host; the device's image has Python 3.12, torch with CUDA, numpy, scipy and
# numba, but not scalgui's other needs, and no network).
#
# Here, once, in the repository's root (wheels for the device's Python, kept out of git):
#     bash scripts/gpu_check.sh --fetch-wheels
# Then the device's command (its `carry`: [".whl"]):
#     bash scripts/gpu_check.sh "$OUT"
# It installs the wheels under /tmp/site, runs the tests that have a CUDA variant (the
# `gpu` marker) and scripts/gpu_check.py, and leaves its logs and gpu_check.json in the
# folder given. The Qt tests stay on the CPU machines: PyQt6's wheels are larger than
# what a device call carries.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--fetch-wheels" ]; then
    mkdir -p .git/info
    grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl \
        kymatio==0.3.0 appdirs configparser pedalboard==0.9.26 pyfftw platformdirs psygnal
    du -sh .whl
    exit 0
fi

out="${1:-gpu_check_out}"
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "gpu_check: the wheels in .whl did not install (fetch them here first: --fetch-wheels)"; exit 3; }
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE QT_QPA_PLATFORM=offscreen
# No pytest-qt there: plugins are not loaded, and only modules that need no Qt are collected.
export PYTEST_DISABLE_PLUGIN_AUTOLOAD=1
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
status=0
timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu \
    tests/test_frame.py tests/test_signals.py tests/test_robustness.py 2>&1 | tee "$out/pytest_gpu.log" || status=1
timeout 480 python3 scripts/gpu_check.py "$out/gpu_check.json" 2>&1 | tee "$out/gpu_check.log" || status=1
exit $status
