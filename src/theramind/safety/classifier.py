"""A small multinomial logistic regression in numpy, calibrated by temperature scaling.

The semantic layer of the risk screen trains one over sentence embeddings of its exemplars at
first use (a few hundred rows, well under a second): weights are fitted on a stratified part of
the rows, the temperature on the rest (minimising the negative log-likelihood there), and the
weights are then refitted on every row with that temperature kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
Features = NDArray[np.floating[Any]]

_TEMPERATURES = np.geomspace(0.05, 20.0, 90)


def softmax(logits: Array) -> Array:
    """Return row-wise softmax probabilities."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    out: Array = exp / exp.sum(axis=1, keepdims=True)
    return out


@dataclass(frozen=True)
class SoftmaxClassifier:
    """Linear weights, bias and a temperature over a fixed label order."""

    weights: Array
    bias: Array
    temperature: float
    labels: tuple[str, ...]

    def logits(self, x: Features) -> Array:
        """Return the uncalibrated scores of each row of `x` for each label."""
        out: Array = np.asarray(x, dtype=np.float64) @ self.weights + self.bias
        return out

    def predict_proba(self, x: Features) -> Array:
        """Return calibrated label probabilities for each row of `x`."""
        return softmax(self.logits(x) / self.temperature)


def fit_softmax(
    x: Array, y: NDArray[np.int64], classes: int, *, l2: float = 1e-3, steps: int = 400
) -> tuple[Array, Array]:
    """Fit weights and bias by full-batch gradient descent with momentum on the L2-penalised loss.

    Args:
        x: Rows of features.
        y: The label index of each row.
        classes: Number of labels.
        l2: Weight penalty.
        steps: Gradient steps.

    Returns:
        The weights (features x labels) and the bias (labels).
    """
    n, d = x.shape
    onehot = np.zeros((n, classes))
    onehot[np.arange(n), y] = 1.0
    w = np.zeros((d, classes))
    b = np.zeros(classes)
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    lr, beta = 4.0, 0.9
    for _ in range(steps):
        grad = (softmax(x @ w + b) - onehot) / n
        gw = x.T @ grad + l2 * w
        gb = grad.sum(axis=0)
        vw = beta * vw + gw
        vb = beta * vb + gb
        w -= lr * vw
        b -= lr * vb
    return w, b


def fit_temperature(logits: Array, y: NDArray[np.int64]) -> float:
    """Return the temperature that minimises the negative log-likelihood of `y`."""
    best, best_nll = 1.0, float("inf")
    for t in _TEMPERATURES:
        p = softmax(logits / t)[np.arange(len(y)), y]
        nll = float(-np.log(np.clip(p, 1e-12, None)).mean())
        if nll < best_nll:
            best, best_nll = float(t), nll
    return best


def stratified_split(
    y: NDArray[np.int64], holdout: float, seed: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return train and held-out row indices, holding out a share of every label's rows."""
    rng = np.random.default_rng(seed)
    train: list[int] = []
    held: list[int] = []
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        k = round(len(rows) * holdout) if len(rows) > 2 else 0
        held.extend(rows[:k].tolist())
        train.extend(rows[k:].tolist())
    return np.array(sorted(train), dtype=np.int64), np.array(sorted(held), dtype=np.int64)


def train_calibrated(
    x: Features,
    y: NDArray[np.int64],
    labels: tuple[str, ...],
    *,
    holdout: float = 0.25,
    seed: int = 0,
) -> SoftmaxClassifier:
    """Fit, calibrate the temperature on a held-out split, then refit on all rows."""
    rows: Array = np.asarray(x, dtype=np.float64)
    train, held = stratified_split(y, holdout, seed)
    temperature = 1.0
    if len(held):
        w, b = fit_softmax(rows[train], y[train], len(labels))
        temperature = fit_temperature(rows[held] @ w + b, y[held])
    w, b = fit_softmax(rows, y, len(labels))
    return SoftmaxClassifier(weights=w, bias=b, temperature=temperature, labels=labels)
