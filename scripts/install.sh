#!/usr/bin/env bash
# Set up TheraMind in a virtual environment, with a llama.cpp that runs on any x86-64 CPU with AVX2.
#
#   bash scripts/install.sh                    # .venv with TheraMind (editable) and its defaults
#   bash scripts/install.sh test,integration   # ... and these extras
#   bash scripts/install.sh --llama-only       # only the portable llama.cpp (then pip install a wheel)
#
# Why a script: llama-cpp-python ships no wheels on PyPI, so pip compiles llama.cpp, and by default
# for the build machine's CPUID (GGML_NATIVE=ON). Where CPUID reports instructions the kernel does
# not enable (AMX, AVX512-FP16 on some virtual machines) that build dies with an illegal instruction
# on any real prompt. pip's wheel cache keys on the source archive, not on CMAKE_ARGS, so a native
# wheel built once comes back. This script builds llama-cpp-python itself, portable, outside pip's
# cache, and only the libraries the Python bindings load; then installs TheraMind, which finds the
# pinned llama-cpp-python already there.
#
# Environment: VENV (default .venv), PYTHON (default python3, 3.11 or newer),
#   THERAMIND_LLAMA_CMAKE_ARGS (replaces the portable flags, e.g. to add a GPU backend).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${VENV:-.venv}"
python_bin="${PYTHON:-python3}"
extras=""
llama_only=0
for arg in "$@"; do
  case "$arg" in
    --llama-only) llama_only=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) extras="$arg" ;;
  esac
done

started=$SECONDS
log() { printf '[install %4ds] %s\n' "$((SECONDS - started))" "$*" >&2; }

readonly portable="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
cmake_args="${THERAMIND_LLAMA_CMAKE_ARGS:-$portable}"
# The bindings load libllama and the ggml libraries; llama.cpp's common library (half the
# compile) is not needed, and this file, included by llama.cpp's project(), switches it off.
readonly bindings_only="-DCMAKE_PROJECT_llama.cpp_INCLUDE=$PWD/scripts/llama-bindings-only.cmake"

if [[ ! -x "$venv/bin/python" ]]; then
  "$python_bin" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { log "ERROR: $python_bin is older than 3.11; set PYTHON"; exit 1; }
  log "creating $venv"
  "$python_bin" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)

# The llama-cpp-python requirement, read from pyproject.toml so the two cannot drift apart.
spec="$("$venv/bin/python" - <<'PY'
import tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print(next(d for d in deps if d.replace("_", "-").startswith("llama-cpp-python")))
PY
)"
marker="$venv/.theramind-llama"
stamp="$spec $cmake_args"
if [[ -f "$marker" && "$(cat "$marker")" == "$stamp" ]] && "$venv/bin/python" -c 'import llama_cpp' 2>/dev/null; then
  log "llama.cpp ready ($spec, built with: $cmake_args)"
else
  log "building $spec with: $cmake_args (about 3 minutes on 2 cores)"
  build() {
    CMAKE_ARGS="$1" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc 2>/dev/null || echo 2)" \
      "${pip[@]}" install --quiet --no-cache-dir --force-reinstall --no-deps "$spec"
  }
  if ! build "$cmake_args $bindings_only"; then
    log "the build of only the libraries the bindings load failed; building all of llama.cpp"
    build "$cmake_args"
  fi
  printf '%s' "$stamp" >"$marker"
  log "llama.cpp built"
fi
[[ "$llama_only" == 1 ]] && { log "done (llama.cpp only)"; exit 0; }

target="."
[[ -n "$extras" ]] && target=".[$extras]"
log "installing TheraMind ($target, editable) and its dependencies"
"${pip[@]}" install --quiet -e "$target"
log "done in $((SECONDS - started)) s: $venv/bin/theramind"
