"""Weighted k-NN classification on frozen CLS features (DINO protocol: cosine, votes weighted exp(sim / T))."""

from __future__ import annotations

import numpy as np

KS = (10, 20)
TEMPERATURE = 0.07


def normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def knn_predict(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, k: int, n_classes: int,
                temperature: float = TEMPERATURE) -> np.ndarray:
    """Class scores (N_test, C): the k most cosine-similar training samples vote with weight exp(sim / T)."""
    sim = normalize(test) @ normalize(train).T
    k = min(k, train.shape[0])
    idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(sim, idx, axis=1)
    votes = np.zeros((test.shape[0], n_classes))
    np.add.at(votes, (np.arange(test.shape[0])[:, None], train_labels[idx]), np.exp(top / temperature))
    return votes


def knn_accuracy(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray,
                 n_classes: int, ks: tuple[int, ...] = KS, temperature: float = TEMPERATURE) -> dict[int, float]:
    """Top-1 accuracy (%) of the weighted k-NN classifier for each k."""
    return {k: float(100.0 * (knn_predict(train, train_labels, test, k, n_classes, temperature).argmax(1)
                              == test_labels).mean()) for k in ks}
