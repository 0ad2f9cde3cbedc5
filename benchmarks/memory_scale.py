"""Scale figure: memory cost per turn and recall latency as one patient's memory grows.

For one patient holding 100, 1,000, 10,000 (and with `--big` 100,000) memories, and for many
patients × 100 memories each (`--patients`, 1,000 for the full figure), it measures a turn's
memory work with the product's memory (chroma + the default embedder): recall of a new
message (embedding included) and storing it afterwards. CPU time (time.process_time) is the
headline, wall time beside it, with the machine load and a CPU reference loop.

The stored memories are everyday disclosures; beyond a pool of 2,000 embedded texts, further
vectors are the pool's plus small noise (renormalised), so filling 100,000 items does not
take an hour of embedding. Search cost depends on the number and spread of vectors, which
this keeps; recall quality is the memory benchmark's business, not this one's.

Run `python benchmarks/memory_scale.py` (100 to 10,000, 200 patients; a few minutes) or
`--big --patients 1000` for the full figure.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
if importlib.util.find_spec("theramind") is None:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
if importlib.util.find_spec("benchmarks") is None:  # run as a script, not with -m
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks.memory_bench import CONTEXTS, THEMES, distractors, fill
from benchmarks.throughput import conditions
from theramind.config import MemorySettings
from theramind.memory import VectorMemory, get_embedder
from theramind.memory.embeddings import DEFAULT_MODEL
from theramind.memory.store import ChromaIndex

POOL = 2_000


def corpus(embedder: Any, n: int, rng: random.Random) -> tuple[list[str], np.ndarray]:
    """Return `n` texts and vectors: a pool embedded for real, then noisy copies of it."""
    texts = distractors(min(n, POOL), rng)
    vectors = embedder.embed(texts)
    if n <= len(texts):
        return texts, vectors
    picks = np.random.default_rng(rng.randrange(2**32)).integers(0, len(texts), n - len(texts))
    noise = np.random.default_rng(1).normal(0.0, 0.02, (len(picks), vectors.shape[1]))
    extra = vectors[picks] + noise.astype(np.float32)
    extra /= np.linalg.norm(extra, axis=1, keepdims=True)
    return texts + [f"{texts[i]} (again {k})" for k, i in enumerate(picks)], np.vstack(
        [vectors, extra]
    )


def turns(memory: VectorMemory, pid: str, count: int, rng: random.Random) -> dict[str, Any]:
    """Run `count` turns of memory work (recall a new message, then store it); time them."""
    cpu, wall = [], []
    for n in range(count):
        lines = rng.choice(list(THEMES.values()))
        message = f"{rng.choice(lines)} It was {rng.choice(CONTEXTS)}, turn {n}."
        c, w = time.process_time(), time.perf_counter()
        memory.recall(pid, message, current_session=11, focus="follow up on sleep")
        memory.remember_soon(pid, [("disclosure", message)], session_no=11, turn=n + 1)
        memory.flush()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    recall_wall = []
    for n in range(count):
        message = f"{rng.choice(rng.choice(list(THEMES.values())))} Day {n} of the week."
        w = time.perf_counter()
        memory.recall(pid, message, current_session=11)
        recall_wall.append(time.perf_counter() - w)
    return {
        "items": memory.count(pid),
        "turns": count,
        "cpu_ms_per_turn_p50": round(statistics.median(cpu) * 1000, 2),
        "cpu_ms_per_turn_mean": round(statistics.fmean(cpu) * 1000, 2),
        "wall_ms_per_turn_p50": round(statistics.median(wall) * 1000, 2),
        "recall_ms_p50": round(float(np.percentile(recall_wall, 50)) * 1000, 2),
        "recall_ms_p95": round(float(np.percentile(recall_wall, 95)) * 1000, 2),
        "conditions": conditions(),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the scale figure and print (and save) its JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true", help="add 100,000 memories (long)")
    parser.add_argument("--patients", type=int, default=200, help="patients × 100 memories")
    parser.add_argument("--turns", type=int, default=30, help="turns measured per size")
    parser.add_argument("--embedder", default=DEFAULT_MODEL)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    rng = random.Random(11)
    embedder = get_embedder(args.embedder)
    embedder.embed(["warm up"])
    sizes = [100, 1_000, 10_000] + ([100_000] if args.big else [])
    report: dict[str, Any] = {
        "benchmark": "memory_scale",
        "memory": f"chroma + {embedder.name}",
        "conditions_start": conditions(),
        "one_patient": {},
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tm-memscale-") as tmp:
        settings = MemorySettings(path=tmp)
        memory = VectorMemory(ChromaIndex.from_settings(settings, Path(tmp), embedder), embedder)
        texts, vectors = corpus(embedder, max(sizes), rng)
        for size in sizes:
            pid = f"one-{size}"
            fill(memory, pid, texts[:size], vectors[:size], 10, rng)
            report["one_patient"][str(size)] = turns(memory, pid, args.turns, rng)
            print(json.dumps({"size": size, **report["one_patient"][str(size)]}), flush=True)
        fill_started = time.perf_counter()
        for p in range(args.patients):
            lo = (p * 100) % max(1, len(texts) - 100)
            fill(memory, f"many-{p}", texts[lo : lo + 100], vectors[lo : lo + 100], 10, rng)
        many = turns(memory, f"many-{args.patients // 2}", args.turns, rng)
        many["patients"] = args.patients
        many["fill_s"] = round(time.perf_counter() - fill_started, 1)
        report["many_patients_x100"] = many
        print(json.dumps({"patients": args.patients, **many}), flush=True)
        memory.close()
    report["total_s"] = round(time.perf_counter() - started, 1)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
