"""Linear probe on frozen features ([CLS; mean patch token]): softmax regression, weight decay chosen on held-out
training samples, then refit on all of them. Plain numpy, full-batch Adam: small sets, no extra dependency."""

from __future__ import annotations

import numpy as np

WEIGHT_DECAYS = (1e-4, 1e-3, 1e-2, 1e-1)


def probe_features(cls: np.ndarray, patch_mean: np.ndarray) -> np.ndarray:
    """The probe's input: CLS and mean patch token side by side."""
    return np.concatenate([cls, patch_mean], axis=1)


def fit_softmax(x: np.ndarray, y: np.ndarray, n_classes: int, weight_decay: float, steps: int = 300,
                lr: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Weights (D, C) and bias (C,) minimising cross-entropy + weight_decay * |W|^2 / 2 by full-batch Adam."""
    n, d = x.shape
    w, b = np.zeros((d, n_classes)), np.zeros(n_classes)
    onehot = np.eye(n_classes)[y]
    m = [np.zeros_like(w), np.zeros_like(b)]
    v = [np.zeros_like(w), np.zeros_like(b)]
    for t in range(1, steps + 1):
        logits = x @ w + b
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / n
        grads = [x.T @ g + weight_decay * w, g.sum(0)]
        for i, (param, grad) in enumerate(zip((w, b), grads, strict=True)):
            m[i] = 0.9 * m[i] + 0.1 * grad
            v[i] = 0.999 * v[i] + 0.001 * grad**2
            param -= lr * (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-8)
    return w, b


def linear_accuracy(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray,
                    n_classes: int, seed: int = 0) -> tuple[float, float]:
    """(test top-1 accuracy %, chosen weight decay): features standardised with the training statistics."""
    mu, sd = train.mean(0), train.std(0) + 1e-6
    train, test = (train - mu) / sd, (test - mu) / sd
    order = np.random.default_rng(seed).permutation(len(train))
    n_val = max(1, len(train) // 5)
    val, fit = order[:n_val], order[n_val:]

    def score(wd: float, a: np.ndarray, ya: np.ndarray, b_: np.ndarray, yb: np.ndarray) -> float:
        w, b = fit_softmax(a, ya, n_classes, wd)
        return float(100.0 * ((b_ @ w + b).argmax(1) == yb).mean())

    best = max(WEIGHT_DECAYS, key=lambda wd: score(wd, train[fit], train_labels[fit], train[val], train_labels[val]))
    return score(best, train, train_labels, test, test_labels), best
