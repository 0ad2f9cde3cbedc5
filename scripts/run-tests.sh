#!/usr/bin/env bash
# Run the whole test suite offline. Any attempt to reach the network goes to a dead proxy
# (127.0.0.1:9) and model hubs are switched off, so a test that needs the internet fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}

# The vLLM integration test needs a prepared CPU build of vLLM (its own venv, outside the repo).
if [ "${THERAMIND_SKIP_VLLM:-0}" != "1" ]; then
  bash scripts/prepare_vllm_cpu.sh
fi

# The browser tests drive Debian's chromium (no browser download is possible offline).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "no chromium: the browser tests will be skipped (apt-get install chromium)" >&2
  fi
fi

# The storage tests also run against a throwaway PostgreSQL cluster that they start on loopback
# themselves (initdb in a temporary directory); they need Debian's server programs.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's postgresql for the storage tests" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "no postgresql: the postgres variants of the storage tests will be skipped" \
      "(apt-get install postgresql)" >&2
  fi
fi

# Lint, format and types first: a red check stops the run before the slow tests.
"$PY" -m ruff check .
"$PY" -m ruff format --check .
"$PY" -m mypy src

export HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 ALL_PROXY=http://127.0.0.1:9
export http_proxy=$HTTP_PROXY https_proxy=$HTTPS_PROXY all_proxy=$ALL_PROXY
export NO_PROXY=127.0.0.1,localhost,::1 no_proxy=127.0.0.1,localhost,::1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 ANONYMIZED_TELEMETRY=False
exec "$PY" -m pytest --timeout=1500 "$@"
