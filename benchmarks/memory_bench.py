"""Benchmark vector memory: embedding, recall latency, recall@k, memory block and prompt size.

Run `python benchmarks/memory_bench.py --quick` (about a minute) or without `--quick` (full).
Prints a JSON report and writes it to `--out`. Uses the real embedder and real chroma stores
in a temporary directory; fully offline.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
if importlib.util.find_spec("theramind") is None:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
if importlib.util.find_spec("benchmarks") is None:  # run as a script, not with -m
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks.memory_languages import bench_languages
from theramind.config import MemorySettings
from theramind.memory import Embedder, Scope, VectorMemory, format_memories, get_embedder
from theramind.memory.embeddings import DEFAULT_MODEL
from theramind.memory.recall import estimate_tokens, quoted_turns
from theramind.memory.store import ChromaIndex
from theramind.records import (
    EfficacyReport,
    Formulation,
    SalientItem,
    SessionOutcome,
    SessionSummary,
    TherapyDecision,
)

logger = logging.getLogger("memory_bench")

# --- synthetic data -----------------------------------------------------------------------------

SUBJECTS = [
    "my boss",
    "my mother",
    "my flatmate",
    "a colleague",
    "my partner",
    "my teacher",
    "my neighbour",
    "my brother",
    "an old friend",
    "my doctor",
    "my coach",
    "my aunt",
]
ACTIONS = [
    "criticised my report",
    "forgot my birthday",
    "asked me to work late",
    "invited me to a barbecue",
    "complained about the noise",
    "lent me some money",
    "cancelled our plans",
    "gave me a book",
    "ignored my message",
    "praised my cooking",
    "moved the meeting again",
    "told me about a new job",
]
CONTEXTS = [
    "on Monday",
    "last weekend",
    "during lunch",
    "at the station",
    "on the phone",
    "after the gym",
    "at the supermarket",
    "before the exam",
    "on the train",
    "at the party",
    "this morning",
    "in the car park",
]
FEELINGS = [
    "and I felt annoyed",
    "and I felt grateful",
    "and I shrugged it off",
    "and I could not stop thinking about it",
    "and I laughed",
    "and I felt tired",
]
KINDS = ["event", "person", "belief", "goal", "homework"]

# Planted facts and a paraphrase that alludes to each without repeating it.
PLANTED: list[tuple[str, str]] = [
    (
        "event: my father had a stroke in March and is still in hospital",
        "Visiting my dad on the ward is still so hard for me.",
    ),
    (
        "goal: I want to stop drinking wine every weeknight",
        "I managed three evenings without alcohol this week.",
    ),
    (
        "person: my sister Maria moved to Australia last year",
        "I really miss having my sibling close by.",
    ),
    (
        "event: I was made redundant from the warehouse in January",
        "Since losing my job I don't know what to do with my days.",
    ),
    (
        "belief: I think I am a burden to everyone around me",
        "I feel like people would be better off without me bothering them.",
    ),
    (
        "event: my dog Biscuit died after fourteen years",
        "I still expect my old pet to greet me at the door.",
    ),
    (
        "goal: I want to fall asleep before midnight on work nights",
        "My insomnia keeps me up until two most nights.",
    ),
    (
        "event: I had a panic attack on the underground last month",
        "I'm scared of getting on the tube again in case my heart starts racing.",
    ),
    (
        "person: my ex-husband still controls our shared finances",
        "Money arguments with my former partner leave me shaking.",
    ),
    ("event: I failed my final accounting exam twice", "I'm dreading retaking that test again."),
    (
        "belief: if I am not perfect at work I will be fired",
        "Any small mistake at my job feels like the end of my career.",
    ),
    (
        "homework: write a gratitude list every evening",
        "I kept noting down good things before bed like we agreed.",
    ),
    (
        "event: my best friend stopped talking to me after the wedding",
        "I don't understand why my closest friend went silent on me.",
    ),
    (
        "goal: I want to speak up in team meetings",
        "I stayed quiet again when my manager asked for ideas.",
    ),
    (
        "event: our house flooded in the winter storms",
        "We still haven't finished repairing the water damage at home.",
    ),
    (
        "person: my grandmother raised me after my parents divorced",
        "The woman who brought me up is getting frail now.",
    ),
    (
        "event: I was bullied at school for my stutter",
        "Kids used to mock the way I speak and it still stings.",
    ),
    (
        "goal: I want to run a half marathon in the autumn",
        "My training runs are getting longer for the race.",
    ),
    (
        "belief: nobody would love me if they really knew me",
        "I hide who I am because I'm sure people would leave.",
    ),
    (
        "event: my daughter was diagnosed with diabetes",
        "Managing my child's insulin is exhausting.",
    ),
    (
        "person: my manager Greg shouts at me in front of others",
        "My boss humiliated me in public again.",
    ),
    (
        "event: I crashed my car on the motorway in May",
        "I still freeze when I have to drive on fast roads.",
    ),
    (
        "goal: I want to cut down on gambling apps",
        "I deleted the betting apps from my phone yesterday.",
    ),
    (
        "homework: practise box breathing when anxiety rises",
        "The square breathing exercise helped me calm down at work.",
    ),
    ("event: my partner cheated on me with a coworker", "I can't trust him since the affair."),
    (
        "belief: I must always put other people's needs first",
        "I never say no when someone asks me for a favour.",
    ),
    ("event: I moved to a new city where I know nobody", "I feel so lonely since relocating."),
    (
        "goal: I want to eat regular meals instead of skipping food",
        "I forgot to have lunch again and felt dizzy.",
    ),
    (
        "person: my son refuses to go to school",
        "My boy stayed in his room instead of attending class.",
    ),
    ("event: I had a miscarriage in the spring", "Losing the pregnancy still hurts every day."),
]
OFF_TOPIC = [
    "What's the capital of France?",
    "Can you tell me what time it is?",
    "How many legs does a spider have?",
    "What is the boiling point of water?",
    "Who won the football cup in 1998?",
    "How do I convert miles to kilometres?",
]

THEMES = {
    "sleep": [
        "I lay awake again until three.",
        "My sleep was a bit better this week.",
        "The wind-down routine is hard to keep.",
        "I keep waking up at five worrying.",
    ],
    "sister": [
        "My sister and I argued on the phone.",
        "I wrote to my sister but she hasn't replied.",
        "I feel guilty about how I spoke to my sister.",
        "My sister visited at the weekend.",
    ],
    "work": [
        "Work deadlines are piling up.",
        "My manager criticised my report again.",
        "I felt proud after presenting to the team.",
        "I'm thinking about quitting my job.",
    ],
    "panic": [
        "My heart raced on the bus again.",
        "I used the breathing exercise in a shop.",
        "I avoided the supermarket because of panic.",
        "I had no panic attacks this week.",
    ],
}


def distractors(n: int, rng: random.Random) -> list[str]:
    """Return `n` varied everyday disclosures (none about the planted facts)."""
    texts = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        texts.append(
            f"{kind}: {rng.choice(SUBJECTS)} {rng.choice(ACTIONS)} "
            f"{rng.choice(CONTEXTS)} {rng.choice(FEELINGS)}"
        )
    return texts


# --- measurements -------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """Return the q-th percentile in milliseconds, rounded."""
    return round(float(np.percentile(np.asarray(values) * 1000.0, q)), 2)


def bench_embedding(embedder: Embedder, n: int, rng: random.Random) -> dict[str, Any]:
    """Measure batch throughput and single-query latency."""
    texts = distractors(n, rng)
    start = time.perf_counter()
    embedder.embed(texts)
    elapsed = time.perf_counter() - start
    singles = []
    for text in texts[:50]:
        t0 = time.perf_counter()
        embedder.embed([text])
        singles.append(time.perf_counter() - t0)
    return {
        "texts": n,
        "texts_per_s": round(n / elapsed, 1),
        "single_p50_ms": pct(singles, 50),
        "single_p95_ms": pct(singles, 95),
    }


def fill(
    memory: VectorMemory,
    pid: str,
    texts: list[str],
    vectors: np.ndarray,
    sessions: int,
    rng: random.Random,
) -> None:
    """Store pre-embedded texts for one patient (bulk, no dedup), spread over sessions."""
    ids, metas = [], []
    for i, _ in enumerate(texts):
        kind = "disclosure" if i % 10 else rng.choice(["summary", "decision", "formulation"])
        ids.append(f"{kind}/b{i}")
        metas.append(
            {
                "patient_id": pid,
                "kind": kind,
                "key": f"b{i}",
                "session_no": 1 + i % sessions,
                "created_at": "2026-01-01T00:00:00+00:00",
            }
        )
    for s in range(0, len(texts), 2000):
        memory.index.upsert(
            pid, ids[s : s + 2000], vectors[s : s + 2000], texts[s : s + 2000], metas[s : s + 2000]
        )


def bench_latency(
    memory: VectorMemory, sizes: list[int], others: int, queries: int, rng: random.Random
) -> dict[str, Any]:
    """Measure recall latency for one patient holding N items, beside other patients' items."""
    biggest = max(sizes)
    corpus = distractors(biggest + others, rng)
    t0 = time.perf_counter()
    vectors = memory.embedder.embed(corpus)
    embed_s = time.perf_counter() - t0
    per_other = max(1, others // 10)
    for p in range(10):
        lo = biggest + p * per_other
        fill(
            memory, f"other-{p}", corpus[lo : lo + per_other], vectors[lo : lo + per_other], 10, rng
        )
    # Every query is new text, as a patient's message is: recall embeds it, no cache helps.
    asks = [
        f"{rng.choice(list(THEMES.values()))[rng.randrange(4)]} It was {rng.choice(CONTEXTS)}, "
        f"day {n}."
        for n in range(queries * len(sizes))
    ]
    result: dict[str, Any] = {
        "other_patients_items": per_other * 10,
        "corpus_embed_s": round(embed_s, 1),
    }
    for size in sizes:
        pid = f"target-{size}"
        fill(memory, pid, corpus[:size], vectors[:size], 10, rng)
        memory.recall(pid, "warm up", current_session=11)
        full, index_only, filtered = [], [], []
        fresh, asks = asks[:queries], asks[queries:]
        for q in fresh:
            t = time.perf_counter()
            memory.recall(pid, q, current_session=11)
            full.append(time.perf_counter() - t)
        plain, narrowed = Scope(pid).where(), Scope(pid).where(exclude_session=3)
        for vec in memory.embedder.embed(fresh):
            t = time.perf_counter()
            memory.index.query(pid, vec, plain, 16)
            index_only.append(time.perf_counter() - t)
            t = time.perf_counter()
            memory.index.query(pid, vec, narrowed, 16)
            filtered.append(time.perf_counter() - t)
        result[str(size)] = {
            "items": memory.count(pid),
            "queries": len(fresh),
            "recall_p50_ms": pct(full, 50),
            "recall_p95_ms": pct(full, 95),
            "index_p50_ms": pct(index_only, 50),
            "index_p95_ms": pct(index_only, 95),
            "index_filtered_p50_ms": pct(filtered, 50),
            "index_filtered_p95_ms": pct(filtered, 95),
        }
    return result


def bench_recall_at_k(
    memory: VectorMemory, patients: int, facts_each: int, noise: int, rng: random.Random
) -> dict[str, Any]:
    """Plant facts in early sessions among noise; query with paraphrases in session 10."""
    probes: list[tuple[str, str | None, str]] = []
    for p in range(patients):
        pid = f"planted-{p}"
        chosen = rng.sample(PLANTED, facts_each)
        memory.remember_many(
            pid, [("disclosure", t) for t in distractors(noise, rng)], session_no=1 + p % 9
        )
        keys = memory.remember_many(
            pid, [("disclosure", f) for f, _ in chosen], session_no=1 + p % 3
        )
        probes.extend((pid, key, query) for key, (_, query) in zip(keys, chosen, strict=True))
    k = memory.settings.top_k
    sweep: dict[str, Any] = {}
    for threshold in (0.25, 0.30, 0.35, 0.40):
        view = VectorMemory(
            memory.index,
            memory.embedder,
            memory.settings.model_copy(update={"min_similarity": threshold}),
        )
        hits_k = hits_1 = 0
        rr = 0.0
        for pid, key, query in probes:
            ids = [m.id for m in view.recall(pid, query, current_session=10)]
            if key in ids:
                hits_k += 1
                rr += 1.0 / (ids.index(key) + 1)
                hits_1 += ids[0] == key
        pids = sorted({pid for pid, _, _ in probes})
        empty = [view.recall(pid, q, current_session=10) == [] for pid in pids for q in OFF_TOPIC]
        sweep[f"{threshold:.2f}"] = {
            f"recall_at_{k}": round(hits_k / len(probes), 3),
            "hit_at_1": round(hits_1 / len(probes), 3),
            "mrr": round(rr / len(probes), 3),
            "off_topic_recalls_nothing": round(sum(empty) / len(empty), 3),
        }
    default = f"{memory.min_similarity:.2f}"
    return {
        "patients": patients,
        "queries": len(probes),
        "noise_items_each": noise,
        "k": k,
        "min_similarity": default,
        **sweep.get(default, {}),
        "by_min_similarity": sweep,
    }


def session_outcome(pid: str, session_no: int, theme: str, rng: random.Random) -> SessionOutcome:
    """Return a plausible outcome for a session that dwelt on one theme."""
    lines = THEMES[theme]
    return SessionOutcome(
        patient_id=pid,
        session_no=session_no,
        efficacy=EfficacyReport(
            verdict=rng.choice(["effective", "partially_effective"]),
            reason=f"Some progress on {theme}.",
        ),
        decision=TherapyDecision(
            action="keep",
            therapies=["cbt"],
            phase="intervention",
            reason=f"Session {session_no}: CBT helps with {theme}.",
        ),
        formulation=Formulation(
            presenting_problems=["insomnia", "panic attacks", "family conflict"],
            maintaining_factors=[f"avoidance around {theme}"],
            strengths=["insight", "humour"],
        ),
        summary=SessionSummary(
            summary=f"Session {session_no} focused on {theme}. {lines[session_no % 4]} "
            f"We agreed small steps for the coming week.",
            salient=[
                SalientItem(kind="event", text=rng.choice(lines)),
                SalientItem(
                    kind="goal", text=f"Make progress on {theme} by week {session_no + 1}."
                ),
            ],
            next_focus=f"Follow up on {theme}.",
        ),
        previous_therapies=["cbt"],
    )


INTAKE = [
    "event: sleeps four to five hours a night since starting a new job",
    "person: older sister lives nearby; they argue about caring for their mother",
    "event: first panic attack on a crowded bus six months ago",
    "belief: feels she has to handle everything alone",
    "goal: wants to sleep better and stop avoiding public transport",
]


def bench_block(
    memory: VectorMemory,
    sessions: int,
    turns: int,
    rng: random.Random,
    *,
    intake: bool,
    in_prompt: int = 3,
) -> dict[str, Any]:
    """Measure memory-block tokens per counselor turn as memory grows over the sessions.

    Mirrors the session graph: the intake record is seeded before session 1 (when `intake`),
    each turn's message is remembered after its reply, and recall skips the `in_prompt` turns
    the prompt already quotes.
    """
    pid = "block-patient"
    if intake:
        memory.remember_intake(pid, INTAKE)
    per_session: list[dict[str, Any]] = []
    for s in range(1, sessions + 1):
        theme = list(THEMES)[(s - 1) % len(THEMES)]
        focus = "assessment of the presenting problem" if s == 1 else f"follow up on {theme}"
        tokens = []
        for t in range(1, turns + 1):
            topic = rng.choice([theme, theme, rng.choice(list(THEMES))])
            message = f"{rng.choice(THEMES[topic])} It was {rng.choice(CONTEXTS)}."
            skip = quoted_turns(s, t - 1, in_prompt)
            items = memory.recall(pid, message, current_session=s, focus=focus, skip=skip)
            tokens.append(estimate_tokens(format_memories(items)))
            memory.remember(pid, "disclosure", message, session_no=s, turn=t)
        memory.consolidate(session_outcome(pid, s, theme, rng))
        per_session.append(
            {
                "session": s,
                "mean_tokens": round(statistics.mean(tokens), 1),
                "max_tokens": max(tokens),
                "stored_items": memory.count(pid),
            }
        )
    means = [p["mean_tokens"] for p in per_session]
    return {
        "intake_seeded": intake,
        "budget": memory.settings.token_budget,
        "top_k": memory.settings.top_k,
        "mean_tokens_by_session": means,
        "max_tokens_by_session": [p["max_tokens"] for p in per_session],
        "stored_items_by_session": [p["stored_items"] for p in per_session],
        "max_tokens_any_turn": max(p["max_tokens"] for p in per_session),
        "ratio_s10_to_s1": round(means[-1] / means[0], 3) if means[0] else None,
        "ratio_s10_to_s5": round(means[-1] / means[4], 3) if len(means) > 4 and means[4] else None,
    }


def bench_prompt(endpoint: Any, home: Path, sessions: int) -> dict[str, Any]:
    """Measure whole prompt tokens per turn of the real graph over `sessions` sessions.

    One simulated patient, every call answered by the stub server (no latency), memory on
    (chroma + the real embedder) beside the same counselor with memory off.
    """
    from benchmarks.scenarios import REAL_MEMORY, Plan, session_rows, treat

    plan = Plan(sessions=sessions, latency_s=0.0, memory=dict(REAL_MEMORY))
    out: dict[str, Any] = {"patient": plan.patient, "seed": plan.seed, "sessions": sessions}
    for kind in ("theramind", "theramind_no_memory"):
        metered, _, _ = treat(kind, endpoint, plan, home / kind, sessions=sessions)
        rows = [row["prompt_tokens_per_turn"] for row in session_rows(metered)]
        out[kind] = {
            "prompt_tokens_per_turn": rows,
            "ratio_s10_to_s1": round(rows[-1] / rows[0], 3) if rows and rows[0] else None,
            "ratio_max_to_s1": round(max(rows) / rows[0], 3) if rows and rows[0] else None,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    parser.add_argument("--out", default="runs/bench/memory_bench.json", help="JSON report path")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 suits queries)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--embedder",
        default=DEFAULT_MODEL,
        help=f"memory.embedding_model (default {DEFAULT_MODEL})",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # The stub server is forked before torch starts any thread.
    from benchmarks.endpoint import StubEndpoint

    endpoint = StubEndpoint(latency_s=0.0)

    import torch

    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    sizes = [200, 1_000] if args.quick else [1_000, 10_000]
    embedder = get_embedder(args.embedder)
    t0 = time.perf_counter()
    embedder.embed(["warm up"])
    report: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "torch_threads": args.threads,
            "load_avg_1m_start": round(os.getloadavg()[0], 2),
        },
        "embedder": embedder.name,
        "model_load_s": round(time.perf_counter() - t0, 2),
    }
    with tempfile.TemporaryDirectory(prefix="tm-membench-") as tmp:

        def fresh(name: str) -> VectorMemory:
            settings = MemorySettings(path=str(Path(tmp) / name))
            index = ChromaIndex.from_settings(settings, Path(tmp) / name, embedder)
            return VectorMemory(index, embedder, settings)

        report["embedding"] = bench_embedding(embedder, 256 if args.quick else 2_048, rng)
        report["recall_latency"] = bench_latency(
            fresh("latency"), sizes, 500 if args.quick else 2_000, 30 if args.quick else 100, rng
        )
        report["recall_at_k"] = bench_recall_at_k(
            fresh("planted"), 4 if args.quick else 12, 5, 40 if args.quick else 120, rng
        )
        report["recall_by_language"] = bench_languages(
            fresh("languages"),
            random.Random(args.seed),
            patients=2 if args.quick else 4,
            facts_each=6,
            noise=30 if args.quick else 60,
        )
        report["prompt_block"] = {
            "cold_start": bench_block(
                fresh("block"), 10, 5, random.Random(args.seed), intake=False
            ),
            "intake_seeded": bench_block(
                fresh("block-intake"), 10, 5, random.Random(args.seed), intake=True
            ),
        }
        try:
            report["prompt_per_turn"] = bench_prompt(endpoint, Path(tmp) / "graph", 10)
        finally:
            endpoint.close()
    report["total_s"] = round(time.perf_counter() - t0, 1)
    report["machine"]["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
