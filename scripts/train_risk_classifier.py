"""Retrain the semantic risk layer's classifier and write it next to its exemplars.

Run after editing configs/safety/semantic/exemplars.yaml (the screen also retrains at first use
when the shipped weights do not match the exemplars, which costs seconds on a slow CPU):

    python scripts/train_risk_classifier.py [--config-dir configs]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from theramind.config import validate_file
from theramind.safety import semantic


def main() -> None:
    """Train, calibrate and save the classifier; print its temperature and timing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-dir", type=Path, default=None)
    args = parser.parse_args()
    path = semantic.exemplars_path(args.config_dir).resolve()
    spec = validate_file(path, semantic.ExemplarFile)
    embed = semantic.embedder_factory()
    stamp = semantic.digest(spec, embed)
    if stamp is None:
        raise SystemExit("the embedder has no model id; cannot stamp the weights")
    start = time.perf_counter()
    classifier = semantic.train(spec, embed)
    out = semantic.weights_path(args.config_dir)
    semantic.save_classifier(classifier, out, stamp)
    print(
        f"trained on {sum(len(v) for v in spec.exemplars.values())} exemplars in "
        f"{time.perf_counter() - start:.2f} s; temperature {classifier.temperature:.3f}; "
        f"wrote {out}"
    )


if __name__ == "__main__":
    main()
