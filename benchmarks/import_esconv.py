"""Benchmark `profiles import --format esconv` on a generated 200-record ESConv-shaped file.

Usage: python benchmarks/import_esconv.py [--records 200] [--seed 0] [--run 200]
       [--counselor plain] [--out DIR]

The records are generated here from a few sentence parts (no dataset text): most are valid,
some lack the survey score or the situation, and about one in ten is malformed on purpose
(not an object, an intensity outside 1..5, a turn without text, nothing to build a situation
from). The import's counts (imported, defaulted fields, rejected with reasons) and time are
printed; then `--run` of the imported profiles each run one scripted session, to show they
are usable as they are.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from theramind import load_config
from theramind.datasets import import_profiles
from theramind.simulation import ExperimentConfig, ExperimentRunner

PROBLEMS = (
    "job crisis",
    "breakup with partner",
    "ongoing depression",
    "problems with friends",
    "academic pressure",
    "procrastination",
    "alcohol abuse",
    "issues with parents",
    "sleep problems",
    "something the mapping does not know",
)
EMOTIONS = ("anxiety", "sadness", "anger", "fear", "shame", "disgust", "nervousness")
SITUATIONS = (
    "I have been told my contract ends next month and I have no plan.",
    "My partner and I stopped talking after a long argument about moving.",
    "I cannot get out of bed on most mornings and I have stopped answering calls.",
    "My closest friend has been ignoring my messages for weeks.",
    "My exams start soon and I have not opened my notes.",
)
TURNS = (
    "I keep replaying what happened and I cannot sleep.",
    "My family does not really understand what I am going through.",
    "hi",
    "I feel like I am failing at everything right now!",
    "Some days are fine, but most evenings I just sit and worry about money and work.",
    "I am not sure talking helps, but I wanted to try.",
)


def generate(n: int, seed: int) -> list[Any]:
    """Return `n` ESConv-shaped records; about 10% malformed, about 20% without a survey."""
    rng = random.Random(seed)
    records: list[Any] = []
    for i in range(n):
        dialog = [
            {"speaker": "supporter", "content": "Hello, how are you feeling today?"},
            *(
                {"speaker": "seeker", "content": rng.choice(TURNS), "annotation": {}}
                for _ in range(rng.randint(1, 5))
            ),
        ]
        record: dict[str, Any] = {
            "emotion_type": rng.choice(EMOTIONS),
            "problem_type": rng.choice(PROBLEMS),
            "situation": rng.choice(SITUATIONS) if rng.random() > 0.05 else "",
            "dialog": dialog,
        }
        if rng.random() > 0.2:
            intensity = rng.randint(1, 5)
            record["survey_score"] = {"seeker": {"initial_emotion_intensity": str(intensity)}}
        fault = i % 10 == 9
        if fault:
            kind = (i // 10) % 4
            if kind == 0:
                records.append(f"broken record {i}")
                continue
            if kind == 1:
                record["survey_score"] = {"seeker": {"initial_emotion_intensity": "9"}}
            elif kind == 2:
                record["dialog"][1] = {"speaker": "seeker", "content": None}
            else:
                record["situation"] = ""
                record["dialog"] = [{"speaker": "supporter", "content": "Hello?"}]
        records.append(record)
    return records


def main() -> None:
    """Generate the records, import them, run a session each and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", type=int, default=200, help="Profiles to run a session with.")
    parser.add_argument("--counselor", default="plain", help="Counselor kind of that session.")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="import-esconv-"))
    source = root / "esconv_generated.json"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(json.dumps(generate(args.records, args.seed)), encoding="utf-8")
    therapies = load_config().taxonomy().therapy_ids
    started = time.perf_counter()
    result = import_profiles("esconv", source, root / "profiles", therapies, seed=args.seed)
    elapsed = time.perf_counter() - started
    print(f"source: {source} ({args.records} records)")
    print(
        f"imported: {len(result.written)}  rejected: {len(result.rejected)}  "
        f"time: {elapsed:.3f} s ({1000 * elapsed / max(1, args.records):.2f} ms/record)"
    )
    print("defaulted fields (profiles):")
    for name, count in sorted(result.defaulted.items()):
        print(f"  {name:<26} {count}")
    print("rejected, by field and reason:")
    reasons = Counter(f"{r.field}: {r.reason}" for r in result.rejected)
    for reason, count in reasons.most_common():
        print(f"  {count:>3}  {reason}")
    if args.run and result.written:
        ids = sorted(p.stem for p in result.written)[: args.run]
        exp = ExperimentConfig.model_validate(
            {
                "name": "import-esconv",
                "counselors": [{"name": args.counselor, "kind": args.counselor}],
                "patients": ids,
                "profiles_dir": str(root / "profiles"),
                "sessions": 1,
                "round_cap": 3,
                "models": {"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
                "memory": {"backend": "inmemory", "embedding_model": "hashing"},
                "concurrency": 8,
                "output_dir": str(root / "run"),
            }
        )
        started = time.perf_counter()
        summary = ExperimentRunner(exp).run()
        print(
            f"one scripted session ({args.counselor}) each for {len(ids)} profiles: "
            f"{summary.sessions_run} sessions run, {summary.tracks_failed} failed, "
            f"{time.perf_counter() - started:.1f} s"
        )


if __name__ == "__main__":
    main()
