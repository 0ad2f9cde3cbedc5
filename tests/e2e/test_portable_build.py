"""The embedded llama.cpp build survives a real prompt on this CPU.

A build for instructions the kernel does not enable dies with SIGILL on the first prompt longer
than a few tokens, which would kill the whole test run. The model runs in a subprocess, so such
a build is one failing test that says what to do.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e

PROBE = r"""
import sys
from theramind import load_config
from theramind.llm.backends.llamacpp import resolve_model_path
from llama_cpp import Llama

spec = load_config().models["counselor"]
llama = Llama(model_path=str(resolve_model_path(spec)), n_ctx=2048, n_threads=1, verbose=False)
text = " ".join(f"Sentence {i} of a long account of a difficult week at work." for i in range(60))
tokens = llama.tokenize(text.encode())
assert len(tokens) >= 500, len(tokens)
out = llama.create_completion(text, max_tokens=4, temperature=0.0)
print("prompt_tokens", out["usage"]["prompt_tokens"])
"""


def test_the_embedded_model_decodes_a_prompt_of_500_tokens() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=600
    )
    if done.returncode == -signal.SIGILL:
        pytest.fail(
            "llama.cpp died with an illegal instruction: it was built for CPU features this "
            "machine does not enable (a GGML_NATIVE build). Rebuild it portable with "
            "`bash scripts/install.sh` (see README).",
            pytrace=False,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    prompt_tokens = int(done.stdout.split("prompt_tokens")[1].split()[0])
    assert prompt_tokens >= 500
