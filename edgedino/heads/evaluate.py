"""A head on the held-out split: accuracy or mIoU, the confusion matrix, and a chance baseline to beat."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from edgedino.heads.data import read_mask
from edgedino.heads.head import Head
from edgedino.runtime.task_head import IGNORE, segment_mask


@dataclass
class Evaluation:
    """Held-out quality: `score` is accuracy (classify) or mIoU (segment), `chance` the majority-class score."""

    task: str
    classes: tuple[str, ...]
    images: int
    score: float
    chance: float
    per_class: list[float]  # recall (classify) or IoU (segment), per class
    confusion: np.ndarray = field(repr=False)  # (C, C): rows truth, columns prediction (pixels for segment)

    @property
    def metric(self) -> str:
        return "accuracy" if self.task == "classify" else "mIoU"

    def to_dict(self) -> dict:
        return {"metric": self.metric, "score": self.score, "chance": self.chance, "images": self.images,
                "per_class": dict(zip(self.classes, self.per_class, strict=True)),
                "confusion": self.confusion.tolist()}


def _confusion(truth: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    keep = truth != IGNORE
    return np.bincount(truth[keep].astype(np.int64) * n + pred[keep], minlength=n * n).reshape(n, n)


def iou(confusion: np.ndarray) -> tuple[float, list[float]]:
    """(mIoU over the classes that occur in truth or prediction, IoU per class)."""
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - tp
    per = np.divide(tp, union, out=np.zeros_like(tp), where=union > 0)
    return float(per[union > 0].mean()), per.tolist()


@torch.no_grad()
def predict(head: Head, x: np.ndarray) -> np.ndarray:
    """Logits for head inputs: (N, C) or (N, h, w, C)."""
    return head.logits(torch.from_numpy(x)).numpy()


def evaluate_classify(head: Head, x: np.ndarray, labels: list[int]) -> Evaluation:
    truth = np.asarray(labels)
    n = len(head.cfg.classes)
    conf = _confusion(truth, predict(head, x).argmax(-1), n)
    recall = np.divide(np.diag(conf), conf.sum(1), out=np.zeros(n), where=conf.sum(1) > 0)
    chance = np.bincount(truth, minlength=n).max() / len(truth)
    return Evaluation("classify", head.cfg.classes, len(truth), float(np.trace(conf) / conf.sum()), float(chance),
                      recall.tolist(), conf)


def evaluate_segment(head: Head, x: np.ndarray, masks: list[Path]) -> tuple[Evaluation, list[np.ndarray]]:
    """mIoU at each mask's full resolution (logits upsampled bilinearly); also the predicted masks."""
    n = len(head.cfg.classes)
    conf = np.zeros((n, n), np.int64)
    logits = predict(head, x)
    preds = []
    for path, lg in zip(masks, logits, strict=True):
        truth = read_mask(path, n)
        pred = segment_mask(lg, truth.shape)
        conf += _confusion(truth, pred, n)
        preds.append(pred)
    score, per = iou(conf)
    majority = np.zeros_like(conf)
    majority[:, conf.sum(1).argmax()] = conf.sum(1)
    return Evaluation("segment", head.cfg.classes, len(masks), score, iou(majority)[0], per, conf), preds
